package hiqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// Write transactions on a three-node cluster (SPEC §7, issue 4):
// TestClusterTx runs the same cases begun on a follower (forwarded over one
// RPC session) and on the leader itself; then a bank workload on every
// node, and kills of the leader and of a follower around open and
// committing transactions. The GORM shape on a follower is
// TestClusterTransactionOnFollower; the benchmark is in bench_tx_test.go.

// share opens another *sql.DB on member i's running node, with extra DSN
// parameters: _busy and _txidle belong to the connector, the node is
// shared (SPEC §3). The handle keeps the node running, so a member that a
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
// remains (SPEC §7: deadlines are honoured everywhere).
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

// transferOp is one bank transfer and what its caller was told.
type transferOp struct {
	id            string
	node          string // where it ran
	src, dst, amt int64
	retries       int   // attempts that failed with SQLITE_BUSY
	snapshots     int   // of them, with SQLITE_BUSY_SNAPSHOT
	err           error // nil: acknowledged
	atCommit      bool  // err came from COMMIT
}

// TestClusterTxBank moves money between accounts in read-modify-write
// transactions from goroutines on every node, leader and followers, which
// retry on SQLITE_BUSY (and BUSY_SNAPSHOT) as an application would. While
// they run, a checker on every node reads locally: the total never
// changes and every balance equals its opening balance plus the transfers
// recorded so far. At the end every node holds the same balances, those of
// the acknowledged transfers: none lost, none applied twice, and none
// whose COMMIT failed (unless with ErrOutcomeUnknown).
func TestClusterTxBank(t *testing.T) {
	t.Parallel()
	const (
		accounts  = 8
		opening   = 1000
		perNode   = 2  // goroutines on each node
		transfers = 25 // per goroutine
		bound     = 2 * time.Minute
	)
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `
		CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
		CREATE TABLE transfers(id TEXT PRIMARY KEY, src INTEGER NOT NULL, dst INTEGER NOT NULL, amount INTEGER NOT NULL);
		INSERT INTO accounts SELECT value, `+fmt.Sprint(opening)+` FROM generate_series(1, `+fmt.Sprint(accounts)+`);`)
	c.EnsureSame()

	stop := make(chan struct{}) // no new transfers, no more retries
	timer := time.AfterFunc(bound, func() { close(stop) })
	defer timer.Stop()

	// Checkers: one per node, reading locally until the workers are done.
	checked := make([]atomic.Int64, len(c.Members))
	checkDone := make(chan struct{})
	var checkers sync.WaitGroup
	for _, i := range c.Alive() {
		checkers.Add(1)
		go func() {
			defer checkers.Done()
			db := c.Members[i].DB
			bad := 0
			defer func() {
				if bad > 1 {
					t.Errorf("%s: %d bad reads in all", c.Members[i].ID, bad)
				}
			}()
			for {
				total, wrong, err := bankCheck(db, opening)
				switch {
				case err != nil:
					t.Errorf("check on %s: %v", c.Members[i].ID, err)
					return
				case total != accounts*opening || wrong != 0:
					if bad++; bad == 1 {
						t.Errorf("%s read total %d (want %d), %d balances that disagree with the transfers table", c.Members[i].ID, total, accounts*opening, wrong)
					}
				}
				checked[i].Add(1)
				select {
				case <-checkDone:
					return
				case <-time.After(2 * time.Millisecond): // pacing, not synchronisation
				}
			}
		}()
	}

	var (
		mu  sync.Mutex
		ops []transferOp
		wg  sync.WaitGroup
	)
	for _, i := range c.Alive() {
		for g := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := c.Members[i].DB
				rnd := rand.New(rand.NewPCG(uint64(i), uint64(g)))
				for k := range transfers {
					select {
					case <-stop:
						return
					default:
					}
					op := transferOp{id: fmt.Sprintf("%s/%d/%d", c.Members[i].ID, g, k), node: c.Members[i].ID}
					op.src = 1 + rnd.Int64N(accounts)
					op.dst = 1 + (op.src+rnd.Int64N(accounts-1))%accounts
					op.amt = 1 + rnd.Int64N(50)
					for {
						op.atCommit, op.err = transfer(db, op)
						if !errors.Is(op.err, sqlite3.BUSY) {
							break
						}
						op.retries++
						if errors.Is(op.err, sqlite3.BUSY_SNAPSHOT) {
							op.snapshots++
						}
						select {
						case <-stop:
						case <-time.After(time.Duration(rnd.IntN(5)) * time.Millisecond): // the application's backoff
							continue
						}
						break
					}
					mu.Lock()
					ops = append(ops, op)
					mu.Unlock()
					if op.err != nil && !errors.Is(op.err, sqlite3.BUSY) {
						t.Errorf("transfer %s: %v", op.id, op.err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(checkDone)
	checkers.Wait()

	// Tally.
	perNodeAcked := map[string]int{}
	retries, snapshots, gaveUp := 0, 0, 0
	want := map[int64]int64{}
	for a := int64(1); a <= accounts; a++ {
		want[a] = opening
	}
	maybe := map[string]transferOp{}
	status := map[string]transferOp{}
	for _, op := range ops {
		status[op.id] = op
		retries += op.retries
		snapshots += op.snapshots
		switch {
		case op.err == nil:
			perNodeAcked[op.node]++
			want[op.src] -= op.amt
			want[op.dst] += op.amt
		case errors.Is(op.err, hiqlite.ErrOutcomeUnknown):
			maybe[op.id] = op
		case errors.Is(op.err, sqlite3.BUSY):
			gaveUp++
		}
	}
	t.Logf("acknowledged transfers by node: %v; %d busy retries (%d BUSY_SNAPSHOT), %d given up at the time bound, %d unknown outcomes",
		perNodeAcked, retries, snapshots, gaveUp, len(maybe))
	for _, i := range c.Alive() {
		t.Logf("%s: %d concurrent checks", c.Members[i].ID, checked[i].Load())
		if checked[i].Load() == 0 {
			t.Errorf("the checker on %s never ran", c.Members[i].ID)
		}
		if perNodeAcked[c.Members[i].ID] == 0 {
			t.Errorf("no transfer from %s was acknowledged", c.Members[i].ID)
		}
	}

	// Every node holds the same tables; check one against the tally.
	c.EnsureSame()
	db := c.Members[c.Leader()].DB
	rows, err := db.Query(`SELECT id, src, dst, amount FROM transfers`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var op transferOp
		if err := rows.Scan(&op.id, &op.src, &op.dst, &op.amt); err != nil {
			t.Fatal(err)
		}
		st, ok := status[op.id]
		switch {
		case !ok:
			t.Errorf("transfer %s in the table belongs to no caller", op.id)
		case st.src != op.src || st.dst != op.dst || st.amt != op.amt:
			t.Errorf("transfer %s recorded as %d->%d %d, sent as %d->%d %d", op.id, op.src, op.dst, op.amt, st.src, st.dst, st.amt)
		case st.err == nil:
		case maybe[op.id].id != "":
			// Applied after all: count it.
			want[op.src] -= op.amt
			want[op.dst] += op.amt
		default:
			t.Errorf("transfer %s is in the table, but its caller got %v (at commit: %v)", op.id, st.err, st.atCommit)
		}
		delete(status, op.id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for id, st := range status {
		if st.err == nil {
			t.Errorf("acknowledged transfer %s is missing", id)
		}
	}
	for _, i := range c.Alive() {
		for a, w := range want {
			if got := count(t, c.Members[i].DB, `SELECT balance FROM accounts WHERE id = ?`, a); got != w {
				t.Errorf("%s: account %d holds %d, want %d", c.Members[i].ID, a, got, w)
			}
		}
	}
}

// bankCheck reads, in one statement and so from one snapshot, the total of
// all balances and how many balances differ from the opening balance plus
// the transfers recorded.
func bankCheck(db *sql.DB, opening int64) (total, wrong int64, err error) {
	err = db.QueryRow(`SELECT
		(SELECT sum(balance) FROM accounts),
		(SELECT count(*) FROM accounts a WHERE balance != ?
			+ coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)
			- coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0))`, opening).Scan(&total, &wrong)
	return total, wrong, err
}

// transfer moves op.amt from op.src to op.dst and records op.id, as a
// read-modify-write transaction: it reads both balances, then writes the
// new values (not balance - amount), so a lost update would show.
// atCommit reports that err came from COMMIT.
func transfer(db *sql.DB, op transferOp) (atCommit bool, err error) {
	tx, err := db.Begin()
	if err != nil {
		return false, err
	}
	defer tx.Rollback() // after Commit: sql.ErrTxDone, ignored
	bal := map[int64]int64{}
	rows, err := tx.Query(`SELECT id, balance FROM accounts WHERE id IN (?, ?)`, op.src, op.dst)
	if err != nil {
		return false, err
	}
	for rows.Next() {
		var id, b int64
		if err := rows.Scan(&id, &b); err != nil {
			rows.Close()
			return false, err
		}
		bal[id] = b
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	if len(bal) != 2 {
		return false, fmt.Errorf("read %d of accounts %d and %d", len(bal), op.src, op.dst)
	}
	for _, w := range []struct{ id, balance int64 }{{op.src, bal[op.src] - op.amt}, {op.dst, bal[op.dst] + op.amt}} {
		if _, err := tx.Exec(`UPDATE accounts SET balance = ? WHERE id = ?`, w.balance, w.id); err != nil {
			return false, err
		}
	}
	if _, err := tx.Exec(`INSERT INTO transfers VALUES (?, ?, ?, ?)`, op.id, op.src, op.dst, op.amt); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// TestClusterTxLeaderKilled kills the leader while a transaction begun on
// a follower is open, its statements run: the next statement (or the
// COMMIT) fails with an error that says the transaction is gone, nothing
// of it reaches any node once a new leader is elected, and new
// transactions work on the same connection pool.
func TestClusterTxLeaderKilled(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE lk(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	mustExec(t, c.Members[c.Leader()].DB, `INSERT INTO lk(v) VALUES ('statement/before'), ('commit/before')`)
	for _, next := range []string{"statement", "commit"} {
		l, f := c.Leader(), c.Follower()
		fol := c.Members[f].DB
		tx, err := fol.Begin()
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, `INSERT INTO lk(v) VALUES (?)`, next+"/doomed")
		mustExec(t, tx, `UPDATE lk SET v = ? WHERE v = ?`, next+"/changed", next+"/before")
		if n := count(t, tx, `SELECT count(*) FROM lk WHERE v IN (?, ?)`, next+"/doomed", next+"/changed"); n != 2 {
			t.Fatalf("%s: the transaction reads %d of its 2 writes", next, n)
		}
		c.Kill(l)
		switch next {
		case "statement":
			_, err := tx.Exec(`INSERT INTO lk(v) VALUES (?)`, next+"/late")
			if !errors.Is(err, hiqlite.ErrTxAborted) {
				t.Errorf("statement after the leader was killed: %v, want ErrTxAborted", err)
			}
			cerr := tx.Commit()
			if !errors.Is(cerr, hiqlite.ErrTxAborted) {
				t.Errorf("commit after that statement: %v, want ErrTxAborted", cerr)
			}
			t.Logf("statement after the leader was killed: %v; then commit: %v", err, cerr)
		case "commit":
			err := tx.Commit()
			if !errors.Is(err, hiqlite.ErrTxAborted) && !errors.Is(err, hiqlite.ErrNotApplied) {
				t.Errorf("commit after the leader was killed: %v, want ErrTxAborted or ErrNotApplied", err)
			}
			t.Logf("commit after the leader was killed: %v", err)
		}

		// A new transaction from the same follower works once a new
		// leader is elected.
		c.WaitFor("a transaction after the leader was killed", 30*time.Second, func() bool {
			tx, err := fol.Begin()
			if err != nil {
				return false
			}
			if _, err := tx.Exec(`INSERT INTO lk(v) VALUES (?)`, next+"/after"); err != nil {
				tx.Rollback()
				return false
			}
			return tx.Commit() == nil
		})
		c.Start(l)
		c.WaitReady(30 * time.Second)
		countEverywhere(t, c, 0, `SELECT count(*) FROM lk WHERE v IN (?, ?, ?)`, next+"/doomed", next+"/changed", next+"/late")
		countEverywhere(t, c, 1, `SELECT count(*) FROM lk WHERE v = ?`, next+"/before")
		countEverywhere(t, c, 1, `SELECT count(*) FROM lk WHERE v = ?`, next+"/after")
	}
}

// TestClusterTxFollowerKilled kills the follower that holds the write
// slot with an open transaction: closing its session rolls the
// transaction back on the leader at once (its _txidle is a minute), so a
// writer on the leader gets in; the dead node's COMMIT fails with
// ErrTxAborted, and nothing of the transaction is on any node.
func TestClusterTxFollowerKilled(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l, f := c.Leader(), c.Follower()
	mustExec(t, c.Members[l].DB, `CREATE TABLE fk(v TEXT NOT NULL)`)
	c.Kill(f)
	c.Members[f].Params = []string{"_txidle=1m"}
	c.Start(f)
	c.WaitReady(30 * time.Second)
	l = c.Leader()

	tx, err := c.Members[f].DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO fk VALUES ('doomed')`)
	c.Kill(f)
	mustExec(t, share(t, c, l, "_busy=1m"), `INSERT INTO fk VALUES ('leader')`)
	if err := tx.Commit(); !errors.Is(err, hiqlite.ErrTxAborted) {
		t.Errorf("commit on the killed node: %v, want ErrTxAborted", err)
	}
	c.Start(f)
	c.WaitReady(30 * time.Second)
	countEverywhere(t, c, 0, `SELECT count(*) FROM fk WHERE v = 'doomed'`)
	countEverywhere(t, c, 1, `SELECT count(*) FROM fk WHERE v = 'leader'`)
}

// commitOp is one transaction of TestClusterTxCommitThroughFailover and
// what its caller was told.
type commitOp struct {
	key      int64
	err      error
	atCommit bool // err came from COMMIT, after every statement succeeded
}

// TestClusterTxCommitThroughFailover kills the leader while transactions
// from both followers are committing. A COMMIT that returned nil is on
// every node; one that failed is on none, and says why: ErrNotApplied
// (settled by asking the new leader) or ErrTxAborted (the transaction was
// gone before its COMMIT was sent). Only ErrOutcomeUnknown may leave
// either, and then the same on every node. Statements that failed leave
// nothing either.
func TestClusterTxCommitThroughFailover(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE ct(k INTEGER NOT NULL, part INTEGER NOT NULL, padded INTEGER NOT NULL)`)

	var (
		mu         sync.Mutex
		ops        []commitOp
		acked      atomic.Int64
		committing atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	w := 0
	for _, i := range c.Alive() {
		if i == l {
			continue
		}
		for range 2 {
			w++
			db, base := c.Members[i].DB, int64(w)*1_000_000
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := base; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					op := commitOp{key: k}
					op.atCommit, op.err = insertPair(db, k, &committing)
					if op.err == nil {
						acked.Add(1)
					}
					mu.Lock()
					ops = append(ops, op)
					mu.Unlock()
				}
			}()
		}
	}
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()

	c.WaitFor("transactions before the kill", 60*time.Second, func() bool { return acked.Load() >= 20 })
	// Kill while a COMMIT is in flight, so that it may be interrupted
	// (the padding makes each COMMIT slower to replicate).
	c.WaitFor("a COMMIT in flight", 60*time.Second, func() bool { return committing.Load() >= 1 })
	c.Kill(l)
	before := acked.Load()
	c.WaitFor("transactions after the kill", 60*time.Second, func() bool { return acked.Load() >= before+20 })
	halt()
	c.Start(l)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()

	counts := make(map[int]map[int64]int64) // member -> key -> rows
	for _, i := range c.Alive() {
		counts[i] = map[int64]int64{}
		rows, err := c.Members[i].DB.Query(`SELECT k, count(*) FROM ct GROUP BY k`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k, n int64
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			counts[i][k] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	tally := map[string]int{}
	for _, op := range ops {
		var want []int64 // allowed row counts
		switch {
		case op.err == nil:
			tally["committed"]++
			want = []int64{2}
		case errors.Is(op.err, hiqlite.ErrOutcomeUnknown):
			tally["outcome unknown"]++
			t.Logf("transaction %d: %v", op.key, op.err)
			want = []int64{0, 2}
		case !op.atCommit:
			tally["statement failed"]++
			t.Logf("transaction %d, a statement: %v", op.key, op.err)
			want = []int64{0}
		case errors.Is(op.err, hiqlite.ErrNotApplied):
			tally["commit not applied"]++
			t.Logf("transaction %d, COMMIT: %v", op.key, op.err)
			want = []int64{0}
		case errors.Is(op.err, hiqlite.ErrTxAborted):
			tally["commit aborted"]++
			t.Logf("transaction %d, COMMIT: %v", op.key, op.err)
			want = []int64{0}
		default:
			tally["commit failed otherwise"]++
			t.Errorf("COMMIT of transaction %d failed with %v, which is neither ErrNotApplied nor ErrTxAborted nor ErrOutcomeUnknown", op.key, op.err)
			want = []int64{0}
		}
		var got []int64
		for _, i := range c.Alive() {
			got = append(got, counts[i][op.key])
			delete(counts[i], op.key)
		}
		for _, n := range got {
			if n != got[0] || (n != want[0] && (len(want) == 1 || n != want[1])) {
				t.Errorf("transaction %d (err %v, at commit %v) has rows %v on the nodes, want one of %v everywhere", op.key, op.err, op.atCommit, got, want)
				break
			}
		}
	}
	for i, m := range counts {
		for k, n := range m {
			t.Errorf("%s: %d rows of key %d belong to no transaction", c.Members[i].ID, n, k)
		}
	}
	t.Logf("outcomes: %v", tally)
}

// insertPair inserts (key, 0) and (key, 1) in one write transaction;
// committing counts the COMMITs in flight. atCommit reports that err came
// from COMMIT. Each statement carries 128 KiB of incompressible padding,
// which makes the COMMIT's log entry slow to replicate, but stores only
// its length (dumps of the tables stay small).
func insertPair(db *sql.DB, key int64, committing *atomic.Int64) (atCommit bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	pad := make([]byte, 128<<10)
	for i := 0; i < len(pad); i += 8 {
		binary.LittleEndian.PutUint64(pad[i:], rand.Uint64())
	}
	for part := range 2 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ct VALUES (?, ?, length(?))`, key, part, pad); err != nil {
			tx.Rollback()
			return false, err
		}
	}
	committing.Add(1)
	defer committing.Add(-1)
	return true, tx.Commit()
}
