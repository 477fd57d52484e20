package replication_test

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// testInit registers a case-insensitive collation, a deterministic
// function and one that is not.
func testInit(c *sqlite3.Conn) error {
	return errors.Join(
		c.CreateCollation("ci", func(a, b []byte) int {
			return strings.Compare(strings.ToLower(string(a)), strings.ToLower(string(b)))
		}),
		c.CreateFunction("twice", 1, sqlite3.DETERMINISTIC|sqlite3.INNOCUOUS, func(ctx sqlite3.Context, a ...sqlite3.Value) {
			ctx.ResultInt64(2 * a[0].Int64())
		}),
		c.CreateFunction("clock", 0, 0, func(ctx sqlite3.Context, _ ...sqlite3.Value) { ctx.ResultInt64(42) }),
	)
}

// The hook's functions and collations are on every connection the state
// machine opens on the file: a schema that uses them survives a reopen
// (quick_check) and a snapshot and its install (the copy's check).
func TestConnInitSchemaSurvivesReopenAndSnapshot(t *testing.T) {
	opts := replication.Options{ConnInit: testInit}
	a := newApplierWith(t, opts)
	a.must(a.exec(replication.Origin{}, `CREATE TABLE c(v TEXT COLLATE ci, w AS (twice(length(v))))`))
	a.must(a.exec(replication.Origin{}, `CREATE UNIQUE INDEX c_v ON c(v); CREATE INDEX c_w ON c(twice(w))`))
	a.must(a.exec(replication.Origin{}, `INSERT INTO c(v) VALUES ('abc')`))
	if r := a.must(a.exec(replication.Origin{}, `INSERT INTO c(v) VALUES ('ABC')`)); !errors.Is(r.Results[0].Err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("duplicate under the collation: %v, want a UNIQUE constraint error", r.Results[0].Err)
	}
	r := a.must(a.exec(replication.Origin{}, `INSERT INTO c(v) VALUES (clock())`))
	if err := r.Results[0].Err; err == nil || !strings.Contains(err.Error(), `function "clock" is not deterministic`) {
		t.Errorf("clock() in a write: %v", err)
	}

	snap, err := a.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	path := filepath.Join(t.TempDir(), "fresh.db")
	fresh, err := replication.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatalf("restore of a schema that needs the hook: %v", err)
	}
	if err := fresh.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := replication.Open(path, opts)
	if err != nil {
		t.Fatalf("reopen of a schema that needs the hook: %v", err)
	}
	defer again.Close()
	b := &smApplier{t: t, sm: again, index: again.AppliedIndex()}
	if r := b.must(b.exec(replication.Origin{}, `SELECT w FROM c WHERE v = 'ABC'`)); len(r.Results[0].Rows) != 1 || r.Results[0].Rows[0][0] != int64(6) {
		t.Errorf("after snapshot and reopen: %+v", r.Results[0])
	}
}
