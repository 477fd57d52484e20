package replication

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/ncruces/go-sqlite3"
)

// Exactly once. Every write that carries an origin (Session != 0) is
// recorded in _hiqlite_sessions in the same SQLite transaction that applies
// it: the session's last sequence number, the Raft index it was applied at
// and, for KindExec, its encoded results. A copy of a write whose sequence
// number is not above the recorded one is never applied again: it gets the
// recorded outcome if it is the recorded write, else ErrNotApplied. The
// table is replicated state like any other: every node decides the same.

// sessionRetention is how long, in command time, a session's record is kept
// after its last write. A retry arriving later than that is applied as new.
const sessionRetention = 24 * time.Hour

// pruneEvery is how often (in Raft indexes) the state machine drops expired
// session records. Every node prunes at the same indexes with the same
// command time, so they stay identical.
const pruneEvery = 4096

// sessionTable is the table of session records.
const sessionTable = `_hiqlite_sessions`

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

// errResultsLost: a retried write was applied before, but its results could
// not be kept (they failed to encode) or cannot be read back (see
// unmarshalResults).
var errResultsLost = errors.New("hiqlite: the write was applied, but its results were not kept for a retry")

// sessionKey names a session: the node it started on and its id.
type sessionKey struct {
	node    string
	session uint64
}

func keyOf(o Origin) sessionKey { return sessionKey{o.Node, o.Session} }

// sessionRecord is a row of _hiqlite_sessions, without the results (read
// from the table only for a duplicate, so that memory stays small).
type sessionRecord struct {
	found   bool
	seq     uint64
	index   uint64
	applied bool
	at      int64
	hasRes  bool
}

// sessionMirror is the state machine's copy in memory of _hiqlite_sessions,
// so that a write's lookup reads no table. It follows the table as the
// writer's open transaction sees it:
//
//   - every record and every prune changes both;
//   - undo keeps the first pre-image of each row changed in the open
//     transaction; the writer's rollback hook (any rollback of the whole
//     transaction: a fault, ROLLBACK, a statement's ON CONFLICT ROLLBACK or
//     RAISE(ROLLBACK) before a batch replay) puts them back, and a commit
//     drops them;
//   - a user statement that writes the table (seen by the writer's
//     authorizer when SQLite compiles it, triggers included) makes the
//     mirror stale: it is read again from the table before its next use.
//     The guard (internal.go) refuses such statements in client SQL; what
//     remains is a trigger on the table that an older version let in,
//     fired by the state machine's own writes.
//
// It holds one entry per live session; pruning drops them with the rows.
// Guarded by StateMachine.mu (the hooks run inside calls made under it).
type sessionMirror struct {
	rows map[sessionKey]sessionRecord
	undo map[sessionKey]sessionRecord // found=false: the row did not exist
	// lost: the mirror was read from the table inside the open
	// transaction, so undo cannot bring back the state before it.
	lost  bool
	stale bool
	// internal: the state machine's own writes to the table run.
	internal bool
	// touched: the authorizer saw a user statement that writes the table.
	touched bool
	// userTrigger: the state machine's own writes to the table fire a user
	// trigger that writes it too (see beginInternal).
	userTrigger bool
}

// set changes the row of k in the mirror, keeping its pre-image.
func (m *sessionMirror) set(k sessionKey, rec sessionRecord) {
	if _, ok := m.undo[k]; !ok {
		m.undo[k] = m.rows[k]
	}
	if rec.found {
		m.rows[k] = rec
	} else {
		delete(m.rows, k)
	}
}

// beginInternal marks the state machine's own writes to the table
// running, until the function it returns is called. A user trigger that
// writes the table from within them makes the mirror stale after each of
// them from then on: once compiled into the state machine's statements, the
// authorizer does not see it again.
func (m *sessionMirror) beginInternal() (end func()) {
	m.internal, m.touched = true, false
	return func() {
		m.internal = false
		if m.touched {
			m.touched = false
			m.userTrigger = true
		}
		if m.userTrigger {
			m.stale = true
		}
	}
}

// committed: the writer's transaction committed.
func (m *sessionMirror) committed() {
	clear(m.undo)
	m.lost = false
}

// rolledBack: the writer's transaction rolled back (its rollback hook).
func (m *sessionMirror) rolledBack() {
	if m.lost {
		m.stale = true
	} else {
		for k, rec := range m.undo {
			if rec.found {
				m.rows[k] = rec
			} else {
				delete(m.rows, k)
			}
		}
	}
	clear(m.undo)
	m.lost = false
}

// authorize is the writer's authorizer after the guard (StateMachine.authorize):
// it allows everything, and notes a user statement (or a user trigger) that
// writes _hiqlite_sessions.
func (m *sessionMirror) authorize(action sqlite3.AuthorizerActionCode, name3rd, name4th, _, inner string) sqlite3.AuthorizerReturnCode {
	table := name3rd
	switch action {
	case sqlite3.AUTH_INSERT, sqlite3.AUTH_UPDATE, sqlite3.AUTH_DELETE,
		sqlite3.AUTH_DROP_TABLE, sqlite3.AUTH_DROP_TEMP_TABLE,
		sqlite3.AUTH_CREATE_TABLE, sqlite3.AUTH_CREATE_TEMP_TABLE:
	case sqlite3.AUTH_ALTER_TABLE:
		table = name4th
	default:
		return sqlite3.AUTH_OK
	}
	if (!m.internal || inner != "") && strings.EqualFold(table, sessionTable) {
		m.touched = true
	}
	return sqlite3.AUTH_OK
}

func (sm *StateMachine) prepareSessions() error {
	if err := sm.w.Exec(sessionSchema); err != nil {
		return fmt.Errorf("hiqlite: create session table: %w", err)
	}
	sm.sess.rows = map[sessionKey]sessionRecord{}
	sm.sess.undo = map[sessionKey]sessionRecord{}
	sm.w.RollbackHook(sm.sess.rolledBack)
	if err := sm.w.SetAuthorizer(sm.authorize); err != nil {
		return err
	}
	var err error
	if sm.getResults, _, err = sm.w.PrepareFlags(`SELECT results FROM _hiqlite_sessions WHERE node = ? AND session = ?`, sqlite3.PREPARE_PERSISTENT); err != nil {
		return err
	}
	// The authorizer sees a user trigger on the table only while the
	// statements that fire it compile: here, for a trigger that already
	// exists (a reopened database), so note it as beginInternal would.
	end := sm.sess.beginInternal()
	defer end()
	if sm.updSession, _, err = sm.w.PrepareFlags(`UPDATE _hiqlite_sessions SET seq = ?3, applied_index = ?4, applied = ?5, at = ?6, results = ?7 WHERE node = ?1 AND session = ?2`, sqlite3.PREPARE_PERSISTENT); err != nil {
		return err
	}
	sm.putSession, _, err = sm.w.PrepareFlags(`INSERT INTO _hiqlite_sessions(node, session, seq, applied_index, applied, at, results) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (node, session) DO UPDATE SET seq = excluded.seq, applied_index = excluded.applied_index, applied = excluded.applied, at = excluded.at, results = excluded.results`, sqlite3.PREPARE_PERSISTENT)
	if err != nil {
		return err
	}
	return sm.loadSessions()
}

// loadSessions reads the mirror from the table, as the writer sees it.
func (sm *StateMachine) loadSessions() error {
	m := &sm.sess
	st, _, err := sm.w.Prepare(`SELECT node, session, seq, applied_index, applied, at, results IS NOT NULL FROM _hiqlite_sessions`)
	if err != nil {
		return fmt.Errorf("hiqlite: read session table: %w", err)
	}
	defer st.Close()
	clear(m.rows)
	for st.Step() {
		m.rows[sessionKey{st.ColumnText(0), uint64(st.ColumnInt64(1))}] = sessionRecord{
			found:   true,
			seq:     uint64(st.ColumnInt64(2)),
			index:   uint64(st.ColumnInt64(3)),
			applied: st.ColumnInt64(4) == 1,
			at:      st.ColumnInt64(5),
			hasRes:  st.ColumnInt64(6) == 1,
		}
	}
	if err := st.Err(); err != nil {
		clear(m.rows)
		m.stale = true
		return fmt.Errorf("hiqlite: read session table: %w", err)
	}
	clear(m.undo)
	m.lost = !sm.w.GetAutocommit()
	m.stale = false
	return nil
}

// sessionsFresh reads the mirror again if a user statement made it stale.
func (sm *StateMachine) sessionsFresh() error {
	if !sm.sess.stale {
		return nil
	}
	return sm.loadSessions()
}

// tracked: cmd takes part in exactly-once.
func tracked(cmd *Command) bool {
	switch cmd.Kind {
	case KindExec, KindTx, KindFence:
		return cmd.Origin.Session != 0
	}
	return false
}

func (sm *StateMachine) lookupSession(o Origin) (sessionRecord, error) {
	if err := sm.sessionsFresh(); err != nil {
		return sessionRecord{}, err
	}
	return sm.sess.rows[keyOf(o)], nil
}

// sessionResults reads the recorded results of o's session.
func (sm *StateMachine) sessionResults(o Origin) ([]byte, error) {
	st := sm.getResults
	defer st.Reset()
	if err := st.BindText(1, o.Node); err != nil {
		return nil, err
	}
	if err := st.BindInt64(2, int64(o.Session)); err != nil {
		return nil, err
	}
	var blob []byte
	if st.Step() {
		blob = st.ColumnBlob(0, nil)
	}
	return blob, st.Err()
}

// recordSession records, in the writer's open transaction, that cmd was
// applied at index (applied) or fenced off (!applied). A session the mirror
// knows is updated in place; a new one (or one the table lacks after all)
// goes through the upsert.
func (sm *StateMachine) recordSession(cmd *Command, index uint64, applied bool, results []Result) error {
	if err := sm.sessionsFresh(); err != nil {
		return err
	}
	m := &sm.sess
	k := keyOf(cmd.Origin)
	var blob []byte
	if applied && cmd.Kind == KindExec {
		if b, err := marshalResults(results); err == nil {
			blob = b
		}
	}
	flag := int64(0)
	if applied {
		flag = 1
	}
	defer m.beginInternal()()
	known := m.rows[k].found
	if known {
		if err := sm.writeSession(sm.updSession, cmd, index, flag, blob); err != nil {
			return err
		}
		known = sm.w.Changes() == 1
	}
	if !known {
		if err := sm.writeSession(sm.putSession, cmd, index, flag, blob); err != nil {
			return err
		}
	}
	m.set(k, sessionRecord{found: true, seq: cmd.Origin.Seq, index: index, applied: applied, at: cmd.Time, hasRes: blob != nil})
	return nil
}

// writeSession runs st (updSession or putSession) for cmd's session row.
func (sm *StateMachine) writeSession(st *sqlite3.Stmt, cmd *Command, index uint64, flag int64, blob []byte) error {
	defer st.Reset()
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
// rec (rec.seq >= the copy's Seq). An error is a node fault.
func (sm *StateMachine) duplicate(cmd *Command, index uint64, rec sessionRecord) (*Response, error) {
	if rec.seq != cmd.Origin.Seq || !rec.applied {
		if cmd.Kind == KindFence {
			return &Response{Index: index, NotApplied: true}, nil
		}
		return &Response{Index: index, NotApplied: true, Err: nodeerr.ErrNotApplied}, nil
	}
	resp := &Response{Index: rec.index, Duplicate: true}
	if cmd.Kind == KindExec || (cmd.Kind == KindFence && rec.hasRes) {
		if !rec.hasRes {
			if cmd.Kind == KindExec {
				resp.Err = fmt.Errorf("%w (index %d)", errResultsLost, rec.index)
			}
			return resp, nil
		}
		blob, err := sm.sessionResults(cmd.Origin)
		if err != nil {
			return nil, err
		}
		res, err := unmarshalResults(blob)
		if err != nil {
			if cmd.Kind == KindExec {
				resp.Err = fmt.Errorf("%w (index %d): %w", errResultsLost, rec.index, err)
			}
			return resp, nil
		}
		resp.Results = res
	}
	return resp, nil
}

// pruneSessions drops the records of sessions idle past sessionRetention,
// at every pruneEvery-th index, in the writer's open transaction, and from
// the mirror.
func (sm *StateMachine) pruneSessions(index uint64, now int64) error {
	if index%pruneEvery != 0 {
		return nil
	}
	m := &sm.sess
	defer m.beginInternal()()
	st, _, err := sm.w.Prepare(`DELETE FROM _hiqlite_sessions WHERE at < ?`)
	if err != nil {
		return err
	}
	defer st.Close()
	cutoff := now - int64(sessionRetention)
	if err := st.BindInt64(1, cutoff); err != nil {
		return err
	}
	if err := st.Exec(); err != nil {
		return err
	}
	if !m.stale {
		for k, rec := range m.rows {
			if rec.at < cutoff {
				m.set(k, sessionRecord{})
			}
		}
	}
	return nil
}
