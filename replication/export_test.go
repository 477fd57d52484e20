package replication

import (
	"context"
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// CheckSessionMirror compares the state machine's mirror of
// _hiqlite_sessions with the table (call it between ApplyBatch calls). A
// stale mirror is read again first, as its next use would.
func (sm *StateMachine) CheckSessionMirror() error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if len(sm.sess.undo) != 0 || sm.sess.lost {
		return fmt.Errorf("undo log left after the transaction: %d rows, lost=%v", len(sm.sess.undo), sm.sess.lost)
	}
	if sm.sess.stale {
		return sm.loadSessions()
	}
	mirror := make(map[sessionKey]sessionRecord, len(sm.sess.rows))
	for k, v := range sm.sess.rows {
		mirror[k] = v
	}
	if err := sm.loadSessions(); err != nil {
		return err
	}
	for k, v := range sm.sess.rows {
		if mirror[k] != v {
			return fmt.Errorf("session %v: mirror %+v, table %+v", k, mirror[k], v)
		}
		delete(mirror, k)
	}
	for k, v := range mirror {
		return fmt.Errorf("session %v: mirror %+v, not in the table", k, v)
	}
	return nil
}

// ExecUnguarded runs sql on the writer as the state machine's own
// statements run, past the guard: for a database that an older version,
// which let client SQL change internal objects, left behind.
func (sm *StateMachine) ExecUnguarded(sql string) error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.w.Exec(sql)
}

// InterruptAtCommit makes the writer call Interrupt from inside the
// UPDATE of _hiqlite_state that records a batch's indexes, the last
// statement before the batch's COMMIT: Close arriving after a batch's
// commands ran and before it committed.
func (sm *StateMachine) InterruptAtCommit() error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if err := sm.w.CreateFunction("test_interrupt", 0, sqlite3.INNOCUOUS, func(ctx sqlite3.Context, _ ...sqlite3.Value) {
		sm.Interrupt()
		ctx.ResultNull()
	}); err != nil {
		return err
	}
	return sm.w.Exec(`CREATE TRIGGER test_interrupt AFTER UPDATE ON _hiqlite_state BEGIN SELECT test_interrupt(); END`)
}

// TxInterruptContext returns the interrupt context the open transaction's
// statements share, or nil.
func (sm *StateMachine) TxInterruptContext() context.Context {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.pending == nil {
		return nil
	}
	return sm.pending.intr.ctx
}

// CachedTexts returns the texts of the writer's statement cache.
func (sm *StateMachine) CachedTexts() []string {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	var texts []string
	for q := range sm.cache {
		texts = append(texts, q)
	}
	return texts
}

// WholeTransaction reports what execText reads of a text: whether it is one
// whole transaction, and the refusal, if any.
func WholeTransaction(sql string) (bool, error) {
	_, _, atomic, err := transactionBody(sql)
	return atomic, err
}
