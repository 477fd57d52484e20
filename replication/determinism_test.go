package replication

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// The fixed command of these tests: 17:09:26.535999999 at UTC+2 is
// 15:09:26.535 UTC once truncated to milliseconds.
var (
	detTime = time.Date(2021, 3, 14, 17, 9, 26, 535_999_999, time.FixedZone("UTC+2", 2*3600))
	detText = "2021-03-14 15:09:26.535" // detTime as an explicit SQLite time value
)

const detSeed = 0x5eed

// detNode is a writer with the replacements installed, its reference
// connection and its Env.
type detNode struct {
	w, ref *sqlite3.Conn
	env    *Env
}

// detOpen opens a writer on path (":memory:" or a file) with the
// deterministic functions installed and the Env reset to (detTime, seed).
func detOpen(t *testing.T, path string, seed uint64) *detNode {
	t.Helper()
	w, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := sqlite3.Open(":memory:")
	if err != nil {
		w.Close()
		t.Fatal(err)
	}
	n := &detNode{w: w, ref: ref, env: newEnv()}
	t.Cleanup(func() {
		if err := n.env.Close(); err != nil {
			t.Error(err)
		}
		if err := n.ref.Close(); err != nil {
			t.Error(err)
		}
		if err := n.w.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := installDeterministic(w, ref, n.env); err != nil {
		t.Fatal(err)
	}
	n.env.Reset(detTime, seed)
	return n
}

// detPlain opens a connection with SQLite's untouched built-ins.
func detPlain(t *testing.T, path string) *sqlite3.Conn {
	t.Helper()
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// detQuery runs sql with args and returns its rows as int64, float64,
// string, []byte or nil.
func detQuery(c *sqlite3.Conn, sql string, args ...any) ([][]any, error) {
	stmt, _, err := c.Prepare(sql)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	for i, a := range args {
		switch a := a.(type) {
		case int:
			err = stmt.BindInt64(i+1, int64(a))
		case int64:
			err = stmt.BindInt64(i+1, a)
		case float64:
			err = stmt.BindFloat(i+1, a)
		case string:
			err = stmt.BindText(i+1, a)
		case []byte:
			err = stmt.BindBlob(i+1, a)
		case nil:
			err = stmt.BindNull(i + 1)
		default:
			err = fmt.Errorf("detQuery: cannot bind %T", a)
		}
		if err != nil {
			return nil, err
		}
	}
	var rows [][]any
	for stmt.Step() {
		row := make([]any, stmt.ColumnCount())
		for i := range row {
			switch stmt.ColumnType(i) {
			case sqlite3.INTEGER:
				row[i] = stmt.ColumnInt64(i)
			case sqlite3.FLOAT:
				row[i] = stmt.ColumnFloat(i)
			case sqlite3.TEXT:
				row[i] = stmt.ColumnText(i)
			case sqlite3.BLOB:
				row[i] = stmt.ColumnBlob(i, []byte{})
			}
		}
		rows = append(rows, row)
	}
	return rows, stmt.Err()
}

func detMustQuery(t *testing.T, c *sqlite3.Conn, sql string, args ...any) [][]any {
	t.Helper()
	rows, err := detQuery(c, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return rows
}

// detRow runs sql, which must return exactly one row.
func detRow(t *testing.T, c *sqlite3.Conn, sql string, args ...any) []any {
	t.Helper()
	rows := detMustQuery(t, c, sql, args...)
	if len(rows) != 1 {
		t.Fatalf("%s: %d rows, want 1", sql, len(rows))
	}
	return rows[0]
}

// detScript creates a table whose defaults and inserted values use every
// replaced function, 'now' in several spellings, and 20 rows.
const detScript = `
CREATE TABLE t(
	id INTEGER PRIMARY KEY,
	ts DEFAULT CURRENT_TIMESTAMP, d DEFAULT CURRENT_DATE, tm DEFAULT CURRENT_TIME,
	r, b, dt, som, s, f, jd, ue, td, dd, tt
);
INSERT INTO t(r, b, dt, som, s, f, jd, ue, td, dd, tt) VALUES (
	random(), randomblob(16), datetime('now'), datetime('NOW', '+1 day', 'start of month'),
	strftime('%s', 'now'), strftime('%Y-%m-%d %H:%M:%f'), julianday(),
	unixepoch('now', 'subsec'), timediff('now', '2000-01-01'), date(), time()
);
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 19)
INSERT INTO t(r, b, dt, som, s, f, jd, ue, td, dd, tt)
SELECT random(), randomblob(16), datetime('now'), datetime('NOW', '+1 day', 'start of month'),
	strftime('%s', 'now'), strftime('%Y-%m-%d %H:%M:%f'), julianday(),
	unixepoch('now', 'subsec'), timediff('now', '2000-01-01'), date(), time()
FROM c;
`

func TestDeterministicReplicasAgree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := detOpen(t, filepath.Join(dir, "a.db"), detSeed)
	b := detOpen(t, filepath.Join(dir, "b.db"), detSeed)
	c := detOpen(t, ":memory:", detSeed+1)

	if got, want := a.env.Now(), time.Date(2021, 3, 14, 15, 9, 26, 535_000_000, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
	for _, n := range []*detNode{a, b, c} {
		if err := n.w.Exec(detScript); err != nil {
			t.Fatal(err)
		}
	}
	const dump = `SELECT * FROM t ORDER BY id`
	rowsA, rowsB, rowsC := detMustQuery(t, a.w, dump), detMustQuery(t, b.w, dump), detMustQuery(t, c.w, dump)
	if len(rowsA) != 20 {
		t.Fatalf("%d rows, want 20", len(rowsA))
	}
	if !reflect.DeepEqual(rowsA, rowsB) {
		t.Fatalf("replicas differ:\n%v\n%v", rowsA, rowsB)
	}

	// The time values are what the built-ins give for the explicit time.
	plain := detPlain(t, ":memory:")
	want := detRow(t, plain, `SELECT datetime(?1), date(?1), time(?1),
		datetime(?1), datetime(?1, '+1 day', 'start of month'), strftime('%s', ?1),
		strftime('%Y-%m-%d %H:%M:%f', ?1), julianday(?1), unixepoch(?1, 'subsec'),
		timediff(?1, '2000-01-01'), date(?1), time(?1)`, detText)
	// Guard the expectations themselves.
	if want[0] != "2021-03-14 15:09:26" || want[4] != "2021-03-01 00:00:00" || want[5] != "1615734566" ||
		want[6] != "2021-03-14 15:09:26.535" || want[8] != 1615734566.535 || want[9] != "+0021-02-13 15:09:26.535" {
		t.Fatalf("unexpected built-in results: %v", want)
	}
	seenR, seenB := map[any]bool{}, map[string]bool{}
	for _, row := range rowsA {
		got := append(append([]any{}, row[1:4]...), row[6:]...)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("row %v: time values\n got %v\nwant %v", row[0], got, want)
		}
		if _, ok := row[4].(int64); !ok || seenR[row[4]] {
			t.Errorf("row %v: random() = %v, not a fresh integer", row[0], row[4])
		}
		seenR[row[4]] = true
		if blob, ok := row[5].([]byte); !ok || len(blob) != 16 || seenB[string(blob)] {
			t.Errorf("row %v: randomblob(16) = %v, not 16 fresh bytes", row[0], row[5])
		} else {
			seenB[string(blob)] = true
		}
	}

	// Another seed: same times, other randoms.
	for i, row := range rowsC {
		if !reflect.DeepEqual(row[1:4], rowsA[i][1:4]) || !reflect.DeepEqual(row[6:], rowsA[i][6:]) {
			t.Errorf("row %v: time values differ with another seed: %v vs %v", row[0], row, rowsA[i])
		}
		if seenR[row[4]] || seenB[string(row[5].([]byte))] {
			t.Errorf("row %v: seed %d repeats a random value of seed %d", row[0], detSeed+1, detSeed)
		}
	}

	// Reset with the same seed repeats the sequence, on every replica.
	const draw = `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10)
		SELECT random(), randomblob(5) FROM c`
	a.env.Reset(detTime, detSeed)
	first := detMustQuery(t, a.w, draw)
	a.env.Reset(detTime, detSeed)
	again := detMustQuery(t, a.w, draw)
	b.env.Reset(detTime, detSeed)
	other := detMustQuery(t, b.w, draw)
	if !reflect.DeepEqual(first, again) || !reflect.DeepEqual(first, other) {
		t.Errorf("same seed, different draws:\n%v\n%v\n%v", first, again, other)
	}
}

// The PRNG derivation is part of the replication protocol: nodes running
// different builds must draw the same values. These are ChaCha8 outputs for
// the key SHA-256(little-endian 42).
func TestDeterministicRandomGolden(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", 42)
	for _, tc := range []struct {
		sql  string
		want any
	}{
		{`SELECT random()`, int64(9105548737353249941)},
		{`SELECT random()`, int64(3752639848190411463)},
		{`SELECT randomblob(10)`, []byte{0x82, 0x32, 0x58, 0xfb, 0xb9, 0xcf, 0x15, 0xa1, 0xf2, 0x90}},
	} {
		if got := detRow(t, n.w, tc.sql)[0]; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.sql, got, tc.want)
		}
	}
}

// Calls without 'now' give exactly the built-ins' answers, types included.
func TestDeterministicMatchesBuiltins(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	plain := detPlain(t, ":memory:")
	for _, expr := range []string{
		`datetime(1700000000, 'unixepoch')`,
		`datetime(1700000000.5, 'unixepoch', 'subsec')`,
		`datetime(1700000000, 'auto')`,
		`datetime(2460000.5)`,
		`date('2024-02-30')`,
		`date('2024-02-29', '+1 year')`,
		`date('2024-01-31', '+1 month')`,
		`date('2024-01-31', '+1 month', 'floor')`,
		`date('2024-06-15', 'start of month', '+1 month', '-1 day')`,
		`date('2024-01-01', 'weekday 0', '-7 days', 'start of year')`,
		`time('12:34:56.789', '+1 hour', 'subsec')`,
		`time('12:34')`,
		`datetime('2024-01-01 00:00:00+05:30')`,
		`datetime('2024-01-01T10:20:30.456Z', 'subsec')`,
		`datetime('garbage')`,
		`datetime('2024-01-01', 'bogus modifier')`,
		`datetime(NULL)`,
		`datetime('2024-01-01', NULL)`,
		`datetime(' now')`,
		`datetime('now ')`,
		`datetime('nowx')`,
		`strftime('%j', '2024-12-31')`,
		`strftime('%Y-%m-%dT%H:%M:%fZ', 2460000.25)`,
		`strftime('%s', '1970-01-01 00:00:00.999')`,
		`strftime('%W %w %u %G %V', '2024-12-30')`,
		`strftime(NULL, '2024-01-01')`,
		`strftime('%Y', NULL)`,
		`strftime()`,
		`strftime('', '2024-01-01')`,
		`strftime(x'', '2024-01-01')`, // an empty blob is '' here, not NULL
		`julianday('2000-01-01 12:00:00')`,
		`julianday(x'323032342d30312d3031')`,
		`julianday(x'')`,
		`julianday(1e300)`,
		`julianday(-1)`,
		`unixepoch('2024-01-01', 'subsec')`,
		`unixepoch('2024-01-01 00:00:00.250')`,
		`unixepoch(1.5e9, 'auto')`,
		`unixepoch(1e300)`,
		`timediff('2024-03-01', '2024-02-01')`,
		`timediff('2024-02-01', 2451545.0)`,
		`timediff('2024-02-01', NULL)`,
		`date(20240101)`,
		`date('2024-01-01', '+0.5 days', 'utc')`,
		`datetime('2024-03-10 12:00', 'localtime')`,
	} {
		sql := `SELECT ` + expr
		want, wantErr := detQuery(plain, sql)
		got, err := detQuery(n.w, sql)
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v, %v\nwant %#v, %v", expr, got, err, want, wantErr)
		}
	}
}

// Bound arguments keep their SQLite types on the way to the built-in.
func TestDeterministicBoundTypes(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	plain := detPlain(t, ":memory:")
	for _, arg := range []any{
		int64(1700000000), 1700000000.25, 2460000.5, "2024-05-06 07:08:09", "", []byte("2024-05-06"),
		[]byte{}, nil, "NOW", []byte("now"),
	} {
		const sql = `SELECT julianday(?1), datetime(?1, 'unixepoch'), typeof(date(?1)), strftime('%F %T', ?1, '+1 day')`
		want, wantErr := detQuery(plain, sql, arg)
		got, err := detQuery(n.w, sql, arg)
		if s, ok := arg.(string); ok && strings.EqualFold(s, "now") || bytes.EqualFold(asBytes(arg), []byte("now")) {
			// 'now' is the command time: compare with the explicit time.
			want, wantErr = detQuery(plain, sql, detText)
		}
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%#v:\n got %#v, %v\nwant %#v, %v", arg, got, err, want, wantErr)
		}
	}
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// 'now' is recognised where and as SQLite recognises it.
func TestDeterministicNowMatching(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	for _, tc := range []struct {
		expr string
		want any
	}{
		{`datetime('now')`, "2021-03-14 15:09:26"},
		{`datetime('NoW')`, "2021-03-14 15:09:26"},
		{`datetime(x'6e6f77')`, "2021-03-14 15:09:26"},                  // a blob is read as text
		{`datetime('now' || char(0) || 'junk')`, "2021-03-14 15:09:26"}, // up to the NUL
		{`datetime(' now')`, nil},
		{`datetime('now', 'now')`, nil}, // a modifier, not a time value
		{`current_timestamp`, "2021-03-14 15:09:26"},
		{`current_date`, "2021-03-14"},
		{`current_time`, "15:09:26"},
		{`strftime('now')`, "now"}, // the format, timed at 'now'
		{`strftime('%H:%M:%f')`, "15:09:26.535"},
		{`strftime('%Y', 'now')`, "2021"},
		{`strftime()`, nil},
		{`timediff('now', 'NOW')`, "+0000-00-00 00:00:00.000"},
		{`timediff('2021-03-14', 'now')`, "-0000-00-00 15:09:26.535"},
		{`unixepoch()`, int64(1615734566)},
		{`unixepoch('now', 'subsec')`, 1615734566.535},
		{`datetime('now', 'utc')`, "2021-03-14 15:09:26"}, // 'now' is UTC already
		{`time('now', '+1 hour', 'subsec')`, "16:09:26.535"},
	} {
		if got := detRow(t, n.w, `SELECT `+tc.expr)[0]; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
		}
	}
}

// detSubstitutionExprs put 'now' through every kind of modifier.
var detSubstitutionExprs = []string{
	`datetime(%s)`, `datetime(%s, 'subsec')`, `datetime(%s, 'utc')`, `datetime(%s, 'localtime')`,
	`datetime(%s, 'localtime', 'utc')`, `datetime(%s, 'utc', 'localtime')`,
	`datetime(%s, '+1 month', 'start of month', 'weekday 3', 'subsec')`,
	`datetime(%s, 'unixepoch')`, `datetime(%s, 'auto')`, `datetime(%s, 'julianday')`,
	`datetime(%s, 'ceiling')`, `datetime(%s, '-3 years', 'floor')`,
	`date(%s, 'start of year', '+59 days')`, `time(%s, 'subsec')`, `julianday(%s)`,
	`julianday(%s, 'localtime')`, `unixepoch(%s)`, `unixepoch(%s, 'subsec')`, `unixepoch(%s, 'utc')`,
	`strftime('%%Y-%%m-%%d %%H:%%M:%%f %%s %%J %%j %%w', %s)`, `strftime('%%T', %s, 'localtime')`,
	`timediff(%s, '2000-01-01')`, `timediff('2000-01-01 00:00:00Z', %s)`,
}

// detCheckSubstitution shows, with SQLite's own 'now' on a plain
// connection, that replacing 'now' by its text in detNowLayout changes
// nothing under any modifier: within one statement SQLite's 'now' is fixed.
func detCheckSubstitution(t *testing.T, plain *sqlite3.Conn) {
	t.Helper()
	const nowText = `strftime('%Y-%m-%d %H:%M:%fZ', 'now')` // SQLite's spelling of detNowLayout
	for _, f := range detSubstitutionExprs {
		sql := fmt.Sprintf(`SELECT `+f+`, `+f, `'now'`, nowText)
		row := detRow(t, plain, sql)
		if !reflect.DeepEqual(row[0], row[1]) {
			t.Errorf("%s: 'now' gives %#v, its text %#v", sql, row[0], row[1])
		}
	}
	// Env spells the time exactly as SQLite does.
	env := newEnv()
	env.Reset(detTime, 0)
	if want := detRow(t, plain, `SELECT strftime('%Y-%m-%d %H:%M:%fZ', ?)`, detText)[0]; env.nowText != want {
		t.Errorf("Env time text %q, SQLite's %q", env.nowText, want)
	}
}

const detChildEnv = "HIQLITE_DETERMINISM_TEST_CHILD"

// The substitution must hold in any time zone: SQLite's 'now' is UTC, so
// the 'utc' modifier leaves it alone, while a time text without Z is read
// as local time. The time-zone half runs in a child process, the only place
// where changing time.Local cannot race with other tests.
func TestDeterministicNowSubstitution(t *testing.T) {
	if os.Getenv(detChildEnv) != "" {
		// SQLite's localtime uses time.Local when it is called.
		time.Local = time.FixedZone("UTC-5", -5*3600)
		plain := detPlain(t, ":memory:")
		if got := detRow(t, plain, `SELECT datetime('2024-01-01 12:00', 'localtime')`)[0]; got != "2024-01-01 07:00:00" {
			t.Fatalf("time zone not in effect: localtime gives %v", got)
		}
		detCheckSubstitution(t, plain)
		n := detOpen(t, ":memory:", detSeed)
		got := detRow(t, n.w, `SELECT datetime('now', 'utc'), datetime('now', 'localtime'), datetime('now', 'localtime', 'utc')`)
		if want := []any{"2021-03-14 15:09:26", "2021-03-14 10:09:26", "2021-03-14 15:09:26"}; !reflect.DeepEqual(got, want) {
			t.Errorf("command 'now' with zone modifiers at UTC-5: got %v, want %v", got, want)
		}
		return
	}
	t.Parallel()
	detCheckSubstitution(t, detPlain(t, ":memory:"))

	cmd := exec.Command(os.Args[0], "-test.run=^TestDeterministicNowSubstitution$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), detChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestDeterministicNowSubstitution")) {
		t.Fatalf("child at UTC-5: %v\n%s", err, out)
	}
}

// Expression indexes, generated columns and CHECK constraints keep working
// with the replacements, and a plain connection agrees with what the writer
// stored.
func TestDeterministicSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "schema.db")
	n := detOpen(t, path, detSeed)
	err := n.w.Exec(`
		CREATE TABLE e(
			id INTEGER PRIMARY KEY,
			c TEXT CHECK (julianday(c) IS NOT NULL),
			g AS (datetime(c, '+1 hour')),
			s AS (date(c)) STORED,
			u AS (unixepoch(c, 'subsec')) STORED,
			ts DEFAULT CURRENT_TIMESTAMP
		);
		CREATE INDEX e_day ON e(date(c));
		CREATE INDEX e_fmt ON e(strftime('%Y-%W', c), timediff(c, '2024-01-01'));
		INSERT INTO e(c) VALUES ('2024-01-01 10:00'), ('2024-01-02 23:59:59.5'), ('2024-01-02 00:00');`)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.w.Exec(`INSERT INTO e(c) VALUES ('not a date')`); !errors.Is(err, sqlite3.CONSTRAINT) {
		t.Errorf("CHECK with julianday: got %v, want a constraint error", err)
	}
	const q = `SELECT id FROM e WHERE date(c) = '2024-01-02' ORDER BY id`
	if got := detMustQuery(t, n.w, q); !reflect.DeepEqual(got, [][]any{{int64(2)}, {int64(3)}}) {
		t.Errorf("%s: %v", q, got)
	}
	plan := fmt.Sprint(detMustQuery(t, n.w, `EXPLAIN QUERY PLAN `+q))
	if !strings.Contains(plan, "e_day") {
		t.Errorf("the expression index is not used: %s", plan)
	}

	// A plain connection recomputes the indexes and generated columns with
	// the built-ins and finds the same values.
	plain := detPlain(t, path)
	if got := detRow(t, plain, `PRAGMA integrity_check`)[0]; got != "ok" {
		t.Errorf("integrity_check on a plain connection: %v", got)
	}
	const dump = `SELECT id, c, g, s, u, ts FROM e ORDER BY id`
	got, want := detMustQuery(t, n.w, dump), detMustQuery(t, plain, dump)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writer and plain connection differ:\n%v\n%v", got, want)
	}
	if want := []any{int64(2), "2024-01-02 23:59:59.5", "2024-01-03 00:59:59", "2024-01-02", 1704239999.5, "2021-03-14 15:09:26"}; !reflect.DeepEqual(got[1], want) {
		t.Errorf("row 2 = %v, want %v", got[1], want)
	}

	// As with the built-ins, current_* and random() are refused where a
	// deterministic function is required.
	for _, ddl := range []string{
		`CREATE INDEX e_now ON e(current_date)`,
		`CREATE TABLE x(a, b AS (current_timestamp))`,
		`CREATE INDEX e_rnd ON e(random())`,
		`CREATE TABLE y(a, b AS (randomblob(4)))`,
	} {
		wantErr := detPlain(t, ":memory:").Exec(`CREATE TABLE e(c); ` + ddl)
		if err := n.w.Exec(ddl); err == nil || wantErr == nil {
			t.Errorf("%s: writer %v, built-ins %v; want both refused", ddl, err, wantErr)
		}
	}
}

// A statement prepared once sees the time and seed of each command it is
// executed in, as the state machine's statement cache requires: SQLite
// factors deterministic calls out per execution, not per prepare.
func TestDeterministicStatementReuse(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	stmt, _, err := n.w.Prepare(`SELECT datetime('now'), current_timestamp, unixepoch(), random()`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	run := func(now time.Time, seed uint64) []any {
		t.Helper()
		n.env.Reset(now, seed)
		defer stmt.Reset()
		if !stmt.Step() {
			t.Fatal(stmt.Err())
		}
		return []any{stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnInt64(2), stmt.ColumnInt64(3)}
	}
	t2 := time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)
	r1, r2, r3 := run(detTime, 1), run(t2, 2), run(detTime, 1)
	if want := []any{"1999-12-31 23:59:59", "1999-12-31 23:59:59", t2.Unix()}; !reflect.DeepEqual(r2[:3], want) {
		t.Errorf("second command: %v, want %v", r2, want)
	}
	if !reflect.DeepEqual(r1, r3) || r1[3] == r2[3] {
		t.Errorf("commands (T1,1), (T2,2), (T1,1) gave %v, %v, %v", r1, r2, r3)
	}
}

// Live mode is SQLite's own behaviour: the real clock and real randomness.
func TestDeterministicLive(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	n.env.Reset(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), detSeed)
	n.env.SetLive(true)

	row := detRow(t, n.w, `SELECT datetime('now'), current_timestamp, date(),
		unixepoch('now', 'subsec'), CAST(strftime('%s') AS INTEGER)`)
	now := time.Now()
	var times [5]time.Time
	for i, layout := range []string{time.DateTime, time.DateTime, time.DateOnly} {
		ts, err := time.Parse(layout, row[i].(string))
		if err != nil {
			t.Fatalf("column %d: %v", i, err)
		}
		times[i] = ts
	}
	times[3] = time.UnixMilli(int64(math.Round(row[3].(float64) * 1000)))
	times[4] = time.Unix(row[4].(int64), 0)
	for i, ts := range times {
		tolerance := 10 * time.Second
		if i == 2 { // a date
			tolerance = 24 * time.Hour
		}
		if d := now.Sub(ts); d < -tolerance || d > tolerance {
			t.Errorf("column %d = %v in live mode, %v from the real clock", i, row[i], d)
		}
	}

	for _, sql := range []string{`SELECT random(), random()`, `SELECT randomblob(8), randomblob(8)`} {
		row := detRow(t, n.w, sql)
		if reflect.DeepEqual(row[0], row[1]) {
			t.Errorf("%s: the same value twice in live mode: %v", sql, row)
		}
	}
	// Live randomness does not consume the command's PRNG.
	n.env.SetLive(false)
	got := detRow(t, n.w, `SELECT datetime('now'), random()`)
	n.env.Reset(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), detSeed)
	want := detRow(t, n.w, `SELECT datetime('now'), random()`)
	if !reflect.DeepEqual(got, want) || got[0] != "2001-02-03 04:05:06" {
		t.Errorf("back in command mode: %v, want %v", got, want)
	}
}

func TestDeterministicRandomEdges(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	plain := detPlain(t, ":memory:")

	// N is read as an integer, and at least one byte is returned.
	const lengths = `SELECT length(randomblob(0)), length(randomblob(-5)), length(randomblob(NULL)),
		length(randomblob('3')), length(randomblob(2.9)), length(randomblob('x')), length(randomblob(x'')),
		typeof(randomblob(0)), length(randomblob(1000))`
	want := detRow(t, plain, lengths)
	if got := detRow(t, n.w, lengths); !reflect.DeepEqual(got, want) {
		t.Errorf("randomblob lengths %v, built-in %v", got, want)
	}
	if want := []any{int64(1), int64(1), int64(1), int64(3), int64(2), int64(1), int64(1), "blob", int64(1000)}; !reflect.DeepEqual(detRow(t, n.w, lengths), want) {
		t.Errorf("randomblob lengths, want %v", want)
	}

	// Above the length limit: "string or blob too big", as the built-in.
	n.w.Limit(sqlite3.LIMIT_LENGTH, 1000)
	plain.Limit(sqlite3.LIMIT_LENGTH, 1000)
	for _, c := range []*sqlite3.Conn{n.w, plain} {
		if _, err := detQuery(c, `SELECT randomblob(1001)`); !errors.Is(err, sqlite3.TOOBIG) {
			t.Errorf("randomblob(1001) above the limit: %v", err)
		}
	}

	rows := detMustQuery(t, n.w, `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 2000)
		SELECT random() FROM c`)
	seen := map[int64]bool{}
	var neg, pos int
	for _, row := range rows {
		r := row[0].(int64)
		switch {
		case r == math.MinInt64:
			t.Fatal("random() returned math.MinInt64")
		case r < 0:
			neg++
		case r > 0:
			pos++
		}
		seen[r] = true
	}
	if len(seen) != len(rows) || neg < 800 || pos < 800 {
		t.Errorf("random() over %d draws: %d distinct, %d negative, %d positive", len(rows), len(seen), neg, pos)
	}
}

// Errors of the built-in on the reference connection are the function's
// errors on the writer.
func TestDeterministicRefErrors(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	n.ref.Limit(sqlite3.LIMIT_LENGTH, 100)
	_, err := detQuery(n.w, `SELECT strftime(?, '2024-01-01')`, strings.Repeat("%Y", 100))
	if !errors.Is(err, sqlite3.TOOBIG) {
		t.Errorf("too big on the reference connection: %v", err)
	}
	n.ref.Limit(sqlite3.LIMIT_FUNCTION_ARG, 2)
	_, err = detQuery(n.w, `SELECT datetime('2024-01-01', '+1 day', '+1 day')`)
	if !errors.Is(err, sqlite3.ERROR) || !strings.Contains(err.Error(), "too many arguments") {
		t.Errorf("too many arguments on the reference connection: %v", err)
	}
}

func TestDeterministicInstallAndClose(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", detSeed)
	other := detPlain(t, ":memory:")
	if err := installDeterministic(n.w, other, n.env); err == nil {
		t.Error("an Env accepted a second reference connection")
	}
	if err := installDeterministic(n.w, n.w, newEnv()); err == nil {
		t.Error("the writer was accepted as its own reference connection")
	}
	if err := installDeterministic(nil, other, newEnv()); err == nil {
		t.Error("a nil writer was accepted")
	}

	detRow(t, n.w, `SELECT datetime('now', '+1 day'), date()`) // caches statements on ref
	if err := n.ref.Close(); !errors.Is(err, sqlite3.BUSY) {
		t.Errorf("closing ref before Env.Close: %v, want BUSY (live statements)", err)
	}
	if err := n.env.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := detQuery(n.w, `SELECT date()`); err == nil || !strings.Contains(err.Error(), errEnvClosed.Error()) {
		t.Errorf("after Env.Close: %v", err)
	}
	if _, err := detQuery(n.w, `SELECT random()`); err == nil {
		t.Error("random() after Env.Close succeeded")
	}
	if err := n.env.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// detOpen's cleanup closes ref, now without live statements.
}

// BenchmarkDeterministic measures the cost of a replaced call (one
// evaluation on the reference connection) against the built-in.
func BenchmarkDeterministic(b *testing.B) {
	for _, bc := range []struct{ name, expr string }{
		{"datetime", `datetime('now', '+1 day')`},
		{"current_timestamp", `current_timestamp`},
		{"random", `random()`},
	} {
		for _, replaced := range []bool{false, true} {
			name := bc.name + "/builtin"
			if replaced {
				name = bc.name + "/replaced"
			}
			b.Run(name, func(b *testing.B) {
				c, err := sqlite3.Open(":memory:")
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				if replaced {
					ref, err := sqlite3.Open(":memory:")
					if err != nil {
						b.Fatal(err)
					}
					defer ref.Close()
					env := newEnv()
					defer env.Close()
					if err := installDeterministic(c, ref, env); err != nil {
						b.Fatal(err)
					}
				}
				stmt, _, err := c.Prepare(`SELECT ` + bc.expr) // one call per execution
				if err != nil {
					b.Fatal(err)
				}
				defer stmt.Close()
				for b.Loop() {
					if !stmt.Step() {
						b.Fatal(stmt.Err())
					}
					stmt.Reset()
				}
			})
		}
	}
}
