package hiqlite_test

import (
	"context"
	"database/sql"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// entries lists the names in dir, to tell that nothing was created there.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestMemory runs every feature on in-memory nodes, and checks that they
// create no file, in the current directory or in TMPDIR, and leave no
// goroutine behind once closed.
func TestMemory(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// A temporary directory of this test's own: the shared one changes
	// with whatever else runs on the machine.
	tmp, err := os.MkdirTemp("", "hiqlite-memory-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	t.Setenv("TMPDIR", tmp)
	cwdBefore := entries(t, wd)
	goroutines := runtime.NumGoroutine()

	t.Run("forms", func(t *testing.T) {
		for _, dsn := range []string{":memory:", "file::memory:", "file::memory:?cache=shared",
			"file:app?mode=memory&cache=shared", ":memory:?_foreign_keys=true&_busy=1s"} {
			db, n := openDSN(t, dsn)
			if n.DataDir() != hiqlite.MemoryDir {
				t.Errorf("%s: DataDir %q, want %q", dsn, n.DataDir(), hiqlite.MemoryDir)
			}
			mustExec(t, db, `CREATE TABLE t(x)`)
			mustExec(t, db, `INSERT INTO t VALUES (?)`, dsn)
			var got string
			if err := db.QueryRow(`SELECT x FROM t`).Scan(&got); err != nil || got != dsn {
				t.Errorf("%s: read back %q, %v", dsn, got, err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("independent", func(t *testing.T) {
		a, na := openDSN(t, ":memory:")
		b, nb := openDSN(t, ":memory:")
		if na == nb {
			t.Fatal("two opens of :memory: share a node")
		}
		mustExec(t, a, `CREATE TABLE only_a(x)`)
		mustExec(t, b, `CREATE TABLE only_b(x)`)
		for _, c := range []struct {
			db          *sql.DB
			has, hasNot string
		}{{a, "only_a", "only_b"}, {b, "only_b", "only_a"}} {
			var n int
			if err := c.db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = ?`, c.has).Scan(&n); err != nil || n != 1 {
				t.Errorf("%s: count %d, %v", c.has, n, err)
			}
			if err := c.db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = ?`, c.hasNot).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s seen by the other database: count %d, %v", c.hasNot, n, err)
			}
		}
	})

	t.Run("shared by connections", func(t *testing.T) {
		db, _ := openDSN(t, ":memory:")
		ctx := context.Background()
		c1, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		c2, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if _, err := c1.ExecContext(ctx, `CREATE TABLE t(x); INSERT INTO t VALUES (42)`); err != nil {
			t.Fatal(err)
		}
		var x int
		if err := c2.QueryRowContext(ctx, `SELECT x FROM t`).Scan(&x); err != nil || x != 42 {
			t.Fatalf("another connection read %d, %v", x, err)
		}
	})

	t.Run("transactions and extensions", func(t *testing.T) {
		db, n := openDSN(t, ":memory:")
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO t(v) VALUES ('rolled back')`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		tx, err = db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var count int
		if err := tx.QueryRow(`SELECT count(*) FROM t`).Scan(&count); err != nil || count != 0 {
			t.Fatalf("count in tx %d, %v", count, err)
		}
		if _, err := tx.Exec(`INSERT INTO t(v) VALUES ('kept'), ('kept too')`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&count); err != nil || count != 2 {
			t.Fatalf("count after commit %d, %v", count, err)
		}
		// Enough rows for a snapshot that copies a few pages, taken in
		// memory like everything else.
		mustExec(t, db, `INSERT INTO t(v) SELECT printf('%.500c', 'x') FROM generate_series(1, 200)`)
		if err := n.Snapshot(); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		mustExec(t, db, `INSERT INTO t(v) VALUES ('after the snapshot')`)
		if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&count); err != nil || count != 203 {
			t.Fatalf("count after snapshot %d, %v", count, err)
		}

		c := n.Cache("sessions")
		if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, ok := c.Get("k"); !ok || string(v) != "v" {
			t.Fatalf("cache get %q %v", v, ok)
		}
		lease, err := n.Lock(ctx, "job", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := lease.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		l, err := n.Listen(ctx, "ch")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := n.Notify(ctx, "ch", "hello"); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Next(ctx); err != nil || got.Payload != "hello" {
			t.Fatalf("notification %+v, %v", got, err)
		}
	})

	t.Run("listen refused", func(t *testing.T) {
		for _, dsn := range []string{":memory:?_listen=127.0.0.1:0", "file::memory:?_listen=127.0.0.1:0"} {
			_, err := hiqlite.ParseDSN(dsn)
			if err == nil || !strings.Contains(err.Error(), "_listen") || !strings.Contains(err.Error(), "in-memory") {
				t.Errorf("%s: error %v, want one naming _listen and the in-memory node", dsn, err)
			}
		}
	})

	if got := entries(t, wd); !slices.Equal(got, cwdBefore) {
		t.Errorf("the current directory changed: %v, was %v", got, cwdBefore)
	}
	if got := entries(t, tmp); len(got) > 0 {
		t.Errorf("files created in TMPDIR: %v", got)
	}
	// The subtests' cleanups closed every database.
	if !waitfor.Until(10*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }) {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after close, %d before:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
	}
}
