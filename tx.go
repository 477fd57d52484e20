package hiqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/cluster"
	"github.com/hiqlite/hiqlite/replication"
)

// tx is a transaction with SQLite's deferred semantics. It starts
// with nothing. Its first read opens a read transaction on the connection's
// local read connection, which fixes its snapshot; its first write takes the
// leader's exclusive write slot and continues on the writer (promote), which
// is refused with SQLITE_BUSY_SNAPSHOT when anything committed after that
// snapshot. Once promoted, reads also run on the writer so they see the
// transaction's own writes.
type tx struct {
	c        *conn
	readOnly bool

	reading bool   // a read transaction is open on c.db
	snap    uint64 // with reading: the applied index of its snapshot
	w       cluster.Tx
	seq     uint64 // with w: the sequence number of w's origin

	// savepoint control run before the first write, replayed on the writer
	// when the transaction is promoted
	sps []string
}

func (c *conn) newTx(readOnly bool) *tx {
	c.tx = &tx{c: c, readOnly: readOnly}
	return c.tx
}

// beginRead opens the local read transaction, unless it is open or the
// transaction already runs on the writer.
func (t *tx) beginRead() error {
	if t.reading || t.w != nil {
		return nil
	}
	if err := t.c.db.Exec(`BEGIN`); err != nil {
		return t.c.local(err)
	}
	idx, err := replication.ReadAppliedIndex(t.c.db)
	if err != nil {
		t.endRead()
		return t.c.local(err)
	}
	t.reading, t.snap = true, idx
	return nil
}

// endRead ends the local read transaction. A read whose rows are still open
// would keep the snapshot alive, so statements are reset first.
func (t *tx) endRead() {
	if !t.c.db.GetAutocommit() {
		if t.c.db.Exec(`ROLLBACK`) != nil {
			for s := range t.c.db.Stmts() {
				s.Reset()
			}
			_ = t.c.db.Exec(`ROLLBACK`)
		}
	}
	t.reading = false
}

// promote moves the transaction to the leader's writer.
func (t *tx) promote(ctx context.Context) error {
	if t.w != nil {
		return nil
	}
	if t.readOnly {
		return fmt.Errorf("hiqlite: write in a read-only transaction: %w", sqlite3.READONLY)
	}
	c := t.c
	origin := c.origin()
	w, err := c.node.c.BeginTx(ctx, c.cfg.Busy, c.cfg.TxIdle, origin, c.flags(ctx), cluster.SnapshotCheck{Index: t.snap, Valid: t.reading})
	if err != nil {
		return err
	}
	t.w, t.seq = w, origin.Seq
	for _, sp := range t.sps {
		if _, err := w.Exec(ctx, replication.Statement{SQL: sp}, false); err != nil {
			return err
		}
	}
	t.sps = nil
	return nil
}

func (t *tx) write(ctx context.Context, st replication.Statement) (replication.Result, error) {
	if err := t.promote(ctx); err != nil {
		return replication.Result{}, err
	}
	return t.w.Exec(ctx, st, false)
}

func (t *tx) savepoint(ctx context.Context, query string) error {
	if t.w == nil {
		t.sps = append(t.sps, query)
		return nil
	}
	_, err := t.w.Exec(ctx, replication.Statement{SQL: query}, false)
	return err
}

// Commit replicates the transaction's writes as one command. Its context
// is the one the transaction began with, as database/sql gives none.
func (t *tx) Commit() error {
	return t.end(true)
}

// Rollback leaves no trace of the transaction anywhere.
func (t *tx) Rollback() error {
	return t.end(false)
}

func (t *tx) end(commit bool) error {
	if t.c.tx != t {
		return errors.New("hiqlite: transaction has already been committed or rolled back")
	}
	t.c.tx = nil
	if t.reading {
		t.endRead()
	}
	if t.w == nil {
		return nil
	}
	if commit {
		return t.w.Commit(context.Background())
	}
	return t.w.Rollback()
}
