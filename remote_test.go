package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// openRemote opens a remote client of c that knows the given members.
func openRemote(t testing.TB, c *clustertest.Cluster, members ...int) *sql.DB {
	t.Helper()
	db, err := sql.Open("hiqlite", c.RemoteDSN(members...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestRemoteClient runs what a member's connection does through a remote
// client attached to the leader, then to a follower: writes with
// LastInsertId and RowsAffected, RETURNING, a UNIQUE violation with its
// extended code, transactions committed and rolled back, rows streamed in
// several batches and closed early, and linearizable reads.
func TestRemoteClient(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT UNIQUE, at DATETIME, ok BOOLEAN)`)
	for _, attach := range []struct {
		name string
		i    int
	}{{"leader", l}, {"follower", c.Follower()}} {
		t.Run(attach.name, func(t *testing.T) {
			db := openRemote(t, c, attach.i)
			ctx := context.Background()
			p := attach.name + "-"
			now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
			res := mustExec(t, db, `INSERT INTO r(v, at, ok) VALUES (?, ?, ?)`, p+"a", now, true)
			id, err := res.LastInsertId()
			if err != nil || id == 0 {
				t.Fatalf("LastInsertId = %d, %v", id, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("RowsAffected = %d, want 1", n)
			}
			var gotAt time.Time
			var gotOK bool
			if err := db.QueryRowContext(hiqlite.WithConsistency(ctx, hiqlite.Linearizable), `SELECT at, ok FROM r WHERE id = ?`, id).Scan(&gotAt, &gotOK); err != nil {
				t.Fatal(err)
			}
			if !gotAt.Equal(now) || !gotOK {
				t.Fatalf("read back at=%v ok=%v, want %v true", gotAt, gotOK, now)
			}

			var retID int64
			var retV string
			if err := db.QueryRow(`INSERT INTO r(v) VALUES (?) RETURNING id, v`, p+"b").Scan(&retID, &retV); err != nil {
				t.Fatal(err)
			}
			if retID <= id || retV != p+"b" {
				t.Fatalf("RETURNING gave %d %q", retID, retV)
			}

			_, err = db.Exec(`INSERT INTO r(v) VALUES (?)`, p+"a")
			var serr *sqlite3.Error
			if !errors.As(err, &serr) || !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
				t.Fatalf("duplicate insert: %v (%T), want a *sqlite3.Error with CONSTRAINT_UNIQUE", err, err)
			}

			// A transaction rolled back leaves nothing; one committed
			// is there, and reads its own writes before COMMIT.
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, tx, `INSERT INTO r(v) VALUES (?)`, p+"gone")
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			tx, err = db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				mustExec(t, tx, `INSERT INTO r(v) VALUES (?)`, fmt.Sprintf("%stx%d", p, i))
			}
			var inTx int
			if err := tx.QueryRow(`SELECT count(*) FROM r WHERE v LIKE ?`, p+"tx%").Scan(&inTx); err != nil || inTx != 3 {
				t.Fatalf("own writes in the transaction: %d, %v", inTx, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			var n int
			lin := hiqlite.WithConsistency(ctx, hiqlite.Linearizable)
			if err := db.QueryRowContext(lin, `SELECT count(*) FROM r WHERE v LIKE ? OR v = ?`, p+"tx%", p+"gone").Scan(&n); err != nil || n != 3 {
				t.Fatalf("after commit and rollback: %d rows, %v; want 3", n, err)
			}

			// Rows in several batches, read to the end, then closed early.
			const many = 1000
			rows, err := db.QueryContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < ?) SELECT i, printf('%0100d', i) FROM s`, many)
			if err != nil {
				t.Fatal(err)
			}
			var count, sum int
			for rows.Next() {
				var i int
				var s string
				if err := rows.Scan(&i, &s); err != nil {
					t.Fatal(err)
				}
				count++
				sum += i
			}
			if err := rows.Err(); err != nil || count != many || sum != many*(many+1)/2 {
				t.Fatalf("streamed %d rows (sum %d), %v", count, sum, err)
			}
			rows.Close()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rows, err = conn.QueryContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 1000000) SELECT i FROM s`)
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				rows.Next()
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			// The connection goes on after rows closed early.
			if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM r WHERE v = ?`, p+"b").Scan(&n); err != nil || n != 1 {
				t.Fatalf("after closing rows early: %d, %v", n, err)
			}
			conn.Close()
		})
	}
}

// TestRemoteCancel: cancelling the context of a long read interrupts it
// on the member, and the connection serves the next statement.
func TestRemoteCancel(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	db := openRemote(t, c, c.Follower())
	db.SetMaxOpenConns(1)
	long := `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s) SELECT count(*) FROM s`
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		var n int
		errc <- db.QueryRowContext(ctx, long).Scan(&n)
	}()
	// Cancel once the read has reached the member and runs.
	waitfor.Cond(t, "the long read to be in flight", 10*time.Second, func() bool {
		return db.Stats().InUse == 1
	})
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled read did not return")
	}
	// A deadline interrupts it the same way.
	dctx, dcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer dcancel()
	var n int
	if err := db.QueryRowContext(dctx, long).Scan(&n); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want context.DeadlineExceeded", err)
	}
	if err := db.QueryRow(`SELECT 41 + 1`).Scan(&n); err != nil || n != 42 {
		t.Fatalf("after the cancelled reads: %d, %v", n, err)
	}
}

// TestRemoteBusySnapshot: a remote transaction that read, then writes
// after another write committed, fails with SQLITE_BUSY_SNAPSHOT, as on a
// member.
func TestRemoteBusySnapshot(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE b(k INTEGER PRIMARY KEY, v INTEGER)`)
	mustExec(t, c.Members[l].DB, `INSERT INTO b VALUES (1, 0)`)
	db := openRemote(t, c, c.Follower())
	ctx := hiqlite.WithConsistency(context.Background(), hiqlite.Linearizable)
	// A linearizable read first: the member has the row before the
	// transaction's snapshot (reads in a transaction use its snapshot).
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM b WHERE k = 1`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // the same member connection for the transaction
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT v FROM b WHERE k = 1`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	mustExec(t, c.Members[l].DB, `UPDATE b SET v = v + 1`)
	// The member's replica may apply the write later: it is the
	// snapshot's index the leader compares, so waiting is not needed.
	_, err = tx.ExecContext(ctx, `UPDATE b SET v = ? WHERE k = 1`, v+10)
	if !errors.Is(err, sqlite3.BUSY_SNAPSHOT) {
		t.Fatalf("write after a concurrent commit: %v, want SQLITE_BUSY_SNAPSHOT", err)
	}
}

// TestRemoteCommitInterrupted: a COMMIT whose session is lost right after
// it was sent (or just before) is settled by another member: committed
// (nil, and the rows are there) or not (ErrNotApplied, and they are not),
// never unknown.
func TestRemoteCommitInterrupted(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE ci(k INTEGER PRIMARY KEY)`)
	db := openRemote(t, c)
	ctx := context.Background()
	for k := range 6 {
		sent := k%2 == 0
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO ci VALUES (?)`, k); err != nil {
			t.Fatal(err)
		}
		var commitErr error
		if err := conn.Raw(func(dc any) error { commitErr = hiqlite.CommitAndDrop(dc, sent); return nil }); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		var n int
		lin := hiqlite.WithConsistency(ctx, hiqlite.Linearizable)
		if err := db.QueryRowContext(lin, `SELECT count(*) FROM ci WHERE k = ?`, k).Scan(&n); err != nil {
			t.Fatal(err)
		}
		switch {
		case commitErr == nil && n != 1:
			t.Fatalf("COMMIT %d settled as committed, but the row is not there", k)
		case errors.Is(commitErr, hiqlite.ErrNotApplied) && n != 0:
			t.Fatalf("COMMIT %d settled as not applied, but the row is there", k)
		case commitErr != nil && !errors.Is(commitErr, hiqlite.ErrNotApplied):
			t.Fatalf("COMMIT %d: %v, want nil or ErrNotApplied", k, commitErr)
		case !sent && commitErr == nil:
			t.Fatalf("a COMMIT never sent settled as committed")
		}
		t.Logf("COMMIT %d (sent %v): %v", k, sent, commitErr)
	}
}

// TestRemoteBusy: while a remote transaction holds the leader's write
// slot, another remote writer waits the member's _busy, then gets
// SQLITE_BUSY, as on a member.
func TestRemoteBusy(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3, "_busy=200ms")
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE bz(k INTEGER PRIMARY KEY)`)
	db := openRemote(t, c, c.Follower())
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	mustExec(t, tx, `INSERT INTO bz VALUES (1)`)
	_, err = db.ExecContext(ctx, `INSERT INTO bz VALUES (2)`)
	if !errors.Is(err, sqlite3.BUSY) {
		t.Fatalf("a write while a transaction holds the slot: %v, want SQLITE_BUSY", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `INSERT INTO bz VALUES (2)`)
}
