package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestTxLock: with _txlock=immediate a plain BEGIN and BeginTx take the
// write slot at once, so another writer waits (and, past a short _busy,
// gets SQLITE_BUSY); BEGIN DEFERRED and a read-only transaction still take
// nothing.
func TestTxLock(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "_txlock=immediate", "_busy=50ms")
	mustExec(t, db, `CREATE TABLE l(x)`)
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	holds := func(what string, want bool) {
		t.Helper()
		_, err := db.Exec(`INSERT INTO l VALUES (1)`)
		switch {
		case want && !errors.Is(err, sqlite3.BUSY):
			t.Errorf("%s: a write beside it got %v, want SQLITE_BUSY", what, err)
		case !want && err != nil:
			t.Errorf("%s: a write beside it got %v, want it to succeed", what, err)
		}
	}

	for _, begin := range []string{`BEGIN`, `BEGIN TRANSACTION`, `BEGIN IMMEDIATE`, `BEGIN EXCLUSIVE`} {
		mustExecCtx(t, c, begin)
		holds(begin, true)
		mustExecCtx(t, c, `ROLLBACK`)
	}
	mustExecCtx(t, c, `BEGIN DEFERRED`)
	holds("BEGIN DEFERRED", false)
	mustExecCtx(t, c, `ROLLBACK`)

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	holds("BeginTx", true)
	tx.Rollback()

	tx, err = db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	holds("read-only BeginTx", false)
	tx.Rollback()

	// The default stays deferred: a plain BEGIN takes nothing.
	db2, _ := open(t, "_busy=50ms")
	mustExec(t, db2, `CREATE TABLE l(x)`)
	tx, err = db2.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db2.Exec(`INSERT INTO l VALUES (1)`); err != nil {
		t.Errorf("deferred BeginTx: a write beside it got %v", err)
	}
	tx.Rollback()
}

// TestClusterTxLockToggles is the todo service's case: 40 read-then-write
// toggles at once from the three nodes, each reading a counter and writing
// it back plus one. With _txlock=immediate every one succeeds on its first
// try and the counter ends at 40. With the default, deferred, the same
// workload fails with SQLITE_BUSY_SNAPSHOT: there every toggle waits after
// its read until all have read, so all of them read the same value and at
// most one can write (with immediate that wait could never end, since the
// first toggle holds the write slot from BEGIN). With "retry", deferred
// transactions run through RetryTx, which retries those failures until
// every toggle has succeeded.
func TestClusterTxLockToggles(t *testing.T) {
	t.Parallel()
	const toggles = 40
	for _, mode := range []string{"immediate", "deferred", "retry"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			txlock := mode
			if mode == "retry" {
				txlock = "deferred"
			}
			c := clustertest.New(t, 3, "_txlock="+txlock, "_busy=1m")
			mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE todo(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO todo VALUES (1, 0)`)
			c.EnsureSame()

			var read sync.WaitGroup // deferred only: every toggle has read
			read.Add(toggles)
			allRead := make(chan struct{})
			go func() { read.Wait(); close(allRead) }()

			errs := make([]error, toggles)
			var wg sync.WaitGroup
			for k := range toggles {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db := c.Members[k%len(c.Members)].DB
					if mode == "retry" {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						defer cancel()
						errs[k] = hiqlite.RetryTx(ctx, db, nil, func(tx *sql.Tx) error {
							return toggleTx(tx, func() error { return nil })
						})
						return
					}
					errs[k] = toggle(db, func() error {
						if mode != "deferred" {
							return nil
						}
						read.Done()
						select {
						case <-allRead:
							return nil
						case <-time.After(time.Minute):
							return errors.New("not every toggle read within a minute")
						}
					})
				}()
			}
			wg.Wait()

			ok, snapshots := 0, 0
			for k, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, sqlite3.BUSY_SNAPSHOT):
					snapshots++
				default:
					t.Errorf("toggle %d: %v", k, err)
				}
			}
			t.Logf("%s: %d toggles succeeded, %d failed with BUSY_SNAPSHOT", mode, ok, snapshots)
			c.EnsureSame()
			n := count(t, c.Members[c.Leader()].DB, `SELECT n FROM todo WHERE id = 1`)
			if n != int64(ok) {
				t.Errorf("counter = %d, but %d toggles succeeded", n, ok)
			}
			switch mode {
			case "immediate", "retry":
				if ok != toggles {
					t.Errorf("%d of %d immediate toggles succeeded", ok, toggles)
				}
			case "deferred":
				if snapshots == 0 || ok > 1 {
					t.Errorf("deferred toggles that read the same value: %d succeeded, %d failed with BUSY_SNAPSHOT; want at most 1 and some failures", ok, snapshots)
				}
			}
		})
	}
}

// toggle reads the counter and writes it back plus one in one transaction;
// afterRead runs between the two.
func toggle(db *sql.DB, afterRead func() error) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := toggleTx(tx, afterRead); err != nil {
		return err
	}
	return tx.Commit()
}

// toggleTx runs toggle's statements in tx.
func toggleTx(tx *sql.Tx, afterRead func() error) error {
	var n int64
	if err := tx.QueryRow(`SELECT n FROM todo WHERE id = 1`).Scan(&n); err != nil {
		return err
	}
	if err := afterRead(); err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE todo SET n = ? WHERE id = 1`, n+1); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}
