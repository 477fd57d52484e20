package hiqlite_test

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

func migrationFS(files ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i+1 < len(files); i += 2 {
		fsys[files[i]] = &fstest.MapFile{Data: []byte(files[i+1])}
	}
	return fsys
}

// appliedRows lists the file names recorded in _hiqlite_migrations, checking
// the other columns.
func appliedRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT version, name, checksum, applied_at FROM _hiqlite_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v int64
		var name, sum, at string
		if err := rows.Scan(&v, &name, &sum, &at); err != nil {
			t.Fatal(err)
		}
		if len(sum) != 64 {
			t.Errorf("%s: checksum %q is not a hex SHA-256", name, sum)
		}
		if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
			t.Errorf("%s: applied_at %q: %v", name, at, err)
		}
		got = append(got, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	ctx := context.Background()
	node, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	fsys := migrationFS(
		"001_init.sql", `CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
			INSERT INTO users(name) VALUES ('ada');`,
		"2_email.sql", `-- versions are numbers: 2 comes before 10
			ALTER TABLE users ADD COLUMN email TEXT;
			UPDATE users SET email = name || '@example.com';`,
		"10_index.sql", `CREATE UNIQUE INDEX users_email ON users(email);`,
		"README.md", "not a migration",
	)
	if err := hiqlite.Migrate(ctx, db, fsys); err != nil {
		t.Fatal(err)
	}
	if got, want := appliedRows(t, db), []string{"001_init.sql", "2_email.sql", "10_index.sql"}; !equal(got, want) {
		t.Errorf("applied %q, want %q", got, want)
	}
	var email string
	if err := db.QueryRow(`SELECT email FROM users`).Scan(&email); err != nil || email != "ada@example.com" {
		t.Errorf("email = %q, %v", email, err)
	}

	// Again: nothing to do, and nothing is written.
	before := node.AppliedIndex()
	if err := hiqlite.Migrate(ctx, db, fsys); err != nil {
		t.Fatal(err)
	}
	if after := node.AppliedIndex(); after != before {
		t.Errorf("a second Migrate wrote: applied index %d -> %d", before, after)
	}

	// A new file is applied alone.
	fsys["011_more.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO users(name, email) VALUES ('bob', 'bob@example.com')`)}
	if err := hiqlite.Migrate(ctx, db, fsys); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM users`); n != 2 {
		t.Errorf("%d users, want 2", n)
	}

	// An applied file that changed is refused, naming the file.
	fsys["2_email.sql"] = &fstest.MapFile{Data: []byte(`ALTER TABLE users ADD COLUMN email TEXT;`)}
	err = hiqlite.Migrate(ctx, db, fsys)
	if !errors.Is(err, hiqlite.ErrMigrationChanged) || !strings.Contains(err.Error(), "2_email.sql") {
		t.Errorf("changed file: %v", err)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func TestMigrateFailureIsAtomic(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	ctx := context.Background()
	fsys := migrationFS(
		"1_init.sql", `CREATE TABLE t(x INTEGER UNIQUE); INSERT INTO t VALUES (1);`,
		"2_broken.sql", `INSERT INTO t VALUES (2); INSERT INTO t VALUES (1);`,
		"3_never.sql", `INSERT INTO t VALUES (3);`,
	)
	err := hiqlite.Migrate(ctx, db, fsys)
	if !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) || !strings.Contains(err.Error(), "2_broken.sql") {
		t.Fatalf("broken migration: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM t`); n != 1 {
		t.Errorf("t has %d rows after the failed migration, want 1 (its first insert rolled back)", n)
	}
	if got, want := appliedRows(t, db), []string{"1_init.sql"}; !equal(got, want) {
		t.Errorf("applied %q, want %q", got, want)
	}
	// Fixed, it goes through, and the connection pool is still sound.
	fsys["2_broken.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO t VALUES (2);`)}
	if err := hiqlite.Migrate(ctx, db, fsys); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM t`); n != 3 {
		t.Errorf("t has %d rows, want 3", n)
	}
	mustExec(t, db, `INSERT INTO t VALUES (4)`)
}

func TestMigrateBadNames(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	for _, tc := range []struct {
		files []string
		want  []string // in the error
	}{
		{[]string{"init.sql", ""}, []string{"init.sql"}},
		{[]string{"001-init.sql", ""}, []string{"001-init.sql"}},
		{[]string{"0_zero.sql", ""}, []string{"0_zero.sql"}},
		{[]string{"1_.sql", ""}, []string{"1_.sql"}},
		{[]string{"v1_init.sql", ""}, []string{"v1_init.sql"}},
		{[]string{"99999999999999999999_big.sql", ""}, []string{"99999999999999999999_big.sql"}},
		{[]string{"1_a.sql", "", "001_b.sql", ""}, []string{"1_a.sql", "001_b.sql", "same version"}},
	} {
		fsys := migrationFS(tc.files...)
		err := hiqlite.Migrate(context.Background(), db, fsys)
		if err == nil {
			t.Errorf("%q: no error", tc.files)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not say %q", tc.files, err, w)
			}
		}
	}
	// Nothing was applied by any of them.
	if n := count(t, db, `SELECT count(*) FROM sqlite_schema WHERE name = '_hiqlite_migrations'`); n != 0 {
		t.Errorf("a refused set of files created the migrations table")
	}
}

// TestMigrateCluster runs Migrate on every node of a cluster at once: each
// migration is applied exactly once, and every node ends the same.
func TestMigrateCluster(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	fsys := migrationFS(
		// Neither is idempotent: a second application would fail or count twice.
		"001_init.sql", `CREATE TABLE runs(n INTEGER);`,
		"002_seed.sql", `INSERT INTO runs VALUES (1);`,
		"003_more.sql", `CREATE TABLE items(id INTEGER PRIMARY KEY, at DEFAULT CURRENT_TIMESTAMP); INSERT INTO runs VALUES (3);`,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make([]error, len(c.Members))
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Go(func() { errs[i] = hiqlite.Migrate(ctx, m.DB, fsys) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate on %s: %v", c.Members[i].ID, err)
		}
	}
	c.EnsureSame()
	for _, m := range c.Members {
		if n := count(t, m.DB, `SELECT sum(n) FROM runs`); n != 4 {
			t.Errorf("%s: sum(n) = %d, want 4 (each migration once)", m.ID, n)
		}
		if got, want := appliedRows(t, m.DB), []string{"001_init.sql", "002_seed.sql", "003_more.sql"}; !equal(got, want) {
			t.Errorf("%s: applied %q, want %q", m.ID, got, want)
		}
	}

	// A follower that sees a changed file refuses it.
	f := c.Members[c.Follower()]
	fsys["002_seed.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO runs VALUES (2);`)}
	if err := hiqlite.Migrate(ctx, f.DB, fsys); !errors.Is(err, hiqlite.ErrMigrationChanged) || !strings.Contains(err.Error(), "002_seed.sql") {
		t.Errorf("changed file on a follower: %v", err)
	}
}

//go:embed testdata/migrations/*.sql
var embeddedMigrations embed.FS

// TestMigrateNoFiles: a file system with no migration file in its root is
// an error that says what the root holds, the embed.FS passed without
// fs.Sub above all; with fs.Sub the same files apply.
func TestMigrateNoFiles(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fsys fs.FS
		want []string // in the error
	}{
		{"embed.FS without fs.Sub", embeddedMigrations, []string{"no migration file", `directories "testdata"`, `fs.Sub(fsys, "testdata")`}},
		{"a directory deeper", fstest.MapFS{"migrations/001_init.sql": {}, "sql/x": {}}, []string{`directories "migrations", "sql"`}},
		{"other files", migrationFS("README.md", "", "001_init.SQL", ""), []string{"only other files (001_init.SQL, README.md)"}},
		{"empty", fstest.MapFS{}, []string{"root is empty"}},
	} {
		err := hiqlite.Migrate(ctx, db, tc.fsys)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
	if n := count(t, db, `SELECT count(*) FROM sqlite_schema WHERE name = '_hiqlite_migrations'`); n != 0 {
		t.Errorf("a file system without migrations created the migrations table")
	}

	sub, err := fs.Sub(embeddedMigrations, "testdata/migrations")
	if err != nil {
		t.Fatal(err)
	}
	if err := hiqlite.Migrate(ctx, db, sub); err != nil {
		t.Fatal(err)
	}
	if got := appliedRows(t, db); !slices.Equal(got, []string{"001_init.sql", "002_done.sql"}) {
		t.Errorf("applied %q", got)
	}
	mustExec(t, db, `INSERT INTO todo(title, done) VALUES ('x', 1)`)
}
