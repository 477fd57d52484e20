package replication

import (
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// Notifications. The SQL function hiqlite_notify(channel[, payload]), on the
// writer, raises a notification that is delivered (to the sink set with
// Options.NotifySink) if and only if the write that raised it commits, after
// its COMMIT, in the order the writes were applied.
//
// The function inserts a row into a TEMP table of the writer, so SQLite's
// own transaction machinery decides which notifications survive: a command
// savepoint rolled back, a user's ROLLBACK TO, a whole transaction rolled
// back (ON CONFLICT ROLLBACK, RAISE(ROLLBACK), a batch replayed, the
// leader's transaction aborted) take their rows with them. One case SQLite
// does not cover: a statement that fails is undone by SQLite, but the
// function's INSERT ran as a statement of its own, so the state machine
// deletes the rows a failing statement raised (execOne). With ON CONFLICT
// FAIL, whose failing statement keeps the rows it changed before the
// failure, those rows' notifications are dropped too.
//
// Just before each COMMIT the state machine reads and deletes the rows, and
// hands them to the sink once the COMMIT succeeded. The TEMP table is
// therefore empty outside a transaction; it is not part of the database
// file, of snapshots, or of what read connections see.

// Notification is one notification raised by a committed write.
type Notification struct {
	Index   uint64 // Raft index of the write that raised it
	Channel string
	Payload string
}

// NotifyFunc is the SQL name of the notification function.
const NotifyFunc = "hiqlite_notify"

// notifySchema holds the notifications raised in the open transaction. seq
// comes from notifier.seq, which never goes back, so "every row after a
// mark" is well defined even after a rollback.
const notifySchema = `PRAGMA temp_store = MEMORY;
CREATE TEMP TABLE IF NOT EXISTS _hiqlite_notify(
	seq INTEGER PRIMARY KEY,
	idx INTEGER NOT NULL,
	channel TEXT NOT NULL,
	payload TEXT NOT NULL
);`

// notifier is the state machine's part of notifications. It is guarded by
// StateMachine.mu: the function runs inside the writer's Step, on the
// goroutine that holds it.
type notifier struct {
	ins, read, clear, cut *sqlite3.Stmt
	// index is the Raft index of the command being applied; 0 while the
	// leader runs an interactive transaction (its COMMIT fills it in).
	index uint64
	seq   int64 // last seq used
	dirty bool  // rows may exist (something raised since the last take)
	// outbox holds the rows of the COMMIT in progress.
	outbox []Notification
	sink   func([]Notification)
}

// installNotify creates the TEMP table and the function on the writer.
func (sm *StateMachine) installNotify() error {
	nt := &sm.nt
	if err := sm.w.Exec(notifySchema); err != nil {
		return fmt.Errorf("hiqlite: create notification table: %w", err)
	}
	for _, p := range []struct {
		st  **sqlite3.Stmt
		sql string
	}{
		{&nt.ins, `INSERT INTO temp._hiqlite_notify(seq, idx, channel, payload) VALUES (?, ?, ?, ?)`},
		{&nt.read, `SELECT idx, channel, payload FROM temp._hiqlite_notify ORDER BY seq`},
		{&nt.clear, `DELETE FROM temp._hiqlite_notify`},
		{&nt.cut, `DELETE FROM temp._hiqlite_notify WHERE seq > ?`},
	} {
		var err error
		if *p.st, _, err = sm.w.PrepareFlags(p.sql, sqlite3.PREPARE_PERSISTENT); err != nil {
			return err
		}
	}
	for _, n := range []int{1, 2} {
		// INNOCUOUS, as triggers may only call innocuous functions;
		// not DETERMINISTIC, as every call counts.
		if err := sm.w.CreateFunction(NotifyFunc, n, sqlite3.INNOCUOUS, sm.notifyFunc); err != nil {
			return fmt.Errorf("hiqlite: create %s: %w", NotifyFunc, err)
		}
	}
	return nil
}

// notifyFunc is hiqlite_notify on the writer: it records the notification
// in the open transaction and returns NULL.
func (sm *StateMachine) notifyFunc(ctx sqlite3.Context, args ...sqlite3.Value) {
	defer GuardOOM(ctx)
	channel, payload, err := notifyArgs(args)
	if err != nil {
		ctx.ResultError(err)
		return
	}
	nt := &sm.nt
	// The INSERT must not show through LastInsertRowID: the statement that
	// called the function reports its own.
	last := sm.w.LastInsertRowID()
	defer sm.w.SetLastInsertRowID(last)
	// The function runs inside client SQL, with the guard enforced; its
	// INSERT (which SQLite prepares again after a schema change) is the
	// state machine's own.
	suspended := sm.guard.suspended
	sm.guard.suspended = true
	defer func() { sm.guard.suspended = suspended }()
	nt.seq++
	nt.dirty = true
	err = bindAll(nt.ins, nt.seq, int64(nt.index))
	if err == nil {
		err = nt.ins.BindText(3, channel)
	}
	if err == nil {
		err = nt.ins.BindText(4, payload)
	}
	if err == nil {
		err = nt.ins.Exec()
	}
	nt.ins.Reset()
	if err != nil {
		ctx.ResultError(fmt.Errorf("hiqlite: %s: %w", NotifyFunc, err))
		return
	}
	ctx.ResultNull()
}

// notifyArgs reads the arguments of hiqlite_notify: a channel, which must
// be a non-empty text, and an optional payload, taken as text (NULL is the
// empty payload).
func notifyArgs(args []sqlite3.Value) (channel, payload string, err error) {
	if len(args) == 0 || args[0].Type() == sqlite3.NULL || args[0].Text() == "" {
		return "", "", errors.New("hiqlite: hiqlite_notify(channel, payload): the channel must be a non-empty text")
	}
	channel = args[0].Text()
	if len(args) > 1 && args[1].Type() != sqlite3.NULL {
		payload = args[1].Text()
	}
	return channel, payload, nil
}

// statementFailed drops the notifications a failing statement raised after
// mark (notifier.seq before it ran). A statement that ended the whole
// transaction took them with it already.
func (sm *StateMachine) statementFailed(mark int64) error {
	nt := &sm.nt
	if nt.seq == mark || sm.w.GetAutocommit() {
		return nil
	}
	err := nt.cut.BindInt64(1, mark)
	if err == nil {
		err = nt.cut.Exec()
	}
	nt.cut.Reset()
	return err
}

// commitTx commits the writer's transaction and delivers its notifications.
// index fills in the Raft index of rows raised without one (the leader's
// interactive transaction, committed by the command at index).
func (sm *StateMachine) commitTx(index uint64) error {
	nt := &sm.nt
	nt.outbox = nt.outbox[:0]
	if nt.dirty {
		if err := nt.take(index); err != nil {
			return err
		}
	}
	if err := sm.execCtl(`COMMIT`); err != nil {
		nt.outbox = nt.outbox[:0]
		return err
	}
	sm.sess.committed()
	if len(nt.outbox) > 0 && nt.sink != nil {
		out := make([]Notification, len(nt.outbox))
		copy(out, nt.outbox)
		nt.sink(out)
	}
	nt.outbox = nt.outbox[:0]
	return nil
}

// take moves the rows of the open transaction into the outbox.
func (nt *notifier) take(index uint64) error {
	for nt.read.Step() {
		n := Notification{Index: uint64(nt.read.ColumnInt64(0)), Channel: nt.read.ColumnText(1), Payload: nt.read.ColumnText(2)}
		if n.Index == 0 {
			n.Index = index
		}
		nt.outbox = append(nt.outbox, n)
	}
	err := nt.read.Err()
	nt.read.Reset()
	if err == nil {
		err = nt.clear.Exec()
		nt.clear.Reset()
	}
	if err != nil {
		return fmt.Errorf("hiqlite: read notifications: %w", err)
	}
	nt.dirty = false
	return nil
}

func (nt *notifier) close() {
	for _, st := range []*sqlite3.Stmt{nt.ins, nt.read, nt.clear, nt.cut} {
		if st != nil {
			st.Close()
		}
	}
}
