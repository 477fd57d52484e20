package hiqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
)

// open opens a single node in a fresh directory and waits until it leads.
func open(t *testing.T, params ...string) (*sql.DB, string) {
	t.Helper()
	dir := t.TempDir()
	return openDir(t, dir, params...), dir
}

func openDir(t testing.TB, dir string, params ...string) *sql.DB {
	t.Helper()
	dsn := dir
	if len(params) > 0 {
		dsn += "?" + strings.Join(params, "&")
	}
	db, _ := openDSN(t, dsn)
	return db
}

// openDSN opens dsn, closes it when the test ends, and waits until its
// node is ready.
func openDSN(t testing.TB, dsn string) (*sql.DB, *hiqlite.Node) {
	t.Helper()
	db, err := sql.Open("hiqlite", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return db, n
}

func mustExec(t testing.TB, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) sql.Result {
	t.Helper()
	r, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("exec %q: %v", q, err)
	}
	return r
}

func count(t *testing.T, db interface {
	QueryRow(string, ...any) *sql.Row
}, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return n
}

func TestWriteResults(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, n INT)`)

	r := mustExec(t, db, `INSERT INTO t(name, n) VALUES ('a', 1), ('b', 2)`)
	if id, _ := r.LastInsertId(); id != 2 {
		t.Errorf("LastInsertId = %d, want 2", id)
	}
	if n, _ := r.RowsAffected(); n != 2 {
		t.Errorf("RowsAffected = %d, want 2", n)
	}
	r = mustExec(t, db, `UPDATE t SET n = n + 10`)
	if n, _ := r.RowsAffected(); n != 2 {
		t.Errorf("UPDATE RowsAffected = %d, want 2", n)
	}

	// RETURNING through QueryRow is a write.
	var id int64
	var name string
	if err := db.QueryRow(`INSERT INTO t(name, n) VALUES (?, ?) RETURNING id, name`, "c", 3).Scan(&id, &name); err != nil {
		t.Fatal(err)
	}
	if id != 3 || name != "c" {
		t.Errorf("RETURNING gave (%d, %q), want (3, c)", id, name)
	}
	// RETURNING of several rows.
	rows, err := db.Query(`UPDATE t SET n = n * 2 WHERE id <= 2 RETURNING id, n`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(id, "=", n))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if strings.Join(got, ",") != "1=22,2=24" {
		t.Errorf("UPDATE RETURNING rows = %v", got)
	}

	// Read your writes: the insert is visible on the local read path.
	if n := count(t, db, `SELECT count(*) FROM t`); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}

	// SQL errors stay *sqlite3.Error with extended codes.
	_, err = db.Exec(`INSERT INTO t(name) VALUES ('a')`)
	var serr *sqlite3.Error
	if !errors.As(err, &serr) || !errors.Is(err, sqlite3.CONSTRAINT) || !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("duplicate insert error = %#v, want *sqlite3.Error CONSTRAINT_UNIQUE", err)
	}
	_, err = db.Exec(`INSERT INTO nope VALUES (1)`)
	if !errors.Is(err, sqlite3.ERROR) || !strings.Contains(err.Error(), "no such table: nope") {
		t.Errorf("insert into missing table: %v", err)
	}
	_, err = db.Exec(`INSERTT INTO t VALUES (1)`)
	if !errors.Is(err, sqlite3.ERROR) || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestMultiStatementExec(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	// CREATE then INSERT into the new table: one write, in order.
	mustExec(t, db, `CREATE TABLE m(x); INSERT INTO m VALUES (1); INSERT INTO m VALUES (2);`)
	if n := count(t, db, `SELECT sum(x) FROM m`); n != 3 {
		t.Errorf("sum = %d, want 3", n)
	}
	// As in SQLite's autocommit mode, statements before a failing one stay.
	_, err := db.Exec(`INSERT INTO m VALUES (10); INSERT INTO nope VALUES (1); INSERT INTO m VALUES (100)`)
	if err == nil {
		t.Fatal("want an error for the missing table")
	}
	if n := count(t, db, `SELECT sum(x) FROM m`); n != 13 {
		t.Errorf("sum after partial failure = %d, want 13", n)
	}
	// Reads only: run locally.
	mustExec(t, db, `SELECT 1; SELECT 2`)
	// A transaction that the text leaves open is refused; one it commits
	// runs as one write (apptext_test.go).
	_, err = db.Exec(`BEGIN; INSERT INTO m VALUES (1000)`)
	if !errors.Is(err, hiqlite.ErrRefused) {
		t.Errorf("BEGIN without COMMIT in a multi-statement text: %v", err)
	}
	_, err = db.Query(`SELECT 1; SELECT 2`)
	if err == nil {
		t.Error("Query of two statements should fail")
	}
}

func TestParameters(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE p(a, b, c)`)
	cases := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO p VALUES (?, ?, ?)`, []any{1, 2, 3}},
		{`INSERT INTO p VALUES (?3, ?1, ?2)`, []any{2, 3, 1}},
		{`INSERT INTO p VALUES (:a, :b, :c)`, []any{sql.Named("a", 1), sql.Named("b", 2), sql.Named("c", 3)}},
		{`INSERT INTO p VALUES (@a, @b, @c)`, []any{sql.Named("c", 3), sql.Named("a", 1), sql.Named("b", 2)}},
		{`INSERT INTO p VALUES ($a, $b, $a + 2)`, []any{sql.Named("a", 1), sql.Named("b", 2)}},
	}
	for _, c := range cases {
		mustExec(t, db, c.q, c.args...)
		// The same statements as reads, with the same parameters.
		sel := strings.Replace(c.q, "INSERT INTO p VALUES", "SELECT count(*) FROM p WHERE (a, b, c) = ", 1)
		if n := count(t, db, sel, c.args...); n == 0 {
			t.Errorf("%s: the read found no row", sel)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM p WHERE a = 1 AND b = 2 AND c = 3`); n != int64(len(cases)) {
		t.Errorf("rows = %d, want %d", n, len(cases))
	}
	// Prepared statements, reused.
	st, err := db.Prepare(`INSERT INTO p VALUES (?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 5 {
		if _, err := st.Exec(i, i, i); err != nil {
			t.Fatal(err)
		}
	}
	q, err := db.Prepare(`SELECT count(*) FROM p WHERE a = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range 5 {
		var n int
		if err := q.QueryRow(i).Scan(&n); err != nil || n != 1+len(cases)*btoi(i == 1) {
			t.Errorf("prepared read a=%d: n=%d err=%v", i, n, err)
		}
	}
	// Too few arguments is an error from database/sql, before any work.
	if _, err := st.Exec(1); err == nil {
		t.Error("want an error for a missing argument")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type celsius float64

func (c celsius) Value() (driver.Value, error) { return float64(c) * 100, nil }

func TestTypes(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE v(i INTEGER, f REAL, b BOOLEAN, s TEXT, x BLOB, n, d DATE, dt DATETIME, ts TIMESTAMP, any_ ANY)`)
	when := time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.FixedZone("X", 3600))
	for _, via := range []string{"write", "tx"} {
		t.Run(via, func(t *testing.T) {
			mustExec(t, db, `DELETE FROM v`)
			ins := `INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
			args := []any{int64(-7), 2.5, true, "héllo ☃", []byte{0, 1, 2}, nil, when, when, when, celsius(1.5)}
			if via == "tx" {
				tx, err := db.Begin()
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, tx, ins, args...)
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			} else {
				mustExec(t, db, ins, args...)
			}
			var (
				i       int64
				f       float64
				b       bool
				s       string
				x       []byte
				n       any
				d, dt   time.Time
				ts      time.Time
				valuerd float64
			)
			if err := db.QueryRow(`SELECT * FROM v`).Scan(&i, &f, &b, &s, &x, &n, &d, &dt, &ts, &valuerd); err != nil {
				t.Fatal(err)
			}
			if i != -7 || f != 2.5 || !b || s != "héllo ☃" || !reflect.DeepEqual(x, []byte{0, 1, 2}) || n != nil || valuerd != 150 {
				t.Errorf("got %v %v %v %q %v %v %v", i, f, b, s, x, n, valuerd)
			}
			for _, got := range []time.Time{d, dt, ts} {
				if !got.Equal(when) {
					t.Errorf("time = %v, want %v", got, when)
				}
			}
			// How the values are stored: bool as 0/1, time as RFC 3339 text.
			var bt, dtt string
			if err := db.QueryRow(`SELECT typeof(b) || ':' || b, typeof(d) FROM v`).Scan(&bt, &dtt); err != nil {
				t.Fatal(err)
			}
			if bt != "integer:1" || dtt != "text" {
				t.Errorf("storage: %s, %s", bt, dtt)
			}
		})
	}
	// SQLite's own time formats decode into time.Time in DATETIME columns.
	mustExec(t, db, `DELETE FROM v`)
	mustExec(t, db, `INSERT INTO v(dt) VALUES ('2024-01-02 03:04:05')`)
	var dt time.Time
	if err := db.QueryRow(`SELECT dt FROM v`).Scan(&dt); err != nil {
		t.Fatal(err)
	}
	if !dt.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("dt = %v", dt)
	}
}

func TestColumnTypes(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE c(id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL, at DATETIME, ok BOOLEAN)`)
	mustExec(t, db, `INSERT INTO c VALUES (1, 'x', '2024-01-01T00:00:00Z', 1)`)
	for _, q := range []string{`SELECT id, name, at, ok FROM c`, `INSERT INTO c VALUES (2, 'y', '2024-01-01T00:00:00Z', 0) RETURNING id, name, at, ok`} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cts, err := rows.ColumnTypes()
		if err != nil {
			t.Fatal(err)
		}
		wantNames := []string{"INTEGER", "VARCHAR", "DATETIME", "BOOLEAN"}
		wantScan := []reflect.Type{reflect.TypeFor[int64](), reflect.TypeFor[any](), reflect.TypeFor[time.Time](), reflect.TypeFor[bool]()}
		for i, ct := range cts {
			if ct.DatabaseTypeName() != wantNames[i] {
				t.Errorf("%s: column %d type %q, want %q", q, i, ct.DatabaseTypeName(), wantNames[i])
			}
			if ct.ScanType() != wantScan[i] {
				t.Errorf("%s: column %d scan type %v, want %v", q, i, ct.ScanType(), wantScan[i])
			}
		}
		if strings.HasPrefix(q, "SELECT") {
			if nullable, ok := cts[1].Nullable(); !ok || nullable {
				t.Errorf("name NOT NULL: nullable=%v ok=%v", nullable, ok)
			}
			if nullable, ok := cts[2].Nullable(); !ok || !nullable {
				t.Errorf("at: nullable=%v ok=%v", nullable, ok)
			}
		}
		rows.Close()
	}
}

// TestColumnsAfterSchemaChange runs a statement prepared before its table
// changed: SQLite re-prepares it at its first step, and the rows must have
// the columns of the new table.
func TestColumnsAfterSchemaChange(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE t(a, b)`)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := conn.PrepareContext(ctx, `SELECT * FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mustExec(t, db, `DROP TABLE t; CREATE TABLE t(c TEXT, a INTEGER, b); INSERT INTO t VALUES ('x', 1, 2)`)
	rows, err := st.QueryContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var names, types []string
	for _, ct := range cts {
		names, types = append(names, ct.Name()), append(types, ct.DatabaseTypeName())
	}
	if !reflect.DeepEqual(names, []string{"c", "a", "b"}) || !reflect.DeepEqual(types, []string{"TEXT", "INTEGER", ""}) {
		t.Errorf("columns %v of types %v, want c a b of TEXT INTEGER and none", names, types)
	}
	var c string
	var a, b int
	if !rows.Next() {
		t.Fatalf("no row: %v", rows.Err())
	}
	if err := rows.Scan(&c, &a, &b); err != nil || c != "x" || a != 1 || b != 2 {
		t.Errorf("row %q %d %d, %v; want x 1 2", c, a, b, err)
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	for _, q := range []string{
		`ATTACH DATABASE 'x.db' AS x`,
		`PRAGMA journal_mode=DELETE`,
		`PRAGMA locking_mode=EXCLUSIVE`,
		`PRAGMA writable_schema=ON`,
		`PRAGMA query_only=ON`,
		`VACUUM INTO '/tmp/x.db'`,
		`CREATE TEMP TABLE tt(x)`,
		`SAVEPOINT a`,
	} {
		_, err := db.Exec(q)
		if !errors.Is(err, hiqlite.ErrRefused) {
			t.Errorf("%s: err = %v, want ErrRefused", q, err)
			continue
		}
		if !strings.Contains(err.Error(), strings.Fields(q)[0]) {
			t.Errorf("%s: the error %q does not name the statement", q, err)
		}
	}
	// Reading a refused pragma is fine.
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
}

func TestForeignKeysPerSession(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE parent(id INTEGER PRIMARY KEY); CREATE TABLE child(pid REFERENCES parent(id))`)
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Off by default, as in SQLite.
	if _, err := c.ExecContext(ctx, `INSERT INTO child VALUES (42)`); err != nil {
		t.Fatalf("foreign keys off: %v", err)
	}
	if _, err := c.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil {
		t.Fatal(err)
	}
	var on int
	if err := c.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on); err != nil || on != 1 {
		t.Errorf("PRAGMA foreign_keys = %d, %v", on, err)
	}
	_, err = c.ExecContext(ctx, `INSERT INTO child VALUES (43)`)
	if !errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY) {
		t.Errorf("foreign keys on: err = %v, want CONSTRAINT_FOREIGNKEY", err)
	}
}

// The savepoint the state machine wraps around each command cannot be
// named by user SQL: releasing or rolling it back from inside a command
// stopped the state machine on every node.
func TestReservedSavepointRefused(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE k(x)`)
	for _, q := range []string{
		`INSERT INTO k VALUES(1); RELEASE _hiqlite_cmd`,
		`INSERT INTO k VALUES(2); ROLLBACK TO _hiqlite_cmd`,
		`INSERT INTO k VALUES(3); SAVEPOINT _hiqlite_cmd`,
	} {
		if _, err := db.Exec(q); !errors.Is(err, hiqlite.ErrRefused) {
			t.Errorf("%s: err = %v, want ErrRefused", q, err)
		}
	}
	node, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Fault(); err != nil {
		t.Fatalf("the node stopped: %v", err)
	}
	mustExec(t, db, `INSERT INTO k VALUES(4)`)
	// As in SQLite, the statements of a text before the failing one stay.
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM k`).Scan(&n); err != nil || n != 4 {
		t.Errorf("rows = %d, %v; want 4", n, err)
	}
}

// _foreign_keys=true starts every connection with foreign keys on, as the
// ncruces driver does; a session can still turn them off.
func TestForeignKeysDSN(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "_foreign_keys=true")
	mustExec(t, db, `CREATE TABLE parent(id INTEGER PRIMARY KEY); CREATE TABLE child(pid REFERENCES parent(id))`)
	db.SetMaxOpenConns(4)
	for range 4 { // whichever pooled connection runs it
		_, err := db.Exec(`INSERT INTO child VALUES (42)`)
		if !errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY) {
			t.Fatalf("_foreign_keys=true: err = %v, want CONSTRAINT_FOREIGNKEY", err)
		}
	}
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var on int
	if err := c.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on); err != nil || on != 1 {
		t.Errorf("PRAGMA foreign_keys = %d, %v; want 1", on, err)
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO child VALUES (43)`); !errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY) {
		t.Errorf("in a transaction: err = %v, want CONSTRAINT_FOREIGNKEY", err)
	}
	tx.Rollback()
	if _, err := c.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO child VALUES (44)`); err != nil {
		t.Errorf("after PRAGMA foreign_keys = OFF: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openDir(t, dir)
	mustExec(t, db, `CREATE TABLE k(x)`)
	for i := range 50 {
		mustExec(t, db, `INSERT INTO k VALUES (?)`, i)
	}
	n1, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	id, applied := n1.ID(), n1.AppliedIndex()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDir(t, dir)
	if n := count(t, db, `SELECT count(*) FROM k`); n != 50 {
		t.Errorf("after reopen: %d rows, want 50", n)
	}
	n2, _ := hiqlite.NodeOf(context.Background(), db)
	if n2.ID() != id {
		t.Errorf("node id changed: %s -> %s", id, n2.ID())
	}
	if n2.AppliedIndex() < applied {
		t.Errorf("applied index went back: %d -> %d", applied, n2.AppliedIndex())
	}
	// Writes continue after the reopen, and nothing was applied twice.
	mustExec(t, db, `INSERT INTO k VALUES (50)`)
	if n := count(t, db, `SELECT count(*) FROM k`); n != 51 {
		t.Errorf("after reopen and insert: %d rows, want 51", n)
	}
}

func TestSnapshotAndReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openDir(t, dir)
	mustExec(t, db, `CREATE TABLE s(x)`)
	for i := range 20 {
		mustExec(t, db, `INSERT INTO s VALUES (?)`, i)
	}
	n, _ := hiqlite.NodeOf(context.Background(), db)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustExec(t, db, `INSERT INTO s VALUES (?)`, 100+i)
	}
	db.Close()
	// Lose the database: the node restores the snapshot and replays the
	// log after it.
	for _, f := range []string{"hiqlite.db", "hiqlite.db-wal", "hiqlite.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	db = openDir(t, dir)
	if got := count(t, db, `SELECT count(*) FROM s`); got != 25 {
		t.Errorf("after losing the database: %d rows, want 25", got)
	}
}

func TestSharedNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db1 := openDir(t, dir)
	db2 := openDir(t, dir, "_busy=1s")
	n1, _ := hiqlite.NodeOf(context.Background(), db1)
	n2, _ := hiqlite.NodeOf(context.Background(), db2)
	if n1 != n2 {
		t.Fatal("two *sql.DB on one DATA_DIR must share one node")
	}
	mustExec(t, db1, `CREATE TABLE sh(x)`)
	mustExec(t, db2, `INSERT INTO sh VALUES (1)`)
	db1.Close()
	// The node lives on while db2 is open.
	if n := count(t, db2, `SELECT count(*) FROM sh`); n != 1 {
		t.Errorf("count = %d", n)
	}
	mustExec(t, db2, `INSERT INTO sh VALUES (2)`)
}

// TestSecondProcess runs this test binary again as a child that opens the
// same DATA_DIR: it must fail with a clear error, and the parent's data stay
// intact.
func TestSecondProcess(t *testing.T) {
	if dir := os.Getenv("HIQLITE_TEST_CHILD_DIR"); dir != "" {
		db, err := sql.Open("hiqlite", dir)
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		fmt.Printf("child: %v\n", err)
		if errors.Is(err, hiqlite.ErrLocked) {
			os.Exit(3)
		}
		os.Exit(4)
	}
	t.Parallel()
	db, dir := open(t)
	mustExec(t, db, `CREATE TABLE sp(x); INSERT INTO sp VALUES (1)`)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondProcess$")
	cmd.Env = append(os.Environ(), "HIQLITE_TEST_CHILD_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: err=%v output=%s", err, out)
	}
	if !strings.Contains(string(out), "in use by another process") {
		t.Errorf("child error is not clear: %s", out)
	}
	if n := count(t, db, `SELECT count(*) FROM sp`); n != 1 {
		t.Errorf("count = %d", n)
	}
	mustExec(t, db, `INSERT INTO sp VALUES (2)`)
}

func TestCancelLongRead(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	rows, err := db.QueryContext(ctx, `WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT sum(i) FROM r`)
	if err == nil {
		// The work happens in Next: cancel from another goroutine once it runs.
		done := make(chan struct{})
		go func() {
			defer close(done)
			cancel()
		}()
		for rows.Next() {
		}
		<-done
		err = rows.Err()
		rows.Close()
	}
	cancel()
	if !errors.Is(err, context.Canceled) && !errors.Is(err, sqlite3.INTERRUPT) {
		t.Fatalf("err = %v, want an interrupt", err)
	}
	// The connection still works.
	if n := count(t, db, `SELECT 1`); n != 1 {
		t.Error("connection unusable after interrupt")
	}
}

func TestStatusSQL(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "_node=alpha")
	mustExec(t, db, `CREATE TABLE st(x); INSERT INTO st VALUES (1)`)
	var id, leader string
	var isLeader int
	var applied int64
	err := db.QueryRow(`SELECT hiqlite_node_id(), hiqlite_leader_id(), hiqlite_is_leader(), hiqlite_applied_index()`).Scan(&id, &leader, &isLeader, &applied)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := hiqlite.NodeOf(context.Background(), db)
	if id != "alpha" || leader != "alpha" || isLeader != 1 || applied == 0 || uint64(applied) != n.AppliedIndex() {
		t.Errorf("status: id=%s leader=%s isLeader=%d applied=%d (node %d)", id, leader, isLeader, applied, n.AppliedIndex())
	}
	var nodeID, state string
	var voter, lead int
	if err := db.QueryRow(`SELECT node_id, voter, state, is_leader FROM hiqlite_nodes`).Scan(&nodeID, &voter, &state, &lead); err != nil {
		t.Fatal(err)
	}
	if nodeID != "alpha" || voter != 1 || state != "leader" || lead != 1 {
		t.Errorf("hiqlite_nodes: %s %d %s %d", nodeID, voter, state, lead)
	}
	if id, l := n.Leader(); id != "alpha" || l == "" || !n.IsLeader() {
		t.Errorf("Leader() = %q %q", id, l)
	}
	// Status functions are per node, so they are not allowed in writes.
	if _, err := db.Exec(`INSERT INTO st VALUES (hiqlite_node_id())`); err == nil {
		t.Error("a write using hiqlite_node_id() must fail")
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE cw(id INTEGER PRIMARY KEY AUTOINCREMENT, w INT, i INT)`)
	const writers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := db.Exec(`INSERT INTO cw(w, i) VALUES (?, ?)`, w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := count(t, db, `SELECT count(DISTINCT w * 1000 + i) FROM cw`); n != writers*each {
		t.Errorf("distinct rows = %d, want %d", n, writers*each)
	}
}

// TestLostRaftLog: a single node whose raft directory was deleted keeps its
// database, and new writes apply over it (none is skipped as "already
// applied" by the index of the lost log).
func TestLostRaftLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openDir(t, dir)
	mustExec(t, db, `CREATE TABLE ll(x)`)
	for i := range 10 {
		mustExec(t, db, `INSERT INTO ll VALUES (?)`, i)
	}
	db.Close()
	if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
		t.Fatal(err)
	}
	db = openDir(t, dir)
	mustExec(t, db, `INSERT INTO ll VALUES (10)`)
	if n := count(t, db, `SELECT count(*) FROM ll`); n != 11 {
		t.Errorf("rows = %d, want 11", n)
	}
	db.Close()
	db = openDir(t, dir)
	if n := count(t, db, `SELECT count(*) FROM ll`); n != 11 {
		t.Errorf("after another reopen: rows = %d, want 11", n)
	}
}
