package hiqlite_test

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestStatementOutOfMemory: a statement that needs more memory than
// SQLite's connection has (256 MiB) fails with an error matching
// sqlite3.NOMEM, for writes (which the log replays on every node) and
// reads alike, in SQL functions written in Go (randomblob) and in SQLite's
// own (a concatenation). It used to panic and kill the process, and a
// write killed every node of the cluster again at each start.
func TestStatementOutOfMemory(t *testing.T) {
	db, err := sql.Open("hiqlite", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `CREATE TABLE big(b)`)
	const mib = 1024 * 1024
	for _, q := range []string{
		`INSERT INTO big VALUES (randomblob(300 * 1048576))`,
		`INSERT INTO big VALUES (zeroblob(200 * 1048576) || zeroblob(100 * 1048576))`,
	} {
		if _, err := db.Exec(q); !errors.Is(err, sqlite3.NOMEM) {
			t.Errorf("%s: %v, want an error matching sqlite3.NOMEM", q, err)
		}
	}
	for _, q := range []string{
		`SELECT length(randomblob(300 * 1048576))`,
		`SELECT length(zeroblob(200 * 1048576) || zeroblob(100 * 1048576))`,
	} {
		var n int64
		if err := db.QueryRow(q).Scan(&n); !errors.Is(err, sqlite3.NOMEM) {
			t.Errorf("%s: %d, %v, want an error matching sqlite3.NOMEM", q, n, err)
		}
	}
	// The node goes on: no fault, writes and reads work, and a large value
	// that fits is written.
	node, err := hiqlite.NodeOf(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Fault(); err != nil {
		t.Fatalf("fault after statements that ran out of memory: %v", err)
	}
	mustExec(t, db, `INSERT INTO big VALUES (randomblob(?))`, 8*mib)
	var n, total int64
	if err := db.QueryRow(`SELECT count(*), sum(length(b)) FROM big`).Scan(&n, &total); err != nil || n != 1 || total != 8*mib {
		t.Fatalf("rows after: %d rows of %d bytes, %v; want 1 of %d", n, total, err, 8*mib)
	}
}

// TestStatementOutOfMemoryCluster: the write that asks for too much memory
// goes through the log to every node, fails alike on each as the
// statement's error, and stops none of them, also when the log is replayed
// at a restart. It used to kill every node, and again at every start.
func TestStatementOutOfMemoryCluster(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow tier: grows three writers to SQLite's 256 MiB cap; not under -race or -short")
	}
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE big(b)`)
	f := c.Follower()
	if _, err := c.Members[f].DB.Exec(`INSERT INTO big VALUES (randomblob(300 * 1048576))`); !errors.Is(err, sqlite3.NOMEM) {
		t.Fatalf("a write of 300 MiB through a follower: %v, want an error matching sqlite3.NOMEM", err)
	}
	mustExec(t, c.Members[f].DB, `INSERT INTO big VALUES (1)`)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()
	for _, m := range c.Members {
		if err := m.Node.Fault(); err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
	}
	c.Restart(l) // replays its log, the failed write included
	c.WaitReady(30 * time.Second)
	c.EnsureSame()
}
