package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestFreshNodeWritesWithoutWaitReady opens fresh single nodes and writes at
// once, as an application that switched drivers would: no WaitReady. The
// write, a transaction's first write and a linearizable read wait for the
// node to elect itself instead of failing with "not the leader".
func TestFreshNodeWritesWithoutWaitReady(t *testing.T) {
	t.Parallel()
	fresh := func(t *testing.T, params string) *sql.DB {
		t.Helper()
		db, err := sql.Open("hiqlite", t.TempDir()+params)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	t.Run("exec", func(t *testing.T) {
		t.Parallel()
		db := fresh(t, "")
		if _, err := db.Exec(`CREATE TABLE t(x)`); err != nil {
			t.Fatalf("first Exec on a fresh node: %v", err)
		}
		mustExec(t, db, `INSERT INTO t VALUES (1)`)
	})
	t.Run("tx", func(t *testing.T) {
		t.Parallel()
		db := fresh(t, "")
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`CREATE TABLE t(x)`); err != nil {
			tx.Rollback()
			t.Fatalf("first write of a transaction on a fresh node: %v", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("linearizable", func(t *testing.T) {
		t.Parallel()
		db := fresh(t, "?_consistency=linearizable")
		var n int
		if err := db.QueryRow(`SELECT 1`).Scan(&n); err != nil {
			t.Fatalf("first linearizable read on a fresh node: %v", err)
		}
	})
}

// TestWritesWaitForNewLeader kills the leader and at once writes on both
// followers, before any of them can have been elected: an autocommit write,
// a transaction and a linearizable read wait for the new leader within
// their deadline instead of failing.
func TestWritesWaitForNewLeader(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE w(k INTEGER PRIMARY KEY)`)
	var dbs []*sql.DB
	for i := range c.Members {
		if i != l {
			dbs = append(dbs, c.Members[i].DB)
		}
	}
	// A connection each, so that the operations below need no new one.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conns []*sql.Conn
	for _, db := range dbs {
		for range 3 {
			sc, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			conns = append(conns, sc)
		}
	}
	c.Kill(l)
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, sc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0:
				_, errs[i] = sc.ExecContext(ctx, `INSERT INTO w VALUES (?)`, i)
			case 1:
				var tx *sql.Tx
				if tx, errs[i] = sc.BeginTx(ctx, nil); errs[i] != nil {
					return
				}
				if _, errs[i] = tx.ExecContext(ctx, `INSERT INTO w VALUES (?)`, i); errs[i] != nil {
					tx.Rollback()
					return
				}
				errs[i] = tx.Commit()
			case 2:
				var n int
				errs[i] = sc.QueryRowContext(hiqlite.WithConsistency(ctx, hiqlite.Linearizable), `SELECT count(*) FROM w`).Scan(&n)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("operation %d (kind %d) during the election: %v", i, i%3, err)
		}
	}
	c.EnsureSame()
}

// TestNoQuorumWaitsUntilDeadline leaves one node of three: no leader can be
// elected. A write, a transaction's first write and a linearizable read wait
// for one until their deadline, then fail with an error that says why; the
// read's error says nothing about writes.
func TestNoQuorumWaitsUntilDeadline(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE q(k)`)
	// Kill the followers: the leader keeps believing it leads for a
	// moment, and then steps down, which is when reads and writes used to
	// fail at once, or reads to speak of writes.
	for i := range c.Members {
		if i != l {
			c.Kill(i)
		}
	}
	db := c.Members[l].DB
	const wait = 3 * time.Second
	check := func(t *testing.T, ctx context.Context, err error, read bool) {
		t.Helper()
		if err == nil {
			t.Fatal("succeeded without a quorum")
		}
		t.Logf("error: %v", err)
		if ctx.Err() == nil {
			t.Fatalf("failed before its deadline: %v", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, hiqlite.ErrNoLeader) {
			t.Errorf("error %q does not match both context.DeadlineExceeded and ErrNoLeader", err)
		}
		if read && (errors.Is(err, hiqlite.ErrOutcomeUnknown) || strings.Contains(err.Error(), "write")) {
			t.Errorf("a failed read speaks of a write: %v", err)
		}
	}
	t.Run("linearizable read", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(hiqlite.WithConsistency(context.Background(), hiqlite.Linearizable), wait)
		defer cancel()
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM q`).Scan(&n)
		check(t, ctx, err, true)
	})
	t.Run("exec", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := db.ExecContext(ctx, `INSERT INTO q VALUES (1)`)
		check(t, ctx, err, false)
	})
	t.Run("tx", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		_, err = tx.ExecContext(ctx, `INSERT INTO q VALUES (1)`)
		check(t, ctx, err, false)
	})
}
