package conformance

import (
	"context"
	"embed"
	"io/fs"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

//go:embed testdata/goose/*.sql
var gooseMigrations embed.FS

// TestGoose migrates up and down with github.com/pressly/goose/v3 on plain
// SQLite and on a follower of a three-node cluster.
func TestGoose(t *testing.T) {
	fsys, err := fs.Sub(gooseMigrations, "testdata/goose")
	if err != nil {
		t.Fatal(err)
	}
	for _, open := range []func(testing.TB) *env{
		openReference,
		func(t testing.TB) *env { return openCluster(t, 3, false) },
	} {
		e := open(t)
		t.Run(e.name, func(t *testing.T) {
			gooseScenario(t, e, fsys)
			e.sameTables(t)
		})
	}
}

func gooseScenario(t *testing.T, e *env, fsys fs.FS) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The one-line change: the *sql.DB is hiqlite's; the dialect stays
	// sqlite3.
	p, err := goose.NewProvider(goose.DialectSQLite3, e.db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	version := func() int64 {
		t.Helper()
		v, err := p.GetDBVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := e.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	results, err := p.Up(ctx)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if len(results) != 3 || version() != 3 {
		t.Fatalf("up applied %d migrations, version %d", len(results), version())
	}
	// The trigger from a StatementBegin/End block works.
	if n := count(`SELECT post_count FROM users WHERE email = 'ada@example.com'`); n != 2 {
		t.Errorf("post_count = %d, want 2", n)
	}
	if pending, err := p.HasPending(ctx); err != nil || pending {
		t.Errorf("pending after up: %v %v", pending, err)
	}
	// Up again does nothing.
	if results, err := p.Up(ctx); err != nil || len(results) != 0 {
		t.Errorf("second up: %d results, %v", len(results), err)
	}

	if _, err := p.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	if version() != 2 || count(`SELECT count(*) FROM users`) != 0 {
		t.Errorf("after down: version %d", version())
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	if version() != 0 || count(`SELECT count(*) FROM sqlite_schema WHERE name IN ('users', 'posts')`) != 0 {
		t.Errorf("after down to 0: version %d", version())
	}
	if _, err := p.UpTo(ctx, 2); err != nil {
		t.Fatalf("up to 2: %v", err)
	}
	if version() != 2 || count(`SELECT count(*) FROM sqlite_schema WHERE name IN ('users', 'posts', 'posts_count')`) != 3 {
		t.Errorf("after up to 2: version %d", version())
	}
	status, err := p.Status(ctx)
	if err != nil || len(status) != 3 || status[2].State != goose.StatePending {
		t.Errorf("status: %v %v", status, err)
	}

	// The package-level API that most applications call.
	goose.SetBaseFS(fsys)
	defer goose.SetBaseFS(nil)
	if err := goose.SetDialect("sqlite3"); err != nil {
		t.Fatal(err)
	}
	goose.SetLogger(goose.NopLogger())
	if err := goose.UpContext(ctx, e.db, "."); err != nil {
		t.Fatalf("goose.Up: %v", err)
	}
	if v, err := goose.GetDBVersionContext(ctx, e.db); err != nil || v != 3 {
		t.Errorf("goose.GetDBVersion: %d %v", v, err)
	}
}
