package hiqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

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
