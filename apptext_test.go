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
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		db := openDir(t, ":memory:")
		var mode string
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		checkPragmaTexts(t, db, mode)
	})
	t.Run("follower", func(t *testing.T) {
		t.Parallel()
		c := clustertest.New(t, 3)
		fol := c.Members[c.Follower()].DB
		checkPragmaTexts(t, fol, "wal")
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
