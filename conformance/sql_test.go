package conformance

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
)

// TestDatabaseSQL runs the database/sql suite on plain SQLite, then on each
// hiqlite topology, and compares every case's transcript with SQLite's.
func TestDatabaseSQL(t *testing.T) {
	ts := &transcripts{ref: openReference(t), done: map[string][]string{}}
	t.Run("sqlite", func(t *testing.T) {
		for _, c := range sqlCases {
			t.Run(c.name, func(t *testing.T) { ts.of(t, c) })
		}
	})
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			e := topo.open(t)
			for _, c := range sqlCases {
				t.Run(c.name, func(t *testing.T) {
					want := ts.of(t, c)
					got := runCase(t, e, c)
					compareTranscripts(t, e.name, got, want)
				})
			}
			e.sameTables(t)
		})
	}
}

var sqlCases = []sqlCase{
	{"types", caseTypes},
	{"scan", caseScan},
	{"nulls", caseNulls},
	{"time", caseTime},
	{"parameters", caseParameters},
	{"prepared_goroutines", casePreparedGoroutines},
	{"column_types", caseColumnTypes},
	{"rows_close_early", caseRowsCloseEarly},
	{"cancel", caseCancel},
	{"goroutines", caseGoroutines},
	{"results", caseResults},
	{"multi_statement", caseMultiStatement},
	{"blobs", caseBlobs},
	{"unicode", caseUnicode},
	{"errors", caseErrors},
	{"transactions", caseTransactions},
	{"returning", caseReturning},
	{"schema", caseSchema},
}

// celsius is a driver.Valuer.
type celsius float64

func (c celsius) Value() (driver.Value, error) { return float64(c) * 10, nil }

type myString string

// caseTypes stores Go values of every kind database/sql accepts in columns
// of every affinity and reads them back as any.
func caseTypes(r *recorder) {
	r.mustExec(`CREATE TABLE types(id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, bo BOOLEAN, dt DATETIME, n NUMERIC, v VARCHAR(10), x)`)
	seven := 7
	values := []struct {
		name string
		v    any
	}{
		{"int", 7}, {"int8", int8(-8)}, {"int16", int16(16)}, {"int32", int32(-32)},
		{"int64", int64(math.MaxInt64)}, {"int64min", int64(math.MinInt64)},
		{"uint8", uint8(255)}, {"uint16", uint16(65535)}, {"uint32", uint32(math.MaxUint32)},
		{"uint64", uint64(1 << 62)}, {"uint64big", uint64(1 << 63)},
		{"float32", float32(1.5)}, {"float64", math.Pi}, {"negzero", math.Copysign(0, -1)},
		{"inf", math.Inf(1)}, {"nan", math.NaN()}, {"tiny", 5e-324},
		{"true", true}, {"false", false},
		{"string", "hello"}, {"numeric string", "42"}, {"real string", "4.50"}, {"empty string", ""},
		{"bytes", []byte{0, 1, 2, 255}}, {"empty bytes", []byte{}}, {"nil bytes", []byte(nil)},
		{"nil", nil}, {"time", time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.UTC)},
		{"valuer", celsius(21.5)}, {"named string", myString("mine")},
		{"nil pointer", (*int)(nil)}, {"pointer", &seven},
		{"NullInt64", sql.NullInt64{Int64: 9, Valid: true}}, {"NullString null", sql.NullString{}},
		{"Null[float64]", sql.Null[float64]{V: 2.25, Valid: true}},
		{"json.RawMessage", json.RawMessage(`{"a":[1,2]}`)},
	}
	for i, v := range values {
		args := make([]any, 9)
		for j := range args {
			args[j] = v.v
		}
		r.note("value %s", v.name)
		if _, err := r.exec(`INSERT INTO types(id, i, r, t, b, bo, dt, n, v, x) VALUES (`+fmt.Sprint(i+1)+`, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
			continue
		}
		r.query(`SELECT typeof(i), typeof(r), typeof(t), typeof(b), typeof(bo), typeof(dt), typeof(n), typeof(v), typeof(x) FROM types WHERE id = ?`, i+1)
		r.query(`SELECT i, r, t, b, bo, dt, n, v, x FROM types WHERE id = ?`, i+1)
	}
}

// caseScan scans SQL values into Go destinations of every kind.
func caseScan(r *recorder) {
	exprs := []string{`42`, `300`, `-1`, `'42'`, `' 42 '`, `'abc'`, `4.5`, `4.0`, `x'0102'`, `NULL`, `0`, `1`, `2`,
		`'true'`, `'2024-01-02T03:04:05Z'`, `'2024-01-02 03:04:05'`, `9223372036854775807`, `1e300`, `''`}
	dests := []struct {
		name string
		new  func() any
	}{
		{"int", func() any { return new(int) }},
		{"int8", func() any { return new(int8) }},
		{"uint8", func() any { return new(uint8) }},
		{"uint64", func() any { return new(uint64) }},
		{"float32", func() any { return new(float32) }},
		{"float64", func() any { return new(float64) }},
		{"string", func() any { return new(string) }},
		{"[]byte", func() any { return new([]byte) }},
		{"bool", func() any { return new(bool) }},
		{"time.Time", func() any { return new(time.Time) }},
		{"any", func() any { return new(any) }},
		{"*int", func() any { return new(*int) }},
		{"NullInt64", func() any { return new(sql.NullInt64) }},
		{"NullString", func() any { return new(sql.NullString) }},
		{"NullTime", func() any { return new(sql.NullTime) }},
		{"Null[bool]", func() any { return new(sql.Null[bool]) }},
	}
	for _, x := range exprs {
		for _, d := range dests {
			dst := d.new()
			err := r.db.QueryRowContext(r.ctx, `SELECT `+x).Scan(dst)
			if err != nil {
				r.note("scan %s into %s: %s", x, d.name, errText(err))
				continue
			}
			r.note("scan %s into %s: %s", x, d.name, deref(dst))
		}
	}
	// sql.RawBytes only lives inside the rows loop.
	rows, err := r.db.QueryContext(r.ctx, `SELECT 'raw', x'00ff', 7, NULL`)
	if err != nil {
		r.note("rawbytes: %s", errText(err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var a, b, c, d sql.RawBytes
		err := rows.Scan(&a, &b, &c, &d)
		r.note("rawbytes: %q %q %q %v %s", a, b, c, d == nil, errText(err))
	}
}

// deref renders what a destination pointer holds.
func deref(p any) string {
	switch v := p.(type) {
	case *any:
		return fmt.Sprintf("%T:%v", *v, *v)
	case **int:
		if *v == nil {
			return "nil"
		}
		return fmt.Sprint(**v)
	case *time.Time:
		return v.Format(time.RFC3339Nano)
	case *sql.NullTime:
		return fmt.Sprintf("%v %s", v.Valid, v.Time.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("%v", reflect.ValueOf(p).Elem().Interface())
}

// caseNulls stores and reads NULL in every way.
func caseNulls(r *recorder) {
	r.mustExec(`CREATE TABLE nulls(id INTEGER PRIMARY KEY, i INTEGER, t TEXT, b BLOB, d DATETIME, bo BOOLEAN)`)
	r.mustExec(`INSERT INTO nulls(id) VALUES (1)`)
	r.mustExec(`INSERT INTO nulls VALUES (2, ?, ?, ?, ?, ?)`, nil, sql.NullString{}, []byte(nil), sql.NullTime{}, sql.NullBool{})
	r.mustExec(`INSERT INTO nulls VALUES (3, ?, ?, ?, ?, ?)`, (*int64)(nil), (*string)(nil), []byte{}, (*time.Time)(nil), (*bool)(nil))
	r.query(`SELECT id, typeof(i), typeof(t), typeof(b), typeof(d), typeof(bo), b IS NULL, quote(b) FROM nulls ORDER BY id`)
	for id := 1; id <= 3; id++ {
		var i sql.NullInt64
		var s sql.NullString
		var b []byte
		var d sql.NullTime
		var bo sql.NullBool
		err := r.db.QueryRowContext(r.ctx, `SELECT i, t, b, d, bo FROM nulls WHERE id = ?`, id).Scan(&i, &s, &b, &d, &bo)
		r.note("row %d: %v %v %v nil=%v %v %v %s", id, i, s, b, b == nil, d.Valid, bo, errText(err))
		var pi *int64
		var ps *string
		err = r.db.QueryRowContext(r.ctx, `SELECT i, t FROM nulls WHERE id = ?`, id).Scan(&pi, &ps)
		r.note("row %d: pointers nil=%v,%v %s", id, pi == nil, ps == nil, errText(err))
		var plain int64
		err = r.db.QueryRowContext(r.ctx, `SELECT i FROM nulls WHERE id = ?`, id).Scan(&plain)
		r.note("row %d: NULL into int64: %s", id, errText(err))
	}
	r.query(`SELECT NULL = NULL, NULL IS NULL, coalesce(NULL, 'x'), ifnull(NULL, 2), nullif(1, 1), typeof(NULL)`)
	r.query(`SELECT count(i), count(*), sum(i), total(i), max(t), group_concat(t) FROM nulls`)
	r.query(`SELECT id FROM nulls WHERE i = ? ORDER BY id`, nil)
	r.query(`SELECT id FROM nulls WHERE i IS ? ORDER BY id`, nil)
}

// caseTime stores time.Time values in columns of several declared types.
func caseTime(r *recorder) {
	r.mustExec(`CREATE TABLE times(id INTEGER PRIMARY KEY, dt DATETIME, ts TIMESTAMP, d DATE, t TEXT, x, created DEFAULT CURRENT_TIMESTAMP, c2 DATETIME DEFAULT CURRENT_TIMESTAMP)`)
	times := []time.Time{
		time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("IST", 5*3600+1800)),
		time.Date(2001, 9, 9, 1, 46, 40, 500000000, time.FixedZone("", -7*3600)),
		time.Unix(0, 0).UTC(),
		{},
	}
	for i, tm := range times {
		r.mustExec(`INSERT INTO times(id, dt, ts, d, t, x) VALUES (?, ?, ?, ?, ?, ?)`, i+1, tm, tm, tm, tm, tm)
	}
	r.query(`SELECT id, dt, ts, d, t, x, typeof(dt), typeof(x) FROM times ORDER BY id`)
	for i, tm := range times {
		var dt, ts, x time.Time
		var txt string
		err := r.db.QueryRowContext(r.ctx, `SELECT dt, ts, x, t FROM times WHERE id = ?`, i+1).Scan(&dt, &ts, &x, &txt)
		r.note("time %d: equal %v %v %v text %q zone %s %s", i+1, dt.Equal(tm), ts.Equal(tm), x.Equal(tm), txt, dt.Location(), errText(err))
	}
	// SQLite's own functions read the stored text.
	r.query(`SELECT id, strftime('%Y %j %H', dt), date(dt), julianday(dt) > 0, unixepoch(dt), datetime(dt, '+1 day') FROM times ORDER BY id`)
	r.query(`SELECT count(*) FROM times WHERE dt < ?`, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	r.query(`SELECT datetime('2024-01-31 10:00:00', '+1 month'), date('2024-03-10', 'start of month', '-1 day'), strftime('%s', '2024-01-01')`)
	// DEFAULT CURRENT_TIMESTAMP is SQLite's text form; a DATETIME column
	// decodes it. Its value is the writer's clock, so only its shape is
	// compared.
	var created string
	var c2 time.Time
	err := r.db.QueryRowContext(r.ctx, `SELECT created, c2 FROM times WHERE id = 1`).Scan(&created, &c2)
	_, perr := time.Parse(time.DateTime, created)
	r.note("default current_timestamp: len %d parses %v, DATETIME decodes %v zone %s %s", len(created), perr == nil, !c2.IsZero(), c2.Location(), errText(err))
}

// caseParameters binds positional, numbered and named parameters.
func caseParameters(r *recorder) {
	r.query(`SELECT ?, ?, ?`, 1, "two", 3.0)
	r.query(`SELECT ?2, ?1, ?2`, "a", "b")
	r.query(`SELECT :a, @b, $c`, sql.Named("a", 1), sql.Named("b", 2), sql.Named("c", 3))
	r.query(`SELECT :a || :a, @a`, sql.Named("a", "x"))
	r.query(`SELECT ?1, :x`, 10, sql.Named("x", 20))
	r.query(`SELECT ? LIMIT ?`, "lim", 1)
	// Too many or too few arguments: both refuse, in other words
	// (SQLite's driver has database/sql count them, "sql: expected 2
	// arguments, got 3"; hiqlite counts them itself, "hiqlite: expected 2
	// arguments, got 3").
	for _, args := range [][]any{{1, 2, 3}, {1}} {
		_, err := r.db.QueryContext(r.ctx, `SELECT ?, ?`, args...)
		r.note("query with %d arguments for 2: refused %v, %q", len(args), err != nil, strings.TrimPrefix(strings.TrimPrefix(fmt.Sprint(err), "sql: "), "hiqlite: "))
		_, err = r.db.ExecContext(r.ctx, `SELECT ?, ?`, args...)
		r.note("exec with %d arguments for 2: refused %v, %q", len(args), err != nil, strings.TrimPrefix(strings.TrimPrefix(fmt.Sprint(err), "sql: "), "hiqlite: "))
	}
	r.mustExec(`CREATE TABLE params(a, b, c)`)
	r.mustExec(`INSERT INTO params VALUES (?2, ?1, ?2)`, "one", "two")
	r.mustExec(`INSERT INTO params VALUES (:a, @b, $c)`, sql.Named("a", 1), sql.Named("b", 2), sql.Named("c", 3))
	r.mustExec(`INSERT INTO params VALUES (?, ?, ?)`, "p", "q", "r")
	r.query(`SELECT * FROM params ORDER BY rowid`)
	r.query(`SELECT * FROM params WHERE a = :a OR b = :a ORDER BY rowid`, sql.Named("a", "two"))

	// A prepared statement checks the argument count (database/sql does,
	// from NumInput).
	st, err := r.db.PrepareContext(r.ctx, `SELECT ?, ?`)
	if err != nil {
		r.note("prepare: %s", errText(err))
		return
	}
	defer st.Close()
	_, err = st.QueryContext(r.ctx, 1)
	r.note("prepared, too few arguments: %s", errText(err))
	_, err = st.ExecContext(r.ctx, 1, 2, 3)
	r.note("prepared, too many arguments: %s", errText(err))

	_, err = r.db.ExecContext(r.ctx, `INSERT INTO params VALUES (:a, :b, :c)`, sql.Named("a", 1), sql.Named("zz", 2))
	if r.hiqlite() {
		// Difference: a named argument no parameter takes is an error.
		if err == nil || !strings.Contains(err.Error(), `"zz"`) {
			r.t.Errorf("hiqlite: unused named argument: %v", err)
		}
		err = nil
	}
	r.note("unused named argument: %s", errText(err))
}

// casePreparedGoroutines shares prepared statements between goroutines.
func casePreparedGoroutines(r *recorder) {
	r.mustExec(`CREATE TABLE pg(id INTEGER PRIMARY KEY, g INT, n INT)`)
	ins, err := r.db.PrepareContext(r.ctx, `INSERT INTO pg(g, n) VALUES (?, ?)`)
	if err != nil {
		r.t.Fatal(err)
	}
	defer ins.Close()
	sel, err := r.db.PrepareContext(r.ctx, `SELECT count(*), coalesce(sum(n), 0) FROM pg WHERE g = ?`)
	if err != nil {
		r.t.Fatal(err)
	}
	defer sel.Close()
	const goroutines, each = 8, 12
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if _, err := ins.ExecContext(r.ctx, g, i); err != nil {
					r.t.Errorf("goroutine %d insert %d: %v", g, i, err)
					return
				}
				// Each goroutine reads its own writes.
				var n, s int
				if err := sel.QueryRowContext(r.ctx, g).Scan(&n, &s); err != nil || n != i+1 || s != i*(i+1)/2 {
					r.t.Errorf("goroutine %d after insert %d: count %d sum %d %v", g, i, n, s, err)
					return
				}
			}
			// A transaction borrows the prepared statement.
			tx, err := r.db.BeginTx(r.ctx, nil)
			if err != nil {
				r.t.Errorf("goroutine %d: begin: %v", g, err)
				return
			}
			if _, err := tx.StmtContext(r.ctx, ins).ExecContext(r.ctx, g, 100); err != nil {
				r.t.Errorf("goroutine %d: tx insert: %v", g, err)
			}
			if err := tx.Commit(); err != nil {
				r.t.Errorf("goroutine %d: commit: %v", g, err)
			}
		})
	}
	wg.Wait()
	r.query(`SELECT g, count(*), sum(n) FROM pg GROUP BY g ORDER BY g`)
}

// caseColumnTypes reads the column types database/sql reports.
func caseColumnTypes(r *recorder) {
	r.mustExec(`CREATE TABLE ct(id INTEGER PRIMARY KEY, a INT NOT NULL, b VARCHAR(20), c DECIMAL(10,2), d BOOLEAN, e DATETIME, f BLOB, g, h TEXT NOT NULL DEFAULT '', k REAL)`)
	r.mustExec(`INSERT INTO ct VALUES (1, 2, 'b', 3.25, 1, '2024-01-02T03:04:05Z', x'01', 'g', 'h', 1.5)`)
	r.mustExec(`INSERT INTO ct VALUES (2, 3, NULL, 'text', 7, 'not a time', NULL, 5, '', NULL)`)
	var nullables map[string]bool
	describe := func(q string) {
		rows, err := r.db.QueryContext(r.ctx, q)
		if err != nil {
			r.note("column types %s: %s", short(q), errText(err))
			return
		}
		defer rows.Close()
		cts, err := rows.ColumnTypes()
		if err != nil {
			r.note("column types %s: %s", short(q), errText(err))
			return
		}
		r.note("column types %s", short(q))
		for _, ct := range cts {
			// Nullable is left out of the transcript: SQLite's driver
			// (v0.37) reports (false, true) for every column with a
			// declared INT, REAL, TEXT, BLOB, BOOLEAN or time type, NOT
			// NULL or not. hiqlite's answer is checked on its own.
			if r.hiqlite() {
				nullable, ok := ct.Nullable()
				if want, known := nullables[ct.Name()]; known && (nullable != want || !ok) {
					r.t.Errorf("hiqlite: %s: Nullable() = %v, %v, want %v, true", ct.Name(), nullable, ok, want)
				}
			}
			length, lok := ct.Length()
			p, s, dok := ct.DecimalSize()
			r.note("  %s: db=%q scan=%v length=%d,%v decimal=%d,%d,%v",
				ct.Name(), ct.DatabaseTypeName(), ct.ScanType(), length, lok, p, s, dok)
		}
		before := make([]string, len(cts))
		for i, ct := range cts {
			before[i] = fmt.Sprint(ct.ScanType())
		}
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for row := 1; rows.Next(); row++ {
			if err := rows.Scan(ptrs...); err != nil {
				r.t.Fatal(err)
			}
			cts, _ := rows.ColumnTypes()
			var line []string
			for i, ct := range cts {
				typ := fmt.Sprint(ct.ScanType())
				if r.hiqlite() && vals[i] == nil && before[i] != "[]uint8" {
					// Difference: for a NULL in a typed column hiqlite
					// keeps the declared type's scan type (float64 for
					// REAL); SQLite's driver says interface {} (but
					// keeps []byte for BLOB).
					if typ != before[i] {
						r.t.Errorf("hiqlite: scan type of NULL in %s: %s, want %s", ct.Name(), typ, before[i])
					}
					typ = "interface {}"
				}
				line = append(line, typ)
			}
			r.note("  row %d scan types %s", row, strings.Join(line, " "))
		}
		nullables = nil // only the first query's columns are checked
	}
	// What hiqlite's ColumnTypeNullable must say of the table's columns.
	nullables = map[string]bool{"id": false, "a": false, "b": true, "c": true, "d": true, "e": true, "f": true, "g": true, "h": false, "k": true}
	describe(`SELECT * FROM ct ORDER BY id`)
	describe(`SELECT id, a + 1 AS a1, 'lit', NULL, 1.5, x'00', count(*) OVER () AS n, b AS renamed FROM ct ORDER BY id`)
	describe(`SELECT * FROM ct WHERE 0`)
	describe(`INSERT INTO ct(id, a, h) VALUES (3, 4, 'x') RETURNING id, a, b, e, a * 2`)
}

// caseRowsCloseEarly stops reading rows before their end.
func caseRowsCloseEarly(r *recorder) {
	r.mustExec(`CREATE TABLE rc(n INTEGER)`)
	r.mustExec(`INSERT INTO rc WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) SELECT n FROM c`)
	readSome := func(q queryer, what string) {
		rows, err := q.QueryContext(r.ctx, `SELECT n FROM rc ORDER BY n`)
		if err != nil {
			r.note("%s: %s", what, errText(err))
			return
		}
		var got []int
		for len(got) < 3 && rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				r.note("%s: scan %s", what, errText(err))
			}
			got = append(got, n)
		}
		r.note("%s: read %v, close %s, err %s", what, got, errText(rows.Close()), errText(rows.Err()))
	}
	readSome(r.db, "db")
	readSome(r.db, "db again")

	// On one connection, a write follows the abandoned read.
	c, err := r.db.Conn(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	readSome(c, "conn")
	r.execOn(c, `INSERT INTO rc VALUES (1001)`)
	readSome(c, "conn after write")
	c.Close()

	// A prepared statement's rows closed early, then reused.
	st, err := r.db.PrepareContext(r.ctx, `SELECT n FROM rc WHERE n > ? ORDER BY n`)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, from := range []int{0, 500, 999} {
		rows, err := st.QueryContext(r.ctx, from)
		if err != nil {
			r.note("stmt: %s", errText(err))
			continue
		}
		var n int
		if rows.Next() {
			rows.Scan(&n)
		}
		r.note("stmt from %d: first %d, close %s", from, n, errText(rows.Close()))
	}
	st.Close()

	// In a transaction: read a little, write, read again, commit.
	tx, err := r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	readSome(tx, "tx")
	r.execOn(tx, `DELETE FROM rc WHERE n <= 500`)
	readSome(tx, "tx after write")
	r.note("commit %s", errText(tx.Commit()))
	r.query(`SELECT count(*), min(n), max(n) FROM rc`)
}

// caseCancel cancels queries before and while they run.
func caseCancel(r *recorder) {
	const forever = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c`
	// Cancelled mid-iteration.
	ctx, cancel := context.WithCancel(r.ctx)
	rows, err := r.db.QueryContext(ctx, forever)
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
		if n == 5 {
			cancel()
		}
		if n > 10_000_000 {
			break
		}
	}
	// database/sql closes the rows from a goroutine of its own when ctx is
	// done, so the error is ctx's or the interrupted step's, whichever
	// comes first.
	err = rows.Err()
	r.note("cancel mid-query: stopped after cancel %v, err is Canceled or interrupt %v", n < 10_000_000, errors.Is(err, context.Canceled) || errors.Is(err, sqlite3.INTERRUPT))
	rows.Close()
	cancel()

	// A deadline interrupts a query that returns no row until the end.
	ctx, cancel = context.WithTimeout(r.ctx, 50*time.Millisecond)
	var x int64
	err = r.db.QueryRowContext(ctx, `SELECT max(x) FROM (`+forever+`)`).Scan(&x)
	cancel()
	r.note("deadline: DeadlineExceeded or interrupt %v", errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sqlite3.INTERRUPT))

	// Cancelled before it starts: reads and writes.
	ctx, cancel = context.WithCancel(r.ctx)
	cancel()
	_, err = r.db.QueryContext(ctx, `SELECT 1`)
	r.note("cancelled read: %v", errors.Is(err, context.Canceled))
	r.mustExec(`CREATE TABLE cancelled(x)`)
	_, err = r.db.ExecContext(ctx, `INSERT INTO cancelled VALUES (1)`)
	r.note("cancelled write: %v", errors.Is(err, context.Canceled))
	_, err = r.db.BeginTx(ctx, nil)
	r.note("cancelled begin: %v", errors.Is(err, context.Canceled))

	// Cancelling a transaction's context rolls it back.
	ctx, cancel = context.WithCancel(r.ctx)
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.execOn(tx, `INSERT INTO cancelled VALUES (2)`)
	cancel()
	// database/sql rolls the transaction back when ctx is done, from a
	// goroutine of its own: Commit then reports ctx's error or ErrTxDone.
	err = tx.Commit()
	r.note("commit after cancel refused: %v", errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone))

	// The pool is sound afterwards.
	r.query(`SELECT count(*) FROM cancelled`)
	r.query(`SELECT 1`)
}

// caseGoroutines runs many goroutines at once, reading and writing.
func caseGoroutines(r *recorder) {
	r.mustExec(`CREATE TABLE gr(id INTEGER PRIMARY KEY, w INT, i INT, v TEXT)`)
	const workers, each = 24, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := r.db.ExecContext(r.ctx, `INSERT INTO gr(w, i, v) VALUES (?, ?, ?)`, w, i, fmt.Sprint(w, "-", i)); err != nil {
					r.t.Errorf("worker %d: insert: %v", w, err)
					return
				}
				var n int
				if err := r.db.QueryRowContext(r.ctx, `SELECT count(*) FROM gr WHERE w = ?`, w).Scan(&n); err != nil || n != i+1 {
					r.t.Errorf("worker %d: read own writes: %d rows after %d inserts, %v", w, n, i+1, err)
					return
				}
				if i%3 == 2 {
					err := inTx(r.ctx, r.db, func(tx *sql.Tx) error {
						_, err := tx.ExecContext(r.ctx, `UPDATE gr SET v = v || '!' WHERE w = ? AND i = ?`, w, i)
						return err
					})
					if err != nil {
						r.t.Errorf("worker %d: tx: %v", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	r.query(`SELECT count(*), count(DISTINCT w), sum(i), sum(v LIKE '%!') FROM gr`)
}

// inTx runs fn in a transaction, once more when SQLite reports a busy
// snapshot (the documented way to retry a deferred transaction).
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	var err error
	for range 5 {
		var tx *sql.Tx
		tx, err = db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err = fn(tx); err == nil {
			if err = tx.Commit(); err == nil {
				return nil
			}
		} else {
			tx.Rollback()
		}
		if !errors.Is(err, sqlite3.BUSY) {
			return err
		}
	}
	return err
}

// caseResults checks LastInsertId and RowsAffected.
func caseResults(r *recorder) {
	r.mustExec(`CREATE TABLE res(id INTEGER PRIMARY KEY, v TEXT UNIQUE)`)
	r.mustExec(`CREATE TABLE res_norowid(k TEXT PRIMARY KEY, v) WITHOUT ROWID`)
	r.mustExec(`CREATE TABLE res_log(id INTEGER PRIMARY KEY, what)`)
	r.mustExec(`CREATE TRIGGER res_ins AFTER INSERT ON res BEGIN INSERT INTO res_log(id, what) VALUES (new.id + 1000, 'ins'); END`)
	r.exec(`INSERT INTO res(v) VALUES ('a')`)
	r.exec(`INSERT INTO res(v) VALUES (?)`, "b")
	r.exec(`INSERT INTO res(v) VALUES ('c'), ('d'), ('e')`)
	r.exec(`INSERT INTO res(id, v) VALUES (100, 'f')`)
	r.exec(`UPDATE res SET v = v || '!' WHERE id > 2`)
	r.exec(`UPDATE res SET v = v WHERE id > 1000`)
	r.exec(`DELETE FROM res WHERE id = 3`)
	r.exec(`INSERT OR IGNORE INTO res(v) VALUES ('a')`)
	r.exec(`INSERT INTO res(v) VALUES ('a') ON CONFLICT(v) DO UPDATE SET v = 'a2'`)
	r.exec(`REPLACE INTO res(id, v) VALUES (2, 'b2')`)
	r.exec(`INSERT INTO res_norowid VALUES ('k', 1)`)
	r.exec(`INSERT INTO res(v) SELECT 'copy-' || v FROM res WHERE id < 3`)
	r.exec(`DELETE FROM res_log`)
	r.query(`SELECT * FROM res ORDER BY id`)

	// In a transaction a statement that inserts nothing reports no id.
	tx, err := r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.execOn(tx, `INSERT INTO res(v) VALUES ('tx1')`)
	r.execOn(tx, `UPDATE res SET v = 'tx1!' WHERE v = 'tx1'`)
	r.execOn(tx, `DELETE FROM res WHERE v = 'nothing'`)
	r.note("commit %s", errText(tx.Commit()))
}

// caseMultiStatement sends several statements in one Exec.
func caseMultiStatement(r *recorder) {
	r.exec(`CREATE TABLE ms(a); INSERT INTO ms VALUES (1); INSERT INTO ms VALUES (2), (3)`)
	r.exec(`INSERT INTO ms VALUES (4); -- a comment
		INSERT INTO ms VALUES (5); /* another */`)
	r.exec(`SELECT 1; SELECT 2;`)
	r.exec(``)
	r.exec(`;;`)
	r.exec(`-- nothing but a comment`)
	r.query(`SELECT a FROM ms ORDER BY a`)

	// A failing statement in the middle: SQLite has run those before it,
	// each in its own autocommit transaction.
	_, err := r.db.ExecContext(r.ctx, `INSERT INTO ms VALUES (6); INSERT INTO nosuch VALUES (7); INSERT INTO ms VALUES (8)`)
	r.note("failing middle: %s", errText(err))
	r.query(`SELECT a FROM ms ORDER BY a`)

	// Arguments with several statements, and a query of several.
	_, err = r.db.ExecContext(r.ctx, `INSERT INTO ms VALUES (?); INSERT INTO ms VALUES (?)`, 9, 10)
	r.note("arguments with several statements: %s", codeText(err))
	_, err = r.db.QueryContext(r.ctx, `SELECT 1; SELECT 2`)
	r.note("query of several statements: %s", codeText(err))
	st, err := r.db.PrepareContext(r.ctx, `INSERT INTO ms VALUES (11); INSERT INTO ms VALUES (12)`)
	if r.hiqlite() {
		// Difference: hiqlite prepares a text of several statements, and
		// its Exec runs them all as one write; SQLite's driver refuses to
		// prepare it ("sqlite3: multiple statements").
		if err != nil {
			r.t.Errorf("hiqlite: prepare several statements: %v", err)
		} else {
			_, err = st.ExecContext(r.ctx)
			st.Close()
			if err != nil {
				r.t.Errorf("hiqlite: exec prepared statements: %v", err)
			}
			if _, err := r.db.ExecContext(r.ctx, `DELETE FROM ms WHERE a IN (11, 12)`); err != nil {
				r.t.Fatal(err)
			}
		}
		err = errors.New("refused")
	}
	r.note("prepare several statements refused: %v", err != nil)
	r.query(`SELECT count(*) FROM ms`)
}

// caseBlobs stores values of 8 MiB and more.
func caseBlobs(r *recorder) {
	r.mustExec(`CREATE TABLE bl(id INTEGER PRIMARY KEY, b BLOB, t TEXT)`)
	big := make([]byte, 8<<20+3)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	text := strings.Repeat("ünïcødé ✓ ", (8<<20)/len("ünïcødé ✓ ")+1)
	r.mustExec(`INSERT INTO bl(id, b) VALUES (1, ?)`, big)
	r.mustExec(`UPDATE bl SET t = ? WHERE id = 1`, text)
	var got []byte
	var gotText string
	err := r.db.QueryRowContext(r.ctx, `SELECT b, t FROM bl WHERE id = 1`).Scan(&got, &gotText)
	r.note("read back: blob %d bytes equal %v, text %d bytes equal %v, %s", len(got), bytes.Equal(got, big), len(gotText), gotText == text, errText(err))
	r.query(`SELECT length(b), hex(substr(b, 1, 8)), hex(substr(b, -4)), length(t), substr(t, 1, 9) FROM bl WHERE id = 1`)
	r.mustExec(`INSERT INTO bl(id, b) VALUES (2, zeroblob(8388609))`)
	r.mustExec(`UPDATE bl SET b = b || x'ff' WHERE id = 2`)
	r.query(`SELECT id, length(b), hex(substr(b, -2)) FROM bl ORDER BY id`)
	var n int64
	err = r.db.QueryRowContext(r.ctx, `INSERT INTO bl(id, b) VALUES (3, ?) RETURNING length(b)`, big[:8<<20]).Scan(&n)
	r.note("returning length %d %s", n, errText(err))
	got = nil
	err = r.db.QueryRowContext(r.ctx, `SELECT b FROM bl WHERE id = 3`).Scan(&got)
	r.note("third: %d bytes sha %s %s", len(got), sum(got), errText(err))
}

// caseUnicode stores text in many scripts, and names in Unicode.
func caseUnicode(r *recorder) {
	r.mustExec(`CREATE TABLE "ünï_表"("ключ" INTEGER PRIMARY KEY, "値" TEXT)`)
	texts := []string{
		"héllo", "日本語のテキスト", "emoji 👩‍👩‍👧‍👦 family", "combining e\u0301", "RTL עברית", "Ελληνικά",
		"nul\x00inside", "\uFFFD replacement", "invalid \xff\xfe bytes", "", " spaces ", "tab\tnew\nline", `quote ' "`,
	}
	for i, s := range texts {
		r.mustExec(`INSERT INTO "ünï_表" VALUES (?, ?)`, i+1, s)
	}
	for i, s := range texts {
		var got string
		err := r.db.QueryRowContext(r.ctx, `SELECT "値" FROM "ünï_表" WHERE "ключ" = ?`, i+1).Scan(&got)
		r.note("round trip %d: equal %v %s", i+1, got == s, errText(err))
	}
	r.query(`SELECT "ключ", length("値"), hex("値"), upper("値"), unicode("値"), instr("値", 'e'), substr("値", 2, 3) FROM "ünï_表" ORDER BY "ключ"`)
	r.query(`SELECT "ключ" FROM "ünï_表" WHERE "値" LIKE 'H%' OR "値" LIKE '%ÉLLO' ORDER BY "ключ"`)
	r.query(`SELECT "ключ" FROM "ünï_表" ORDER BY "値", "ключ"`)
	r.query(`SELECT char(0x1F600, 0x5B57), '✓' = ?, length(?)`, "✓", "👩‍👩‍👧‍👦")
}

// caseErrors provokes constraint and syntax errors.
func caseErrors(r *recorder) {
	r.mustExec(`CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, age INT CHECK (age >= 0))`)
	r.mustExec(`CREATE TABLE child(id INTEGER PRIMARY KEY, pid INT REFERENCES parent(id))`)
	r.mustExec(`CREATE TABLE pk2(a, b, PRIMARY KEY(a, b))`)
	r.mustExec(`CREATE TABLE strict_t(i INT, t TEXT) STRICT`)
	r.mustExec(`CREATE TABLE guarded(x)`)
	r.mustExec(`CREATE TRIGGER guard BEFORE INSERT ON guarded WHEN new.x < 0 BEGIN SELECT RAISE(ABORT, 'x must not be negative'); END`)
	r.mustExec(`INSERT INTO parent VALUES (1, 'ann', 30)`)
	r.mustExec(`INSERT INTO pk2 VALUES (1, 2)`)

	check := func(what string, err error, want sqlite3.ExtendedErrorCode) {
		r.t.Helper()
		r.note("%s: %s", what, errText(err))
		var serr *sqlite3.Error
		if !errors.Is(err, want) || !errors.Is(err, want.Code()) || !errors.As(err, &serr) {
			r.t.Errorf("%s: %v does not match %v as *sqlite3.Error", what, err, want)
		}
	}
	for _, tc := range []struct {
		q    string
		want sqlite3.ExtendedErrorCode
	}{
		{`INSERT INTO parent VALUES (2, 'ann', 1)`, sqlite3.CONSTRAINT_UNIQUE},
		{`INSERT INTO parent VALUES (1, 'bob', 1)`, sqlite3.CONSTRAINT_PRIMARYKEY},
		{`INSERT INTO parent(id, age) VALUES (3, 1)`, sqlite3.CONSTRAINT_NOTNULL},
		{`INSERT INTO parent VALUES (4, 'cy', -1)`, sqlite3.CONSTRAINT_CHECK},
		{`INSERT INTO pk2 VALUES (1, 2)`, sqlite3.CONSTRAINT_PRIMARYKEY},
		{`INSERT INTO strict_t VALUES ('abc', 't')`, sqlite3.CONSTRAINT_DATATYPE},
		{`INSERT INTO guarded VALUES (-1)`, sqlite3.CONSTRAINT_TRIGGER},
		{`UPDATE parent SET age = -5`, sqlite3.CONSTRAINT_CHECK},
	} {
		_, err := r.db.ExecContext(r.ctx, tc.q)
		check("exec "+tc.q, err, tc.want)
	}
	// Through QueryContext, as INSERT ... RETURNING goes.
	var id int
	err := r.db.QueryRowContext(r.ctx, `INSERT INTO parent(name) VALUES ('ann') RETURNING id`).Scan(&id)
	check("returning", err, sqlite3.CONSTRAINT_UNIQUE)

	// Foreign keys are a per-connection setting.
	c, err := r.db.Conn(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var fk int
	err = c.QueryRowContext(r.ctx, `PRAGMA foreign_keys`).Scan(&fk)
	_, ierr := c.ExecContext(r.ctx, `INSERT INTO child VALUES (1, 99)`)
	if r.hiqlite() {
		// Difference: a hiqlite session starts with foreign keys off, as
		// SQLite itself does; ncruces builds SQLite with them on.
		if fk != 0 || err != nil || ierr != nil {
			r.t.Errorf("hiqlite: foreign_keys = %d %v, insert: %v", fk, err, ierr)
		}
		if _, err := r.db.ExecContext(r.ctx, `DELETE FROM child`); err != nil {
			r.t.Fatal(err)
		}
	} else if fk != 1 || !errors.Is(ierr, sqlite3.CONSTRAINT_FOREIGNKEY) {
		r.t.Errorf("sqlite: foreign_keys = %d %v, insert: %v", fk, err, ierr)
	}
	r.execOn(c, `PRAGMA foreign_keys = ON`)
	r.queryOn(c, `PRAGMA foreign_keys`)
	_, err = c.ExecContext(r.ctx, `INSERT INTO child VALUES (2, 98)`)
	check("foreign key", err, sqlite3.CONSTRAINT_FOREIGNKEY)
	r.execOn(c, `INSERT INTO child VALUES (3, 1)`)
	_, err = c.ExecContext(r.ctx, `DELETE FROM parent WHERE id = 1`)
	check("foreign key delete", err, sqlite3.CONSTRAINT_FOREIGNKEY)
	r.execOn(c, `PRAGMA foreign_keys = OFF`)
	r.queryOn(c, `PRAGMA foreign_keys`)
	r.execOn(c, `INSERT INTO child VALUES (4, 97)`)
	r.execOn(c, `DELETE FROM child WHERE id = 4`)
	c.Close()

	for _, q := range []string{
		`SELEC 1`, `SELECT * FROM nosuch`, `SELECT nosuch FROM parent`, `SELECT 1 +`,
		`SELECT abs(-9223372036854775808)`, `SELECT json('{bad')`, `SELECT count(*) FROM parent GROUP BY nosuch`,
	} {
		r.query(q)
		r.exec(q)
	}
	for _, q := range []string{
		`INSERT INTO nosuch VALUES (1)`, `INSERT INTO parent(nosuch) VALUES (1)`, `INSERT INTO parent VALUES (1)`,
		`DROP TABLE nosuch`, `CREATE TABLE parent(x)`, `UPDATE parent SET`, `ALTER TABLE parent DROP COLUMN nosuch`,
		`INSERT INTO parent VALUES (5, 'ok', 1) RETURNING nosuch`,
	} {
		r.exec(q)
	}
	// A failed statement inside a transaction leaves the transaction open
	// with its earlier writes.
	tx, err := r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.execOn(tx, `INSERT INTO parent VALUES (10, 'dee', 1)`)
	_, err = tx.ExecContext(r.ctx, `INSERT INTO parent VALUES (11, 'dee', 1)`)
	check("in tx", err, sqlite3.CONSTRAINT_UNIQUE)
	r.execOn(tx, `INSERT INTO parent VALUES (12, 'eve', 1)`)
	r.note("commit %s", errText(tx.Commit()))
	r.query(`SELECT id, name FROM parent ORDER BY id`)
}

// caseTransactions exercises database/sql transactions.
func caseTransactions(r *recorder) {
	r.mustExec(`CREATE TABLE txs(id INTEGER PRIMARY KEY, v)`)
	tx, err := r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.execOn(tx, `INSERT INTO txs VALUES (1, 'a')`)
	r.queryOn(tx, `SELECT * FROM txs`)
	r.query(`SELECT count(*) FROM txs`) // not yet visible outside
	r.note("commit %s", errText(tx.Commit()))
	r.note("commit again %s", errText(tx.Commit()))
	r.query(`SELECT * FROM txs`)

	tx, _ = r.db.BeginTx(r.ctx, nil)
	r.execOn(tx, `INSERT INTO txs VALUES (2, 'b')`)
	r.execOn(tx, `UPDATE txs SET v = 'changed'`)
	r.note("rollback %s", errText(tx.Rollback()))
	r.query(`SELECT * FROM txs`)

	// Savepoints.
	tx, _ = r.db.BeginTx(r.ctx, nil)
	r.execOn(tx, `SAVEPOINT a`)
	r.execOn(tx, `INSERT INTO txs VALUES (3, 'c')`)
	r.execOn(tx, `SAVEPOINT b`)
	r.execOn(tx, `INSERT INTO txs VALUES (4, 'd')`)
	r.execOn(tx, `ROLLBACK TO b`)
	r.execOn(tx, `RELEASE a`)
	r.note("commit %s", errText(tx.Commit()))
	r.query(`SELECT * FROM txs ORDER BY id`)

	// A read-only transaction reads, and refuses writes with READONLY.
	tx, err = r.db.BeginTx(r.ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		r.t.Fatal(err)
	}
	r.queryOn(tx, `SELECT count(*) FROM txs`)
	_, err = tx.ExecContext(r.ctx, `INSERT INTO txs VALUES (5, 'e')`)
	r.note("write in read-only tx: %s", codeText(err))
	r.note("rollback %s", errText(tx.Rollback()))

	// Isolation levels SQLite does not offer are refused.
	_, err = r.db.BeginTx(r.ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	r.note("read committed refused: %v", err != nil)
	tx, err = r.db.BeginTx(r.ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	r.note("serializable: %s", errText(err))
	if err == nil {
		r.execOn(tx, `INSERT INTO txs VALUES (6, 'f')`)
		r.note("commit %s", errText(tx.Commit()))
	}

	// Transaction control as SQL on one connection.
	c, err := r.db.Conn(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	r.execOn(c, `BEGIN`)
	r.execOn(c, `INSERT INTO txs VALUES (7, 'g')`)
	r.execOn(c, `COMMIT`)
	r.execOn(c, `BEGIN IMMEDIATE`)
	r.execOn(c, `DELETE FROM txs WHERE id = 7`)
	r.execOn(c, `ROLLBACK`)
	_, err = c.ExecContext(r.ctx, `COMMIT`)
	// Difference: hiqlite's message differs ("hiqlite: cannot commit - no
	// transaction is active: sqlite3: SQL logic error"), the code does not.
	r.note("commit without a transaction: %s", codeText(err))
	c.Close()
	r.query(`SELECT * FROM txs ORDER BY id`)
}

// caseReturning reads rows of writes through QueryContext.
func caseReturning(r *recorder) {
	r.mustExec(`CREATE TABLE rt(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, n INT DEFAULT 0)`)
	var id int64
	var name string
	err := r.db.QueryRowContext(r.ctx, `INSERT INTO rt(name) VALUES (?) RETURNING id, name`, "a").Scan(&id, &name)
	r.note("insert returning %d %q %s", id, name, errText(err))
	r.query(`INSERT INTO rt(name) VALUES ('b'), ('c'), ('d') RETURNING id, name, n, typeof(n)`)
	r.query(`UPDATE rt SET n = n + id WHERE id > 2 RETURNING id, n`)
	r.query(`DELETE FROM rt WHERE id = 4 RETURNING *`)
	r.query(`INSERT INTO rt(name) VALUES ('e') ON CONFLICT DO NOTHING RETURNING id`)
	r.exec(`INSERT INTO rt(name) VALUES ('f') RETURNING id`)
	tx, err := r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.queryOn(tx, `INSERT INTO rt(name) VALUES ('tx') RETURNING id, name`)
	r.queryOn(tx, `SELECT id, name FROM rt WHERE name = 'tx'`)
	r.note("commit %s", errText(tx.Commit()))
	r.query(`SELECT * FROM rt ORDER BY id`)
	r.query(`SELECT * FROM sqlite_sequence`)
}

// caseSchema changes the schema and uses the new objects at once (on a
// follower, the writer has them before the local read connection does).
func caseSchema(r *recorder) {
	r.mustExec(`CREATE TABLE sc(a INTEGER, b TEXT)`)
	r.mustExec(`INSERT INTO sc VALUES (1, 'x'), (2, 'y'), (3, 'z')`)
	r.mustExec(`CREATE INDEX sc_b ON sc(b)`)
	r.exec(`REINDEX sc_b`)
	r.exec(`REINDEX sc`)
	r.exec(`ANALYZE sc_b`)
	r.exec(`ANALYZE`)
	// Difference: hiqlite's own tables (_hiqlite_state, _hiqlite_sessions,
	// and _hiqlite_migrations once Migrate ran) are in the database, so
	// ANALYZE and sqlite_schema see them too.
	r.query(`SELECT tbl, idx FROM sqlite_stat1 WHERE tbl NOT LIKE '\_hiqlite\_%' ESCAPE '\' ORDER BY 1, 2`)
	var own int
	if err := r.db.QueryRowContext(r.ctx, `SELECT count(*) FROM sqlite_schema WHERE name LIKE '\_hiqlite\_%' ESCAPE '\'`).Scan(&own); err != nil {
		r.t.Fatal(err)
	}
	if r.hiqlite() != (own > 0) {
		r.t.Errorf("%d tables named _hiqlite_*", own)
	}
	r.exec(`CREATE VIEW sc_v AS SELECT a * 10 AS a10 FROM sc`)
	r.query(`SELECT * FROM sc_v ORDER BY a10`)
	r.exec(`CREATE TRIGGER sc_t AFTER INSERT ON sc BEGIN UPDATE sc SET b = upper(b) WHERE rowid = new.rowid; END`)
	r.exec(`INSERT INTO sc VALUES (4, 'w')`)
	r.exec(`ALTER TABLE sc ADD COLUMN c DEFAULT 7`)
	r.exec(`ALTER TABLE sc RENAME COLUMN b TO bb`)
	r.exec(`ALTER TABLE sc RENAME TO sc2`)
	r.query(`SELECT * FROM sc2 ORDER BY a`)
	r.query(`SELECT type, name, tbl_name FROM sqlite_schema WHERE name LIKE 'sc%' ORDER BY name`)
	r.exec(`DROP TRIGGER sc_t`)
	r.exec(`DROP VIEW sc_v`)
	r.exec(`DROP INDEX sc_b`)
	r.exec(`ALTER TABLE sc2 DROP COLUMN c`)
	r.exec(`DROP TABLE sc2`)
	r.exec(`DROP TABLE IF EXISTS sc2`)
	r.query(`SELECT count(*) FROM sqlite_schema WHERE name LIKE 'sc%'`)
	// Temporary objects are refused by hiqlite (documented).
	_, err := r.db.ExecContext(r.ctx, `CREATE TEMP TABLE tmp(x)`)
	if r.hiqlite() {
		if !errors.Is(err, hiqlite.ErrRefused) {
			r.t.Errorf("hiqlite: CREATE TEMP TABLE: %v", err)
		}
	} else if err != nil {
		r.t.Errorf("sqlite: CREATE TEMP TABLE: %v", err)
	} else if _, err := r.db.ExecContext(r.ctx, `DROP TABLE temp.tmp`); err != nil {
		r.t.Errorf("sqlite: DROP TABLE temp.tmp: %v", err)
	}
}
