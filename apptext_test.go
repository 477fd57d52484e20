package hiqlite_test

import (
	"database/sql"
	"errors"
	"testing"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// The startup pragmas and the schema texts real apps send (ntfy's, for one), on a
// single node, an in-memory node and a follower of a three-node cluster.
func TestAppTexts(t *testing.T) {
	t.Parallel()
	t.Run("node", func(t *testing.T) {
		t.Parallel()
		db, _ := open(t)
		checkPragmaTexts(t, db, "wal")
		checkTxTexts(t, db)
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		db := openDir(t, ":memory:")
		var mode string
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		checkPragmaTexts(t, db, mode)
		checkTxTexts(t, db)
	})
	t.Run("follower", func(t *testing.T) {
		t.Parallel()
		c := clustertest.New(t, 3)
		fol := c.Members[c.Follower()].DB
		checkPragmaTexts(t, fol, "wal")
		checkTxTexts(t, fol)
		countEverywhere(t, c, 1, `SELECT count(*) FROM t`)
		c.EnsureSame()
	})
}

func checkPragmaTexts(t *testing.T, db *sql.DB, wantMode string) {
	t.Helper()
	mustExec(t, db, `PRAGMA journal_mode=WAL; PRAGMA synchronous=normal; PRAGMA temp_store=memory;`)
	mustExec(t, db, `PRAGMA cache_size=-2000; PRAGMA mmap_size=0; PRAGMA busy_timeout=5000`)
	for _, q := range []string{`PRAGMA journal_mode=WAL`, `PRAGMA journal_mode(wal)`, `PRAGMA journal_mode`} {
		var mode string
		if err := db.QueryRow(q).Scan(&mode); err != nil || mode != wantMode {
			t.Errorf("%s answers %q, %v; want %q", q, mode, err, wantMode)
		}
	}
	mustExec(t, db, `PRAGMA synchronous=FULL`)
	for _, q := range []string{
		`PRAGMA journal_mode=DELETE`,
		`PRAGMA journal_mode=OFF`,
		`PRAGMA journal_mode=MEMORY`,
		`PRAGMA locking_mode=EXCLUSIVE`,
		`PRAGMA writable_schema=ON`,
		`PRAGMA query_only=ON`,
		`PRAGMA journal_mode=WAL; PRAGMA journal_mode=DELETE`,
		`PRAGMA temp_store=memory; CREATE TABLE nope(x)`,
	} {
		if _, err := db.Exec(q); !errors.Is(err, hiqlite.ErrRefused) {
			t.Errorf("%s: err = %v, want ErrRefused", q, err)
		}
	}
}

func checkTxTexts(t *testing.T, db *sql.DB) {
	t.Helper()
	mustExec(t, db, `BEGIN; CREATE TABLE t(x); INSERT INTO t VALUES(1); COMMIT;`)
	mustExec(t, db, `BEGIN IMMEDIATE; CREATE TABLE u(x); COMMIT`)
	mustExec(t, db, `BEGIN TRANSACTION; CREATE TABLE v(x, y TEXT DEFAULT 'a;b'); -- COMMIT;
		CREATE TRIGGER vt AFTER INSERT ON v BEGIN UPDATE v SET y = 'c;d'; END; END TRANSACTION;`)
	mustExec(t, db, `BEGIN; COMMIT;`)
	if _, err := db.Exec(`BEGIN; INSERT INTO t VALUES(2); INSERT INTO missing VALUES(1); COMMIT;`); err == nil {
		t.Error("a transaction text whose last statement fails succeeded")
	}
	for _, q := range []string{
		`BEGIN; INSERT INTO t VALUES(3);`,
		`BEGIN; INSERT INTO t VALUES(3); ROLLBACK;`,
		`BEGIN; INSERT INTO t VALUES(3); COMMIT; BEGIN; INSERT INTO t VALUES(4); COMMIT;`,
	} {
		if _, err := db.Exec(q); !errors.Is(err, hiqlite.ErrRefused) {
			t.Errorf("%s: err = %v, want ErrRefused", q, err)
		}
	}
	// Inside a transaction it fails as a nested BEGIN does, cached or not.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := tx.Exec(`BEGIN; CREATE TABLE t(x); INSERT INTO t VALUES(1); COMMIT;`); err == nil {
			t.Error("a transaction text inside a transaction succeeded")
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Error(err)
	}
	if n := count(t, db, `SELECT count(*) FROM t`); n != 1 {
		t.Errorf("t holds %d rows, want 1", n)
	}
}
