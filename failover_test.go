package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// opOutcome is what a write told its caller.
type opOutcome struct {
	key  int64
	tx   bool  // a transaction of two inserts, else one autocommit insert
	err  error // nil: acknowledged
	kind string
}

// TestClusterWritesThroughFailover writes from both followers, in autocommit
// statements and in transactions, while the leader is killed. Afterwards
// every node agrees and each write is where its caller was told it is:
// acknowledged writes exactly once (never lost, never doubled by a retry),
// writes reported as not applied nowhere. Only ErrOutcomeUnknown may leave
// either, and it is counted.
func TestClusterWritesThroughFailover(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE fw(k INTEGER NOT NULL, part INTEGER NOT NULL)`)
	var writersOn []int
	for i := range c.Members {
		if i != l {
			writersOn = append(writersOn, i, i) // two writers per follower
		}
	}

	var (
		mu    sync.Mutex
		ops   []opOutcome
		acked atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w, m := range writersOn {
		db := c.Members[m].DB
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				select {
				case <-stop:
					return
				default:
				}
				op := opOutcome{key: int64(w*100000 + i), tx: i%2 == 1}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				if op.tx {
					op.err = txInsert(ctx, db, op.key)
				} else {
					_, op.err = db.ExecContext(ctx, `INSERT INTO fw VALUES (?, 0)`, op.key)
				}
				cancel()
				if op.err == nil {
					acked.Add(1)
				}
				mu.Lock()
				ops = append(ops, op)
				mu.Unlock()
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	c.WaitFor("writes before the kill", 30*time.Second, func() bool { return acked.Load() >= 40 })
	before := acked.Load()
	killed := time.Now()
	c.Kill(l)
	c.WaitFor("writes after the kill", 60*time.Second, func() bool { return acked.Load() >= before+40 })
	t.Logf("%d writes acknowledged before the kill, %d within %v after it", before, acked.Load()-before, time.Since(killed).Round(time.Millisecond))
	close(stop)
	wg.Wait()

	c.Start(l)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()

	db := c.Members[l].DB
	if err := hiqliteLinearizable(db); err != nil {
		t.Fatal(err)
	}
	counts := map[int64]int{}
	rows, err := db.Query(`SELECT k, count(*) FROM fw GROUP BY k`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k int64
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		counts[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	tally := map[string]int{}
	for _, op := range ops {
		want := 1
		if op.tx {
			want = 2
		}
		got := counts[op.key]
		delete(counts, op.key)
		switch {
		case op.err == nil:
			tally["acknowledged"]++
			if got != want {
				t.Errorf("acknowledged write %d (tx=%v) has %d rows, want %d", op.key, op.tx, got, want)
			}
		case errors.Is(op.err, hiqlite.ErrOutcomeUnknown):
			tally["unknown"]++
			t.Logf("write %d (tx=%v): %v", op.key, op.tx, op.err)
			if got != 0 && got != want {
				t.Errorf("write %d with an unknown outcome has %d rows, want 0 or %d", op.key, got, want)
			}
		default:
			tally[fmt.Sprintf("failed (%.60s)", op.err.Error())]++
			if got != 0 {
				t.Errorf("write %d (tx=%v) failed with %q yet has %d rows", op.key, op.tx, op.err, got)
			}
		}
	}
	for k, n := range counts {
		t.Errorf("rows of key %d (%d) belong to no write", k, n)
	}
	t.Logf("outcomes: %v", tally)
}

// txInsert inserts key twice in one write transaction.
func txInsert(ctx context.Context, db *sql.DB, key int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for part := range 2 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO fw VALUES (?, ?)`, key, part); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// hiqliteLinearizable waits until db's node has applied every committed
// write.
func hiqliteLinearizable(db *sql.DB) error {
	ctx, cancel := context.WithTimeout(hiqlite.WithConsistency(context.Background(), hiqlite.Linearizable), 30*time.Second)
	defer cancel()
	var n int
	return db.QueryRowContext(ctx, `SELECT count(*) FROM fw`).Scan(&n)
}
