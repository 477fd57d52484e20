package hiqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// pinned returns one connection of db, closed with the test.
func pinned(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// cacheStats returns hiqlite.StmtCacheStats of conn.
func cacheStats(t *testing.T, conn *sql.Conn) (reads, writes, open int) {
	t.Helper()
	if err := conn.Raw(func(dc any) error {
		reads, writes, open = hiqlite.StmtCacheStats(dc)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return reads, writes, open
}

// countOn runs a query for one integer on conn.
func countOn(t *testing.T, conn *sql.Conn, q string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return n
}

// queryAll runs q on conn and returns its column names and rows, each row
// formatted with %v.
func queryAll(ctx context.Context, conn *sql.Conn, q string, args ...any) ([]string, []string, error) {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			s[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(s, " "))
	}
	return cols, out, rows.Err()
}

func TestStmtCacheReuse(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	conn := pinned(t, db)
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := conn.ExecContext(ctx, `INSERT INTO k(v) VALUES (?)`, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := conn.QueryRowContext(ctx, `SELECT v FROM k WHERE id = ?`, i+1).Scan(&v); err != nil || v != fmt.Sprint("v", i) {
			t.Fatalf("select %d: %q, %v", i+1, v, err)
		}
	}
	// One idle read, two classified writes (CREATE TABLE and INSERT), and
	// the read the only statement open on the read connection.
	if reads, writes, open := cacheStats(t, conn); reads != 1 || writes != 2 || open != 1 {
		t.Errorf("after 20 inserts and selects: %d cached reads, %d cached writes, %d open statements; want 1, 2, 1", reads, writes, open)
	}
	// The cached texts still count their arguments.
	if _, err := conn.ExecContext(ctx, `INSERT INTO k(v) VALUES (?)`); err == nil {
		t.Error("cached INSERT ran without its argument")
	}
	if err := conn.QueryRowContext(ctx, `SELECT v FROM k WHERE id = ?`).Scan(new(string)); err == nil {
		t.Error("cached SELECT ran without its argument")
	}
	if n := countOn(t, conn, `SELECT count(*) FROM k`); n != 20 {
		t.Errorf("%d rows, want 20", n)
	}
}

func TestStmtCacheBounded(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`)
	conn := pinned(t, db)
	ctx := context.Background()
	for i := range hiqlite.ReadCacheSize + 10 {
		var n int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d`, i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d: %d, %v", i, n, err)
		}
	}
	for i := range hiqlite.WriteCacheSize + 10 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`INSERT INTO k(v) VALUES ('%d')`, i)); err != nil {
			t.Fatal(err)
		}
	}
	reads, writes, open := cacheStats(t, conn)
	if reads != hiqlite.ReadCacheSize || writes != hiqlite.WriteCacheSize || open != reads {
		t.Errorf("%d cached reads, %d cached writes, %d open statements; want %d, %d, %[4]d",
			reads, writes, open, hiqlite.ReadCacheSize, hiqlite.WriteCacheSize)
	}
	// The most recent reads are the ones kept, and still right.
	var n int
	if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d`, hiqlite.ReadCacheSize+9)).Scan(&n); err != nil || n != hiqlite.ReadCacheSize+9 {
		t.Errorf("recent cached read: %d, %v", n, err)
	}
	if r, _, open := cacheStats(t, conn); r != reads || open != reads {
		t.Errorf("a cached read prepared again: %d cached, %d open", r, open)
	}
}

// TestStmtCacheOpenRows runs a query while rows of the same text are open
// on the same connection: each must get a statement of its own.
func TestStmtCacheOpenRows(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE k(id INTEGER PRIMARY KEY)`)
	mustExec(t, db, `INSERT INTO k SELECT value FROM generate_series(1, 5)`)
	conn := pinned(t, db)
	ctx := context.Background()
	const q = `SELECT id FROM k WHERE id >= ? ORDER BY id`
	if _, _, err := queryAll(ctx, conn, q, 1); err != nil { // cache it
		t.Fatal(err)
	}
	outer, err := conn.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	var got []int
	for outer.Next() {
		var id int
		if err := outer.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
		// The same text with other arguments, while outer is open.
		_, inner, err := queryAll(ctx, conn, q, 4)
		if err != nil || !reflect.DeepEqual(inner, []string{"4", "5"}) {
			t.Fatalf("inner query: %v, %v", inner, err)
		}
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("outer rows %v, want 1 to 5", got)
	}
	outer.Close()
	if reads, _, open := cacheStats(t, conn); reads != 1 || open != 1 {
		t.Errorf("%d cached reads, %d open statements; want 1, 1", reads, open)
	}
}

// TestStmtCacheStmtClosedWithOpenRows closes a prepared statement of a
// Conn while its rows are open (database/sql closes a Conn's or Tx's
// statement in the driver at once): the statement must not go back to the
// cache under the rows, where the next query of its text would take it.
func TestStmtCacheStmtClosedWithOpenRows(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE k(id INTEGER PRIMARY KEY)`)
	mustExec(t, db, `INSERT INTO k SELECT value FROM generate_series(1, 5)`)
	conn := pinned(t, db)
	ctx := context.Background()
	const q = `SELECT id FROM k WHERE id >= ? ORDER BY id`
	for _, inTx := range []bool{false, true} {
		var st *sql.Stmt
		var tx *sql.Tx
		var err error
		if inTx {
			if tx, err = conn.BeginTx(ctx, nil); err != nil {
				t.Fatal(err)
			}
			st, err = tx.PrepareContext(ctx, q)
		} else {
			st, err = conn.PrepareContext(ctx, q)
		}
		if err != nil {
			t.Fatal(err)
		}
		outer, err := st.QueryContext(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !outer.Next() {
			t.Fatalf("no first row: %v", outer.Err())
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		var inner *sql.Rows
		if inTx {
			inner, err = tx.QueryContext(ctx, q, 3)
		} else {
			inner, err = conn.QueryContext(ctx, q, 3)
		}
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for inner.Next() {
			n++
		}
		if err := inner.Close(); err != nil || n != 3 {
			t.Errorf("tx=%v: inner query gave %d rows, %v; want 3", inTx, n, err)
		}
		got := 1
		for outer.Next() {
			got++
		}
		if err := outer.Err(); err != nil || got != 5 {
			t.Errorf("tx=%v: outer rows gave %d rows, %v; want 5", inTx, got, err)
		}
		if err := outer.Close(); err != nil {
			t.Errorf("tx=%v: closing the outer rows: %v", inTx, err)
		}
		if tx != nil {
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, open := cacheStats(t, conn); open > 2 {
		t.Errorf("%d statements open on the connection, want at most 2", open)
	}
}

// TestStmtCacheBindings checks that a cached statement keeps no argument of
// its previous execution: with named parameters, database/sql cannot count
// them, and a missing one is NULL.
func TestStmtCacheBindings(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	conn := pinned(t, db)
	ctx := context.Background()
	const q = `SELECT :a, :b IS NULL`
	for i, tc := range []struct {
		args  []any
		a     string
		bNull bool
	}{
		{[]any{sql.Named("a", "x"), sql.Named("b", "y")}, "x", false},
		{[]any{sql.Named("a", "z")}, "z", true},
		{[]any{sql.Named("b", "y")}, "", false},
	} {
		var a sql.NullString
		var bNull bool
		if err := conn.QueryRowContext(ctx, q, tc.args...).Scan(&a, &bNull); err != nil {
			t.Fatal(err)
		}
		if a.String != tc.a || a.Valid != (tc.a != "") || bNull != tc.bNull {
			t.Errorf("run %d: a = %v, b IS NULL = %v; want %q, %v", i, a, bNull, tc.a, tc.bNull)
		}
	}
	// Exec of a read takes the same cache.
	if _, err := conn.ExecContext(ctx, q, sql.Named("a", "x"), sql.Named("b", "y")); err != nil {
		t.Fatal(err)
	}
	var bNull bool
	if err := conn.QueryRowContext(ctx, q).Scan(new(sql.NullString), &bNull); err != nil || !bNull {
		t.Errorf("after Exec: b IS NULL = %v, %v; want true", bNull, err)
	}
}

// TestStmtCacheSchemaChange changes the table a cached statement reads.
func TestStmtCacheSchemaChange(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	mustExec(t, db, `INSERT INTO t VALUES (1, 'a')`)
	conn := pinned(t, db)
	ctx := context.Background()
	const q = `SELECT * FROM t WHERE id = ?`
	for _, step := range []struct {
		ddl  string
		cols []string
		row  []string
		err  string
	}{
		{"", []string{"id", "v"}, []string{"1 a"}, ""},
		{`ALTER TABLE t ADD COLUMN w DEFAULT 'w'`, []string{"id", "v", "w"}, []string{"1 a w"}, ""},
		{`DROP TABLE t; CREATE TABLE t(v TEXT, id INTEGER PRIMARY KEY); INSERT INTO t VALUES ('b', 1)`, []string{"v", "id"}, []string{"b 1"}, ""},
		{`DROP TABLE t`, nil, nil, "no such table"},
		{`CREATE TABLE t(id INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (1, 2)`, []string{"id", "x"}, []string{"1 2"}, ""},
		{`DROP TABLE t; CREATE VIEW t AS SELECT 1 AS id, 'view' AS v`, []string{"id", "v"}, []string{"1 view"}, ""},
	} {
		if step.ddl != "" {
			// On another connection: this one's statement stays cached.
			mustExec(t, db, step.ddl)
		}
		for range 2 { // once after the change, once more from the cache
			cols, rows, err := queryAll(ctx, conn, q, 1)
			if step.err != "" {
				if err == nil || !strings.Contains(err.Error(), step.err) {
					t.Errorf("after %q: %v %v, %v; want error %q", step.ddl, cols, rows, err, step.err)
				}
				continue
			}
			if err != nil || !reflect.DeepEqual(cols, step.cols) || !reflect.DeepEqual(rows, step.row) {
				t.Errorf("after %q: %v %v, %v; want %v %v", step.ddl, cols, rows, err, step.cols, step.row)
			}
		}
	}
}

// TestStmtCacheSchemaChangeFromLeader changes, on the leader, the schema of
// a table that a follower's connection has a cached statement for: the
// follower's state machine applies it under the cached statement.
func TestStmtCacheSchemaChangeFromLeader(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	lead, fol := c.Members[c.Leader()].DB, c.Members[c.Follower()].DB
	mustExec(t, lead, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	mustExec(t, lead, `INSERT INTO t VALUES (1, 'a')`)
	conn := pinned(t, fol)
	lin := hiqlite.WithConsistency(context.Background(), hiqlite.Linearizable)
	const q = `SELECT * FROM t WHERE id = ?`
	if cols, rows, err := queryAll(lin, conn, q, 1); err != nil || len(cols) != 2 || len(rows) != 1 {
		t.Fatalf("before: %v %v, %v", cols, rows, err)
	}
	mustExec(t, lead, `ALTER TABLE t ADD COLUMN w DEFAULT 'w'`)
	// A linearizable read waits for the follower to apply the change.
	if cols, rows, err := queryAll(lin, conn, q, 1); err != nil || !reflect.DeepEqual(cols, []string{"id", "v", "w"}) || !reflect.DeepEqual(rows, []string{"1 a w"}) {
		t.Errorf("after ADD COLUMN: %v %v, %v", cols, rows, err)
	}
	mustExec(t, lead, `DROP TABLE t`)
	mustExec(t, lead, `CREATE TABLE t(w, id INTEGER PRIMARY KEY)`)
	mustExec(t, lead, `INSERT INTO t VALUES ('x', 1)`)
	// At local consistency, once the follower has it.
	c.WaitFor("the follower to apply the new table", 10*time.Second, func() bool {
		var n int
		return fol.QueryRow(`SELECT count(*) FROM t WHERE w = 'x'`).Scan(&n) == nil && n == 1
	})
	if cols, rows, err := queryAll(context.Background(), conn, q, 1); err != nil || !reflect.DeepEqual(cols, []string{"w", "id"}) || !reflect.DeepEqual(rows, []string{"x 1"}) {
		t.Errorf("after the table was made again: %v %v, %v", cols, rows, err)
	}
	if reads, _, _ := cacheStats(t, conn); reads != 1 {
		t.Errorf("%d cached reads, want 1", reads)
	}
}

// TestStmtCacheWriteClass runs cached write texts after schema changes: the
// cached classification must send them where a fresh one would.
func TestStmtCacheWriteClass(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	conn := pinned(t, db)
	ctx := context.Background()
	const ins = `INSERT INTO t(v) VALUES (?)`
	const cte = `WITH x(v) AS (VALUES (?)) INSERT INTO t(v) SELECT v FROM x`
	exec := func(q string, args ...any) error {
		_, err := conn.ExecContext(ctx, q, args...)
		return err
	}
	for _, q := range []string{ins, cte} {
		if err := exec(q, "a"); err != nil {
			t.Fatal(err)
		}
	}
	// The table goes: the writer reports it, as the read connection would.
	mustExec(t, db, `DROP TABLE t`)
	for _, q := range []string{ins, cte} {
		if err := exec(q, "b"); err == nil || !errors.Is(err, sqlite3.ERROR) || !strings.Contains(err.Error(), "no such table") {
			t.Errorf("%s into a dropped table: %v", q, err)
		}
	}
	// It comes back as a view that takes inserts through a trigger.
	mustExec(t, db, `CREATE TABLE log(v TEXT)`)
	mustExec(t, db, `CREATE VIEW t(v) AS SELECT v FROM log`)
	mustExec(t, db, `CREATE TRIGGER ti INSTEAD OF INSERT ON t BEGIN INSERT INTO log VALUES (NEW.v); END`)
	for _, q := range []string{ins, cte} {
		if err := exec(q, "c"); err != nil {
			t.Errorf("%s into the view: %v", q, err)
		}
	}
	if n := countOn(t, conn, `SELECT count(*) FROM log WHERE v = 'c'`); n != 2 {
		t.Errorf("%d rows through the view, want 2", n)
	}
	// A write in a read-only transaction is refused each time, cached or not.
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for range 2 {
		if _, err := tx.Exec(ins, "d"); !errors.Is(err, sqlite3.READONLY) {
			t.Errorf("INSERT in a read-only transaction: %v", err)
		}
	}
	tx.Rollback()
	// A text of several statements stays one: no arguments, no rows.
	const two = `INSERT INTO log VALUES ('e'); INSERT INTO log VALUES ('f')`
	for range 2 {
		if err := exec(two); err != nil {
			t.Fatal(err)
		}
		if err := exec(two, 1); err == nil {
			t.Error("arguments bound to a text of several statements")
		}
		if rows, err := conn.QueryContext(ctx, two); err == nil {
			rows.Close()
			t.Error("a query of several statements ran")
		}
	}
	if n := countOn(t, conn, `SELECT count(*) FROM log WHERE v IN ('e', 'f')`); n != 4 {
		t.Errorf("%d rows from the texts of two statements, want 4", n)
	}
}

// TestStmtCacheConnClose checks that a connection closes the statements it
// cached: SQLite refuses to close a connection with statements left.
func TestStmtCacheConnClose(t *testing.T) {
	t.Parallel()
	_, dir := open(t)
	dc, err := (&hiqlite.Driver{}).Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	qc := dc.(driver.QueryerContext)
	for i := range 3 {
		rows, err := qc.QueryContext(context.Background(), fmt.Sprintf(`SELECT %d`, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		dest := make([]driver.Value, 1)
		if err := rows.Next(dest); err != nil || dest[0] != int64(i) {
			t.Fatalf("SELECT %d: %v, %v", i, dest[0], err)
		}
		if err := rows.Next(dest); err != io.EOF {
			t.Fatalf("SELECT %d: second row: %v", i, err)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := dc.Close(); err != nil {
		t.Errorf("close a connection with cached statements: %v", err)
	}
}

// TestStmtCacheInTx checks what a transaction takes from the caches without
// reading the text again: a cached write and a cached read run in it, while
// a cached text that is one whole transaction is still refused there.
func TestStmtCacheInTx(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)`)
	conn := pinned(t, db)
	ctx := context.Background()
	const ins = `INSERT INTO t(v) VALUES (?)`
	const whole = `BEGIN; INSERT INTO t(v) VALUES ('w'); COMMIT;`
	const cnt = `SELECT count(*) FROM t`
	if _, err := conn.ExecContext(ctx, whole); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, ins, "a"); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, conn, cnt); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	if reads, writes, _ := cacheStats(t, conn); reads != 1 || writes < 2 {
		t.Fatalf("cached %d reads, %d writes; want 1, at least 2", reads, writes)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i, v := range []string{"b", "c"} {
		if _, err := tx.Exec(ins, v); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := tx.QueryRow(cnt).Scan(&n); err != nil || n != int64(3+i) {
			t.Fatalf("count in the transaction: %d, %v; want %d", n, err, 3+i)
		}
		if _, err := tx.Exec(whole); !errors.Is(err, sqlite3.ERROR) || !strings.Contains(err.Error(), "within a transaction") {
			t.Fatalf("a cached whole-transaction text inside a transaction: %v", err)
		}
	}
	if _, err := tx.Exec(ins, "a"); err == nil {
		t.Fatal("a duplicate through the cached write succeeded")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, conn, cnt); n != 4 {
		t.Fatalf("%d rows after commit, want 4", n)
	}
}
