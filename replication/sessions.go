package replication

import (
	"errors"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Exactly once. Every write that carries an origin (Session != 0) is
// recorded in _hiqlite_sessions in the same SQLite transaction that applies
// it: the session's last sequence number, the Raft index it was applied at
// and, for KindExec, its encoded results. A copy of a write whose sequence
// number is not above the recorded one is never applied again: it gets the
// recorded outcome if it is the recorded write, else ErrNotApplied. The
// table is replicated state like any other: every node decides the same.

// ErrNotApplied: the write was not applied and never will be, because a
// later write of its session or a KindFence for it was applied first. It is
// safe to retry as a new write.
var ErrNotApplied = errors.New("hiqlite: the write was not applied (a later write of its session, or a check of its outcome, came first); it is safe to retry")

// sessionRetention is how long, in command time, a session's record is kept
// after its last write. A retry arriving later than that is applied as new.
const sessionRetention = 24 * time.Hour

// pruneEvery is how often (in Raft indexes) the state machine drops expired
// session records. Every node prunes at the same indexes with the same
// command time, so they stay identical.
const pruneEvery = 4096

const sessionSchema = `CREATE TABLE IF NOT EXISTS _hiqlite_sessions(
	node TEXT NOT NULL,
	session INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	applied_index INTEGER NOT NULL,
	applied INTEGER NOT NULL,   -- 1: the write at seq was applied; 0: fenced off
	at INTEGER NOT NULL,        -- command time, Unix nanoseconds
	results BLOB,               -- KindExec: the encoded results; else NULL
	PRIMARY KEY (node, session)
) WITHOUT ROWID;`

// ResultCodec encodes the results the state machine records for retries.
// The encoding must be deterministic. Without one (the zero value), results
// are not recorded and a retried write that was applied reports
// ErrResultsLost.
type ResultCodec struct {
	Marshal   func([]Result) ([]byte, error)
	Unmarshal func([]byte) ([]Result, error)
}

// ErrResultsLost: a retried write was applied before, but its results could
// not be kept (too large to encode, or no codec).
var ErrResultsLost = errors.New("hiqlite: the write was applied, but its results were not kept for a retry")

// SetResultCodec sets the codec for recorded results. Call it before the
// first Apply.
func (sm *StateMachine) SetResultCodec(c ResultCodec) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.codec = c
}

// sessionRecord is a row of _hiqlite_sessions.
type sessionRecord struct {
	found   bool
	seq     uint64
	index   uint64
	applied bool
	results []byte
	hasRes  bool
}

func (sm *StateMachine) prepareSessions() error {
	if err := sm.w.Exec(sessionSchema); err != nil {
		return fmt.Errorf("hiqlite: create session table: %w", err)
	}
	var err error
	if sm.getSession, _, err = sm.w.PrepareFlags(`SELECT seq, applied_index, applied, results FROM _hiqlite_sessions WHERE node = ? AND session = ?`, sqlite3.PREPARE_PERSISTENT); err != nil {
		return err
	}
	sm.putSession, _, err = sm.w.PrepareFlags(`INSERT INTO _hiqlite_sessions(node, session, seq, applied_index, applied, at, results) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (node, session) DO UPDATE SET seq = excluded.seq, applied_index = excluded.applied_index, applied = excluded.applied, at = excluded.at, results = excluded.results`, sqlite3.PREPARE_PERSISTENT)
	return err
}

// tracked: cmd takes part in exactly-once.
func tracked(cmd *Command) bool {
	switch cmd.Kind {
	case KindExec, KindTx, KindFence:
		return cmd.Origin.Session != 0
	}
	return false
}

func (sm *StateMachine) lookupSession(o Origin) (rec sessionRecord, err error) {
	st := sm.getSession
	defer st.Reset()
	if err := st.BindText(1, o.Node); err != nil {
		return rec, err
	}
	if err := st.BindInt64(2, int64(o.Session)); err != nil {
		return rec, err
	}
	if st.Step() {
		rec.found = true
		rec.seq = uint64(st.ColumnInt64(0))
		rec.index = uint64(st.ColumnInt64(1))
		rec.applied = st.ColumnInt64(2) == 1
		if st.ColumnType(3) == sqlite3.BLOB {
			rec.hasRes = true
			rec.results = st.ColumnBlob(3, nil)
		}
	}
	return rec, st.Err()
}

// recordSession records, in the writer's open transaction, that cmd was
// applied at index (applied) or fenced off (!applied).
func (sm *StateMachine) recordSession(cmd *Command, index uint64, applied bool, results []Result) error {
	st := sm.putSession
	defer st.Reset()
	var blob []byte
	if applied && cmd.Kind == KindExec && sm.codec.Marshal != nil {
		if b, err := sm.codec.Marshal(results); err == nil {
			blob = b
		}
	}
	flag := int64(0)
	if applied {
		flag = 1
	}
	for i, err := range []error{
		st.BindText(1, cmd.Origin.Node),
		st.BindInt64(2, int64(cmd.Origin.Session)),
		st.BindInt64(3, int64(cmd.Origin.Seq)),
		st.BindInt64(4, int64(index)),
		st.BindInt64(5, flag),
		st.BindInt64(6, cmd.Time),
	} {
		if err != nil {
			return fmt.Errorf("bind %d: %w", i+1, err)
		}
	}
	var err error
	if blob != nil {
		err = st.BindBlob(7, blob)
	} else {
		err = st.BindNull(7)
	}
	if err != nil {
		return err
	}
	return st.Exec()
}

// duplicate returns the response to a copy of a write already settled by
// rec (rec.seq >= the copy's Seq).
func (sm *StateMachine) duplicate(cmd *Command, index uint64, rec sessionRecord) *Response {
	if rec.seq != cmd.Origin.Seq || !rec.applied {
		if cmd.Kind == KindFence {
			return &Response{Index: index, NotApplied: true}
		}
		return &Response{Index: index, NotApplied: true, Err: ErrNotApplied}
	}
	resp := &Response{Index: rec.index, Duplicate: true}
	if cmd.Kind == KindExec || (cmd.Kind == KindFence && rec.hasRes) {
		if !rec.hasRes || sm.codec.Unmarshal == nil {
			if cmd.Kind == KindExec {
				resp.Err = fmt.Errorf("%w (index %d)", ErrResultsLost, rec.index)
			}
			return resp
		}
		res, err := sm.codec.Unmarshal(rec.results)
		if err != nil {
			if cmd.Kind == KindExec {
				resp.Err = fmt.Errorf("%w (index %d): %w", ErrResultsLost, rec.index, err)
			}
			return resp
		}
		resp.Results = res
	}
	return resp
}

// pruneSessions drops the records of sessions idle past sessionRetention,
// at every pruneEvery-th index, in the writer's open transaction.
func (sm *StateMachine) pruneSessions(index uint64, now int64) error {
	if index%pruneEvery != 0 {
		return nil
	}
	st, _, err := sm.w.Prepare(`DELETE FROM _hiqlite_sessions WHERE at < ?`)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.BindInt64(1, now-int64(sessionRetention)); err != nil {
		return err
	}
	return st.Exec()
}
