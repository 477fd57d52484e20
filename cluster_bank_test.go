package hiqlite_test

import (
	"database/sql"
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
// retry on SQLITE_BUSY (and BUSY_SNAPSHOT), and on errors that prove a
// transfer did not commit, as an application would. While
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
						// Busy, and what proves the transfer did not
						// commit (a leader lost before COMMIT, a COMMIT
						// settled as not applied), are tried again, as
						// an application (or RetryTx) would.
						if !hiqlite.Retryable(op.err) {
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
					if op.err != nil && !hiqlite.Retryable(op.err) && !errors.Is(op.err, hiqlite.ErrNotVisible) {
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
	retries, snapshots, gaveUp, notVisible := 0, 0, 0, 0
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
		case op.err == nil || errors.Is(op.err, hiqlite.ErrNotVisible):
			// ErrNotVisible: committed, not yet applied on the
			// caller's node when its wait ended.
			if op.err != nil {
				notVisible++
			}
			perNodeAcked[op.node]++
			want[op.src] -= op.amt
			want[op.dst] += op.amt
		case errors.Is(op.err, hiqlite.ErrOutcomeUnknown):
			maybe[op.id] = op
		case errors.Is(op.err, sqlite3.BUSY):
			gaveUp++
		}
	}
	t.Logf("acknowledged transfers by node: %v (%d of them committed but not yet visible on their node); %d busy retries (%d BUSY_SNAPSHOT), %d given up at the time bound, %d unknown outcomes",
		perNodeAcked, notVisible, retries, snapshots, gaveUp, len(maybe))
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
		case st.err == nil, errors.Is(st.err, hiqlite.ErrNotVisible):
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
		if st.err == nil || errors.Is(st.err, hiqlite.ErrNotVisible) {
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
	if err := transferTx(tx, op); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// transferTx runs transfer's statements in tx.
func transferTx(tx *sql.Tx, op transferOp) error {
	bal := map[int64]int64{}
	rows, err := tx.Query(`SELECT id, balance FROM accounts WHERE id IN (?, ?)`, op.src, op.dst)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, b int64
		if err := rows.Scan(&id, &b); err != nil {
			rows.Close()
			return err
		}
		bal[id] = b
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(bal) != 2 {
		return fmt.Errorf("read %d of accounts %d and %d", len(bal), op.src, op.dst)
	}
	for _, w := range []struct{ id, balance int64 }{{op.src, bal[op.src] - op.amt}, {op.dst, bal[op.dst] + op.amt}} {
		if _, err := tx.Exec(`UPDATE accounts SET balance = ? WHERE id = ?`, w.balance, w.id); err != nil {
			return err
		}
	}
	_, err = tx.Exec(`INSERT INTO transfers VALUES (?, ?, ?, ?)`, op.id, op.src, op.dst, op.amt)
	return err
}
