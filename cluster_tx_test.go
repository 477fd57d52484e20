package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// Write transactions on a three-node cluster:
// TestClusterTx runs the same cases begun on a follower (forwarded over one
// RPC session) and on the leader itself. The bank workload on every node is
// in cluster_bank_test.go, the kills of the leader and of a follower around
// open and committing transactions in cluster_txkill_test.go. The GORM
// shape on a follower is TestClusterTransactionOnFollower; the benchmark is
// in bench_tx_test.go.

// share opens another *sql.DB on member i's running node, with extra DSN
// parameters: _busy and _txidle belong to the connector, the node is
// shared by every connector of a DSN. The handle keeps the node running, so a member that a
// test kills must have none.
func share(t *testing.T, c *clustertest.Cluster, i int, params ...string) *sql.DB {
	t.Helper()
	m := c.Members[i]
	if m.DB == nil {
		t.Fatalf("share: %s is not running", m.ID)
	}
	db, err := sql.Open("hiqlite", m.DSN(c)+"&"+strings.Join(params, "&"))
	if err != nil {
		t.Fatalf("share %s: %v", m.ID, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// countEverywhere waits until every running member has applied the
// leader's last write and holds the same tables, then checks that q counts
// want on each of them.
func countEverywhere(t *testing.T, c *clustertest.Cluster, want int64, q string, args ...any) {
	t.Helper()
	c.EnsureSame()
	for _, i := range c.Alive() {
		if got := count(t, c.Members[i].DB, q, args...); got != want {
			t.Errorf("%s: %s = %d, want %d", c.Members[i].ID, q, got, want)
		}
	}
}

// other returns a running member other than i (the leader if i follows).
func other(c *clustertest.Cluster, i int) int {
	if l := c.Leader(); l != i {
		return l
	}
	return c.Follower()
}

// TestClusterTx: rollback, savepoints, snapshot conflicts, the single
// write slot, the idle timeout and cancellation, from a follower and from
// the leader, each checked on every node.
func TestClusterTx(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE txc(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	for _, on := range []string{"follower", "leader"} {
		t.Run(on, func(t *testing.T) {
			i := c.Leader()
			if on == "follower" {
				i = c.Follower()
			}
			t.Run("Rollback", func(t *testing.T) { txRollback(t, c, i, on) })
			t.Run("Savepoint", func(t *testing.T) { txSavepoint(t, c, i, on) })
			t.Run("Snapshot", func(t *testing.T) { txSnapshot(t, c, i, on) })
			t.Run("SingleWriter", func(t *testing.T) { txSingleWriter(t, c, i, on) })
			t.Run("Idle", func(t *testing.T) { txIdle(t, c, i, on) })
			t.Run("Cancel", func(t *testing.T) { txCancel(t, c, i, on) })
			t.Run("CancelWhileWaiting", func(t *testing.T) { txCancelWaiting(t, c, i, on) })
		})
	}
}

// txRollback: a rolled back transaction leaves no trace on any node, and
// its own reads saw its writes while it was open.
func txRollback(t *testing.T, c *clustertest.Cluster, i int, tag string) {
	db := c.Members[i].DB
	keep, gone := tag+"/rb-keep", tag+"/rb-gone"
	mustExec(t, db, `INSERT INTO txc(v) VALUES (?)`, keep)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, gone)
	mustExec(t, tx, `UPDATE txc SET v = v || '!' WHERE v = ?`, keep)
	if n := count(t, tx, `SELECT count(*) FROM txc WHERE v IN (?, ?)`, gone, keep+"!"); n != 2 {
		t.Errorf("the transaction reads %d of its own 2 writes", n)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v IN (?, ?)`, gone, keep+"!")
	countEverywhere(t, c, 1, `SELECT count(*) FROM txc WHERE v = ?`, keep)
}

// txSavepoint: ROLLBACK TO undoes only what followed the savepoint, also
// for a savepoint taken before the transaction's first write (it is
// replayed on the leader's writer when the transaction moves there).
func txSavepoint(t *testing.T, c *clustertest.Cluster, i int, tag string) {
	db := c.Members[i].DB
	v := func(s string) string { return tag + "/sp-" + s }
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, v("outer1"))
	mustExec(t, tx, `SAVEPOINT a`)
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, v("inner1"))
	mustExec(t, tx, `ROLLBACK TO a`)
	mustExec(t, tx, `RELEASE a`)
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, v("outer2"))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `SAVEPOINT b`)
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, v("inner2"))
	mustExec(t, tx, `ROLLBACK TO b`)
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, v("outer3"))
	mustExec(t, tx, `RELEASE b`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	countEverywhere(t, c, 3, `SELECT count(*) FROM txc WHERE v IN (?, ?, ?)`, v("outer1"), v("outer2"), v("outer3"))
	countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v IN (?, ?)`, v("inner1"), v("inner2"))
}

// txSnapshot: a transaction that read, locally on its node, may write only
// if nothing committed since its snapshot; otherwise it fails with
// SQLITE_BUSY_SNAPSHOT, which also matches SQLITE_BUSY (the code that
// applications retry on).
func txSnapshot(t *testing.T, c *clustertest.Cluster, i int, tag string) {
	db := c.Members[i].DB
	v := func(s string) string { return tag + "/snap-" + s }
	mustExec(t, db, `INSERT INTO txc(v) VALUES (?)`, v("first"))

	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, tx, `SELECT count(*) FROM txc WHERE v LIKE ?`, v("%")); n != 1 {
		t.Fatalf("first read %d", n)
	}
	mustExec(t, c.Members[other(c, i)].DB, `INSERT INTO txc(v) VALUES (?)`, v("concurrent"))
	_, err = tx.Exec(`INSERT INTO txc(v) VALUES (?)`, v("stale"))
	if !errors.Is(err, sqlite3.BUSY_SNAPSHOT) || !errors.Is(err, sqlite3.BUSY) {
		t.Errorf("write after a commit on another node: %v, want SQLITE_BUSY_SNAPSHOT", err)
	}
	tx.Rollback()

	// Once this node has applied that commit, a new snapshot may write.
	// An election on a starved machine commits a no-op, which may refuse a
	// try with BUSY_SNAPSHOT: a few are allowed.
	c.EnsureSame()
	for try := 1; ; try++ {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		n := count(t, tx, `SELECT count(*) FROM txc WHERE v LIKE ?`, v("%"))
		if _, err = tx.Exec(`INSERT INTO txc(v) VALUES (?)`, v(fmt.Sprint("fresh", n))); err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		if err == nil {
			break
		}
		if !errors.Is(err, sqlite3.BUSY_SNAPSHOT) || try == 5 {
			t.Fatalf("read, then write in a fresh transaction (try %d): %v", try, err)
		}
	}
	countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v = ?`, v("stale"))
	countEverywhere(t, c, 1, `SELECT count(*) FROM txc WHERE v = ?`, v("fresh2"))
}

// txSingleWriter: while a write transaction is open on member i, a write
// from any node (the leader, the other members, another connection of i),
// autocommit or in a transaction, waits _busy and gets SQLITE_BUSY; after
// COMMIT they all get in.
func txSingleWriter(t *testing.T, c *clustertest.Cluster, i int, tag string) {
	holder := share(t, c, i, "_txidle=1m")
	impatient := map[int]*sql.DB{}
	for _, j := range c.Alive() {
		impatient[j] = share(t, c, j, "_busy=200ms")
	}
	v := func(s string) string { return tag + "/sw-" + s }
	tx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, v("holder"))
	for _, j := range c.Alive() {
		id := c.Members[j].ID
		if _, err := impatient[j].Exec(`INSERT INTO txc(v) VALUES (?)`, v("auto-"+id)); !errors.Is(err, sqlite3.BUSY) {
			t.Errorf("autocommit write from %s during the transaction: %v, want SQLITE_BUSY", id, err)
		}
		tx2, err := impatient[j].Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx2.Exec(`INSERT INTO txc(v) VALUES (?)`, v("tx-"+id)); !errors.Is(err, sqlite3.BUSY) {
			t.Errorf("second write transaction from %s: %v, want SQLITE_BUSY", id, err)
		}
		tx2.Rollback()
	}
	// Reads never wait.
	if n := count(t, impatient[other(c, i)], `SELECT count(*) FROM txc WHERE v = ?`, v("holder")); n != 0 {
		t.Errorf("uncommitted row visible on another node: %d", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, j := range c.Alive() {
		mustExec(t, impatient[j], `INSERT INTO txc(v) VALUES (?)`, v("after"))
	}
	countEverywhere(t, c, 1, `SELECT count(*) FROM txc WHERE v = ?`, v("holder"))
	countEverywhere(t, c, int64(len(c.Alive())), `SELECT count(*) FROM txc WHERE v = ?`, v("after"))
	countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v LIKE ? AND v NOT IN (?, ?)`, v("%"), v("holder"), v("after"))
}

// txIdle: a transaction left idle past its _txidle is rolled back on the
// leader and frees the write slot (a writer on another node, waiting on
// it, gets in); its next statement or its COMMIT fails with ErrTxIdle.
func txIdle(t *testing.T, c *clustertest.Cluster, i int, tag string) {
	owner := share(t, c, i, "_txidle=500ms")
	patient := share(t, c, other(c, i), "_busy=1m")
	for _, next := range []string{"statement", "commit"} {
		v := func(s string) string { return tag + "/idle-" + next + "-" + s }
		var tx *sql.Tx
		for attempt := 1; tx == nil; attempt++ {
			var err error
			if tx, err = owner.Begin(); err != nil {
				t.Fatal(err)
			}
			// On a slow machine the transaction may go idle between its
			// BEGIN on the leader and this first statement: try again.
			if _, err = tx.Exec(`INSERT INTO txc(v) VALUES (?)`, v("abandoned")); err != nil {
				if !errors.Is(err, hiqlite.ErrTxIdle) || attempt == 5 {
					t.Fatalf("first statement (attempt %d): %v", attempt, err)
				}
				tx.Rollback()
				tx = nil
			}
		}
		// This write gets the slot only once the idle transaction is gone.
		mustExec(t, patient, `INSERT INTO txc(v) VALUES (?)`, v("patient"))
		var err error
		if next == "statement" {
			_, err = tx.Exec(`INSERT INTO txc(v) VALUES (?)`, v("late"))
			if !errors.Is(err, hiqlite.ErrTxIdle) {
				t.Errorf("statement after the idle timeout: %v, want ErrTxIdle", err)
			}
		}
		err = tx.Commit()
		if !errors.Is(err, hiqlite.ErrTxIdle) {
			t.Errorf("commit after the idle timeout (%s first): %v, want ErrTxIdle", next, err)
		}
		countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v IN (?, ?)`, v("abandoned"), v("late"))
		countEverywhere(t, c, 1, `SELECT count(*) FROM txc WHERE v = ?`, v("patient"))
	}
}

// txCancel: cancelling a transaction's context rolls it back on the leader
// and frees the write slot.
func txCancel(t *testing.T, c *clustertest.Cluster, i int, tag string) {
	db := share(t, c, i, "_txidle=1m")
	patient := share(t, c, other(c, i), "_busy=1m")
	v := func(s string) string { return tag + "/cancel-" + s }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO txc(v) VALUES (?)`, v("cancelled")); err != nil {
		t.Fatal(err)
	}
	cancel()
	// With _txidle=1m, only the cancellation can free the slot in time.
	mustExec(t, patient, `INSERT INTO txc(v) VALUES (?)`, v("patient"))
	if err := tx.Commit(); !errors.Is(err, sql.ErrTxDone) && !errors.Is(err, context.Canceled) {
		t.Errorf("commit after cancel: %v, want sql.ErrTxDone or context.Canceled", err)
	}
	countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v = ?`, v("cancelled"))
	countEverywhere(t, c, 1, `SELECT count(*) FROM txc WHERE v = ?`, v("patient"))
	// The connection is usable for the next transaction.
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, v("next"))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	countEverywhere(t, c, 1, `SELECT count(*) FROM txc WHERE v = ?`, v("next"))
}

// txCancelWaiting: cancelling the context of a transaction whose first
// write waits for the slot (held by a transaction on another node) ends
// the wait with context.Canceled, leaves no trace, and leaves the slot to
// the next writer.
func txCancelWaiting(t *testing.T, c *clustertest.Cluster, i int, tag string) {
	holder := share(t, c, other(c, i), "_txidle=1m")
	waiter := share(t, c, i, "_busy=1m")
	v := func(s string) string { return tag + "/cw-" + s }
	htx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, htx, `INSERT INTO txc(v) VALUES (?)`, v("holder"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tx, err := waiter.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := tx.ExecContext(ctx, `INSERT INTO txc(v) VALUES (?)`, v("waiter"))
		done <- err
	}()
	cancel()
	// With _busy=1m, only the cancellation ends the wait in time.
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("write waiting for the slot, cancelled: %v, want context.Canceled", err)
	}
	tx.Rollback()
	if err := htx.Commit(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, waiter, `INSERT INTO txc(v) VALUES (?)`, v("after"))
	countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v = ?`, v("waiter"))
	countEverywhere(t, c, 2, `SELECT count(*) FROM txc WHERE v IN (?, ?)`, v("holder"), v("after"))
}

// TestClusterTxRollbackThenDDL: a transaction rolled back on the leader's
// writer leaves no trace in what the nodes record either. Its statements
// ran only on the leader; a later write that changes no row (DDL) must not
// report, nor record in its session's results, a count left over from them.
func TestClusterTxRollbackThenDDL(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	db := c.Members[c.Leader()].DB
	mustExec(t, db, `CREATE TABLE rd(x)`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO rd SELECT value FROM generate_series(1, 3)`)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	r := mustExec(t, db, `CREATE TABLE rd2(x)`)
	if n, _ := r.RowsAffected(); n != 0 {
		t.Errorf("CREATE TABLE after a rolled back transaction: RowsAffected = %d, want 0", n)
	}
	c.EnsureSame()
}

// TestClusterTxStatementDeadline: a statement of a write transaction
// whose context ends while it runs on the leader's writer is interrupted
// there and fails with the context's error; nothing of the transaction
// remains: deadlines are honoured everywhere.
//
// From a follower the client's deadline closes its session, and the
// leader interrupts the statement when it sees the session go; either way
// the next writer gets in at once, not after the statement.
func TestClusterTxStatementDeadline(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE txc(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	// Seconds of CPU on the writer, far beyond the deadline; it changes
	// no row, so no disk is used even if it runs to the end.
	const slow = `UPDATE txc SET v = v WHERE (WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 1000000) SELECT max(x) FROM r) < 0`
	for _, on := range []string{"follower", "leader"} {
		t.Run(on, func(t *testing.T) {
			i := c.Leader()
			if on == "follower" {
				i = c.Follower()
			}
			db := c.Members[i].DB
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, tx, `INSERT INTO txc(v) VALUES (?)`, on+"/deadline")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := tx.ExecContext(ctx, slow); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("statement past its deadline: %v, want context.DeadlineExceeded", err)
			}
			tx.Rollback()
			mustExec(t, c.Members[other(c, i)].DB, `INSERT INTO txc(v) VALUES (?)`, on+"/next")
			countEverywhere(t, c, 0, `SELECT count(*) FROM txc WHERE v = ?`, on+"/deadline")
		})
	}
}
