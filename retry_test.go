package hiqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestRetryTxErrors: which errors from fn make RetryTx run it again.
func TestRetryTxErrors(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE r(x)`)
	own := errors.New("the application's own error")
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{fmt.Errorf("update: %w", sqlite3.BUSY), true},
		{sqlite3.BUSY_SNAPSHOT, true},
		{fmt.Errorf("commit: %w", hiqlite.ErrNotApplied), true},
		{driver.ErrBadConn, true},
		{hiqlite.ErrNotLeader, true},
		{fmt.Errorf("%w: the connection to the leader was lost", hiqlite.ErrTxAborted), true},
		{fmt.Errorf("%w: %w", hiqlite.ErrTxAborted, sqlite3.CONSTRAINT), false}, // RAISE(ROLLBACK)
		{fmt.Errorf("%w: %w", hiqlite.ErrOutcomeUnknown, hiqlite.ErrNoLeader), false},
		{hiqlite.ErrNotVisible, false},
		{sqlite3.CONSTRAINT, false},
		{own, false},
	} {
		calls := 0
		err := hiqlite.RetryTx(context.Background(), db, nil, func(tx *sql.Tx) error {
			calls++
			if _, err := tx.Exec(`INSERT INTO r VALUES (?)`, calls); err != nil {
				return err
			}
			if calls == 1 {
				return tc.err
			}
			return nil
		})
		switch {
		case tc.retry && (err != nil || calls != 2):
			t.Errorf("%v: RetryTx = %v after %d calls, want nil after 2", tc.err, err, calls)
		case !tc.retry && (!errors.Is(err, tc.err) || calls != 1):
			t.Errorf("%v: RetryTx = %v after %d calls, want that error after 1", tc.err, err, calls)
		}
	}
	// Only the retried attempts' second call committed; the first attempts
	// and the refused ones rolled back.
	if n := count(t, db, `SELECT count(*) FROM r WHERE x = 1`); n != 0 {
		t.Errorf("%d rows of failed attempts committed", n)
	}
	if n := count(t, db, `SELECT count(*) FROM r WHERE x = 2`); n != 6 {
		t.Errorf("%d rows of retried attempts committed, want 6", n)
	}
}

// TestRetryTxSnapshot: a real SQLITE_BUSY_SNAPSHOT (a write commits between
// fn's read and its write) is retried, and the retry reads the new value.
// A write slot held past ctx's deadline makes RetryTx give up with both
// SQLITE_BUSY and the deadline.
func TestRetryTxSnapshot(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "_busy=20ms")
	mustExec(t, db, `CREATE TABLE c(n); INSERT INTO c VALUES (0)`)
	calls := 0
	err := hiqlite.RetryTx(context.Background(), db, nil, func(tx *sql.Tx) error {
		calls++
		var n int64
		if err := tx.QueryRow(`SELECT n FROM c`).Scan(&n); err != nil {
			return err
		}
		if calls == 1 {
			mustExec(t, db, `UPDATE c SET n = n + 10`)
		}
		_, err := tx.Exec(`UPDATE c SET n = ?`, n+1)
		return err
	})
	if err != nil || calls != 2 {
		t.Fatalf("RetryTx = %v after %d calls, want nil after 2", err, calls)
	}
	if n := count(t, db, `SELECT n FROM c`); n != 11 {
		t.Errorf("n = %d, want 11", n)
	}

	ctx := context.Background()
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	mustExecCtx(t, holder, `BEGIN IMMEDIATE`)
	defer mustExecCtx(t, holder, `ROLLBACK`)
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	calls = 0
	err = hiqlite.RetryTx(ctx, db, nil, func(tx *sql.Tx) error {
		calls++
		_, err := tx.Exec(`UPDATE c SET n = 0`)
		return err
	})
	if !errors.Is(err, sqlite3.BUSY) || !errors.Is(err, context.DeadlineExceeded) || calls < 2 {
		t.Errorf("RetryTx while the slot is held = %v after %d calls, want BUSY and the deadline after several", err, calls)
	}
}

// TestClusterRetryTxBank runs the bank workload of TestClusterTxBank with
// RetryTx, from goroutines on every node, with deferred transactions (so
// read-then-write conflicts end in SQLITE_BUSY_SNAPSHOT, which RetryTx
// retries). Every transfer is acknowledged (or, should a fail-over leave
// a COMMIT's outcome unknown, counted if it is in the table), every
// acknowledged transfer is in the table once, and the balances and their
// total are exact on every node.
func TestClusterRetryTxBank(t *testing.T) {
	t.Parallel()
	const (
		accounts  = 8
		opening   = 1000
		perNode   = 2  // goroutines on each node
		transfers = 15 // per goroutine
	)
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `
		CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
		CREATE TABLE transfers(id TEXT PRIMARY KEY, src INTEGER NOT NULL, dst INTEGER NOT NULL, amount INTEGER NOT NULL);
		INSERT INTO accounts SELECT value, `+fmt.Sprint(opening)+` FROM generate_series(1, `+fmt.Sprint(accounts)+`);`)
	c.EnsureSame()

	var (
		mu    sync.Mutex
		acked = map[string]transferOp{}
		maybe = map[string]transferOp{} // ErrOutcomeUnknown
		calls atomic.Int64
		wg    sync.WaitGroup
	)
	for _, i := range c.Alive() {
		for g := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := c.Members[i].DB
				rnd := rand.New(rand.NewPCG(uint64(i), uint64(g)))
				for k := range transfers {
					op := transferOp{id: fmt.Sprintf("%s/%d/%d", c.Members[i].ID, g, k), node: c.Members[i].ID}
					op.src = 1 + rnd.Int64N(accounts)
					op.dst = 1 + (op.src+rnd.Int64N(accounts-1))%accounts
					op.amt = 1 + rnd.Int64N(50)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					err := hiqlite.RetryTx(ctx, db, nil, func(tx *sql.Tx) error {
						calls.Add(1)
						return transferTx(tx, op)
					})
					cancel()
					mu.Lock()
					switch {
					case err == nil, errors.Is(err, hiqlite.ErrNotVisible):
						acked[op.id] = op
					case errors.Is(err, hiqlite.ErrOutcomeUnknown):
						maybe[op.id] = op
					default:
						t.Errorf("transfer %s: %v", op.id, err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d transfers acknowledged, %d with an unknown outcome, in %d calls of fn", len(acked), len(maybe), calls.Load())
	if len(acked)+len(maybe) != len(c.Members)*perNode*transfers {
		t.Errorf("%d transfers acknowledged, want %d", len(acked), len(c.Members)*perNode*transfers)
	}

	c.EnsureSame()
	want := map[int64]int64{}
	for a := int64(1); a <= accounts; a++ {
		want[a] = opening
	}
	for _, op := range acked {
		want[op.src] -= op.amt
		want[op.dst] += op.amt
	}
	db := c.Members[c.Leader()].DB
	rows, err := db.Query(`SELECT id, src, dst, amount FROM transfers`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var op transferOp
		if err := rows.Scan(&op.id, &op.src, &op.dst, &op.amt); err != nil {
			t.Fatal(err)
		}
		a, ok := acked[op.id]
		if m, unknown := maybe[op.id]; unknown {
			a, ok = m, true // applied after all: count it
			want[m.src] -= m.amt
			want[m.dst] += m.amt
		}
		switch {
		case !ok:
			t.Errorf("transfer %s is in the table but was not acknowledged", op.id)
		case a.src != op.src || a.dst != op.dst || a.amt != op.amt:
			t.Errorf("transfer %s recorded as %d->%d %d, sent as %d->%d %d", op.id, op.src, op.dst, op.amt, a.src, a.dst, a.amt)
		}
		seen[op.id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for id := range acked {
		if !seen[id] {
			t.Errorf("acknowledged transfer %s is missing", id)
		}
	}
	for _, i := range c.Alive() {
		if total := count(t, c.Members[i].DB, `SELECT sum(balance) FROM accounts`); total != accounts*opening {
			t.Errorf("%s: total %d, want %d", c.Members[i].ID, total, accounts*opening)
		}
		for a, w := range want {
			if got := count(t, c.Members[i].DB, `SELECT balance FROM accounts WHERE id = ?`, a); got != w {
				t.Errorf("%s: account %d holds %d, want %d", c.Members[i].ID, a, got, w)
			}
		}
	}
}
