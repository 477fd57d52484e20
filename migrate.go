package hiqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// ErrMigrationChanged is matched with errors.Is when Migrate finds that a
// migration file it applied before has changed since.
var ErrMigrationChanged = errors.New("hiqlite: an applied migration has changed")

// migrationsSchema is the table where Migrate records what it applied. Its
// name starts with _hiqlite_ like the state machine's own tables, which
// tools such as the shell leave out of their listings.
const migrationsSchema = `CREATE TABLE IF NOT EXISTS _hiqlite_migrations(
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	checksum   TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// migrateKey marks the context of Migrate's statements: the only ones the
// driver lets write _hiqlite_migrations (replication.MigrationsTable).
type migrateKey struct{}

// forMigrate reports whether ctx is that of Migrate's statements.
func forMigrate(ctx context.Context) bool { return ctx.Value(migrateKey{}) != nil }

// migrateAttempts bounds how often Migrate takes the write slot again for
// one migration after SQLITE_BUSY: each attempt already waits up to _busy.
const migrateAttempts = 10

// migration is one NNN_name.sql file.
type migration struct {
	version  int64
	file     string // the file name, as recorded
	sql      string
	checksum string // SHA-256 of the file, hex
}

// Migrate applies the SQL migrations in the root directory of fsys that
// db has not applied yet, in the order of their versions, and records each
// in the table _hiqlite_migrations (version, name, checksum, applied_at).
//
// A migration is a file named NNN_name.sql: a positive decimal version,
// an underscore and a name, such as 001_init.sql or 20240102_users.sql.
// Files that do not end in .sql are ignored; a .sql file with another name,
// or two files with the same version, is an error naming them. A root with
// no .sql file at all is an error too, naming the directories it holds: an
// embed.FS keeps the directory of its go:embed pattern, so pass
// fs.Sub(migrations, "migrations") rather than the embed.FS itself. A file holds
// any number of statements but no transaction control (BEGIN, COMMIT,
// SAVEPOINT): each migration runs in a transaction of its own, together with
// the insert that records it, so it is applied entirely or not at all.
//
// Migrate is safe to call at every start of every node, at the same time: it
// takes the cluster's write slot (BEGIN IMMEDIATE) for each migration and
// reads the record again under it, so a migration another node has applied
// in the meantime is skipped, never applied twice. A writer that waits
// longer than _busy for the slot gets SQLITE_BUSY; Migrate then tries again,
// a bounded number of times. When everything is applied already (known
// from the local replica), Migrate writes nothing.
//
// With hiqlite, _hiqlite_migrations is out of reach of every other
// statement, like every _hiqlite* object: only Migrate's statements, and
// the migration files it runs, may write it.
//
// A migration recorded as applied whose file now has another SHA-256
// checksum is refused with an error that names the file and matches
// [ErrMigrationChanged]: change the schema with a new migration instead.
// Records of files that are no longer in fsys are left alone.
//
// db may be any SQLite database/sql handle (the plain ncruces driver, say);
// with hiqlite the migrations are replicated like every other write.
func Migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	applied, err := appliedMigrations(ctx, db)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if sum, ok := applied[m.version]; ok {
			if err := m.check(sum); err != nil {
				return err
			}
			continue
		}
		if err := m.applyRetrying(ctx, db); err != nil {
			return err
		}
	}
	return nil
}

// noMigrations is the error for a file system whose root holds no .sql
// file: most often an embed.FS passed without fs.Sub, whose root holds the
// directory named in the go:embed pattern.
func noMigrations(dirs, others []string) error {
	var saw string
	switch {
	case len(dirs) > 0:
		q := make([]string, len(dirs))
		for i, d := range dirs {
			q[i] = strconv.Quote(d)
		}
		saw = fmt.Sprintf("; its root holds the directories %s: for files embedded from a directory, pass fs.Sub(fsys, %s)", strings.Join(q, ", "), q[0])
	case len(others) > 0:
		saw = fmt.Sprintf("; its root holds only other files (%s)", strings.Join(others, ", "))
	default:
		saw = "; its root is empty"
	}
	return fmt.Errorf("hiqlite: migrations: no migration file (NNN_name.sql) in the root of the file system%s", saw)
}

// readMigrations lists the migrations of fsys's root in version order.
func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("hiqlite: migrations: %w", err)
	}
	var ms []migration
	var dirs, others []string // what was there instead, for the error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			dirs = append(dirs, name)
			continue
		}
		if path.Ext(name) != ".sql" {
			others = append(others, name)
			continue
		}
		version, ok := migrationVersion(name)
		if !ok {
			return nil, fmt.Errorf("hiqlite: migration file %q: the name must be NNN_name.sql, with a positive decimal version (001_init.sql)", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: migration %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		ms = append(ms, migration{version: version, file: name, sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	if len(ms) == 0 {
		return nil, noMigrations(dirs, others)
	}
	slices.SortFunc(ms, func(a, b migration) int {
		if a.version != b.version {
			return compareInt64(a.version, b.version)
		}
		return strings.Compare(a.file, b.file)
	})
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("hiqlite: migration files %s and %s have the same version %d", ms[i-1].file, ms[i].file, ms[i].version)
		}
	}
	return ms, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// migrationVersion parses the version of a file named NNN_name.sql.
func migrationVersion(file string) (int64, bool) {
	digits, rest, ok := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
	if !ok || digits == "" || rest == "" {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// appliedMigrations reads the recorded checksums by version from db's
// local replica: a hint that may lag behind the cluster, never ahead.
func appliedMigrations(ctx context.Context, db *sql.DB) (map[int64]string, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '_hiqlite_migrations'`).Scan(&n)
	if err != nil || n == 0 {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT version, checksum FROM _hiqlite_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int64]string{}
	for rows.Next() {
		var v int64
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, err
		}
		applied[v] = sum
	}
	return applied, rows.Err()
}

// check compares the checksum recorded for m with its file's.
func (m *migration) check(recorded string) error {
	if recorded == m.checksum {
		return nil
	}
	return fmt.Errorf("%w: %s was applied with SHA-256 %s but the file now has %s; restore the file and put the change in a new migration",
		ErrMigrationChanged, m.file, recorded, m.checksum)
}

// applyRetrying applies m, taking the write slot again after SQLITE_BUSY.
func (m *migration) applyRetrying(ctx context.Context, db *sql.DB) error {
	var err error
	for range migrateAttempts {
		if err = m.apply(ctx, db); !errors.Is(err, sqlite3.BUSY) {
			return err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

// apply applies m in one write transaction unless it is recorded already.
func (m *migration) apply(ctx context.Context, db *sql.DB) (err error) {
	ctx = context.WithValue(ctx, migrateKey{}, true)
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("hiqlite: migration %s: begin: %w", m.file, err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// database/sql does not know about this transaction: if it cannot
		// be rolled back, the connection must not go back to the pool.
		if _, rerr := c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); rerr != nil {
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()

	// Under the write slot the record is current: another node may have
	// applied m since the local replica was read.
	if _, err := c.ExecContext(ctx, migrationsSchema); err != nil {
		return fmt.Errorf("hiqlite: migration %s: %w", m.file, err)
	}
	var recorded string
	switch err := c.QueryRowContext(ctx, `SELECT checksum FROM _hiqlite_migrations WHERE version = ?`, m.version).Scan(&recorded); {
	case err == nil:
		return m.check(recorded)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("hiqlite: migration %s: %w", m.file, err)
	}

	if _, err := c.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("hiqlite: migration %s: %w", m.file, err)
	}
	if _, err := c.ExecContext(ctx,
		`INSERT INTO _hiqlite_migrations(version, name, checksum, applied_at) VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`,
		m.version, m.file, m.checksum); err != nil {
		return fmt.Errorf("hiqlite: migration %s: record: %w", m.file, err)
	}
	if _, err := c.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("hiqlite: migration %s: commit: %w", m.file, err)
	}
	committed = true
	return nil
}
