package conformance

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// The sqllogictest corpus (select1-5 and evidence/ of SQLite's
// sqllogictest) is in the repository's testdata/sqllogictest. Set
// HIQLITE_SQLLOGICTEST to run another copy.
const defaultSLTDir = "../testdata/sqllogictest"

// sltEngineName is the engine that skipif/onlyif lines name for us: both
// sides are SQLite.
const sltEngineName = "sqlite"

// sltDocumented are the records where hiqlite differs from SQLite on
// purpose, by file and line, with the reason (README.md lists them).
var sltDocumented = map[string]string{
	"slt_lang_createview.test:47":  "CREATE TEMP VIEW is refused: temporary objects would live on the shared writer",
	"slt_lang_createview.test:51":  "CREATE TEMPORARY VIEW is refused: temporary objects would live on the shared writer",
	"slt_lang_createview.test:114": "DROP VIEW of the temporary view hiqlite refused to create",
	"slt_lang_createview.test:118": "DROP VIEW of the temporary view hiqlite refused to create",
}

// sltRecordTimeout bounds one record on one engine.
const sltRecordTimeout = 2 * time.Minute

func sltDir(t *testing.T) string {
	dir := os.Getenv("HIQLITE_SQLLOGICTEST")
	if dir == "" {
		dir = defaultSLTDir
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("no sqllogictest corpus at %s (HIQLITE_SQLLOGICTEST names another copy): %v", dir, err)
	}
	return dir
}

// sltFiles lists the corpus's scripts in a fixed order.
func sltFiles(t *testing.T, dir string) []string {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".test") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatalf("no .test files under %s", dir)
	}
	return files
}

// TestSQLLogic runs the sqllogictest corpus on plain SQLite and on a
// follower of a three-node cluster, record by record: each engine's
// results must match the script, and hiqlite's must equal SQLite's
// (results, or the error code of a failing statement). Every node's tables
// are compared after each file.
func TestSQLLogic(t *testing.T) {
	dir := sltDir(t)
	files := sltFiles(t, dir)
	cluster := openCluster(t, 3, false)
	hq := &sltEngine{name: "hiqlite follower", db: cluster.db, f: newSLTFormatter(t)}
	var total [2]sltCounts
	for _, path := range files {
		name, _ := filepath.Rel(dir, path)
		t.Run(name, func(t *testing.T) {
			ref := &sltEngine{name: "sqlite", db: openReference(t).db, f: newSLTFormatter(t)}
			counts := runSLTFile(t, path, []*sltEngine{ref, hq})
			cluster.sameTables(t)
			dropAll(t, cluster.db)
			for i := range counts {
				t.Logf("%s: %s", []string{"sqlite", "hiqlite"}[i], counts[i])
				total[i].add(counts[i])
			}
		})
	}
	t.Logf("sqllogictest, %d files: sqlite %s", len(files), total[0])
	t.Logf("sqllogictest, %d files: hiqlite (follower of 3) %s", len(files), total[1])
}

// sltCounts counts the records of a run on one engine.
type sltCounts struct {
	records, statements, queries, passed, failed, skipped, differ, documented int
}

func (c *sltCounts) add(o sltCounts) {
	c.records += o.records
	c.statements += o.statements
	c.queries += o.queries
	c.passed += o.passed
	c.failed += o.failed
	c.skipped += o.skipped
	c.differ += o.differ
	c.documented += o.documented
}

func (c sltCounts) String() string {
	return fmt.Sprintf("%d records run (%d statements, %d queries): %d passed, %d failed, %d differ from SQLite, %d documented differences; %d skipped by skipif/onlyif",
		c.records, c.statements, c.queries, c.passed, c.failed, c.differ, c.documented, c.skipped)
}

// runSLTFile runs one script on every engine, the reference first,
// reports its first failures on t and returns each engine's counts.
func runSLTFile(t *testing.T, path string, engines []*sltEngine) []sltCounts {
	t.Helper()
	reported := 0
	counts, err := runSLT(path, engines, func(msg string) {
		if reported++; reported <= 20 {
			t.Error(msg)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if reported > 20 {
		t.Errorf("%d more failures not shown", reported-20)
	}
	return counts
}

// runSLTCollect runs one script on one engine and returns the messages it
// would report.
func runSLTCollect(t *testing.T, path string, e *sltEngine) ([]sltCounts, []string) {
	t.Helper()
	var msgs []string
	counts, err := runSLT(path, []*sltEngine{e}, func(msg string) { msgs = append(msgs, msg) })
	if err != nil {
		t.Fatal(err)
	}
	return counts, msgs
}

// runSLT runs one script on every engine, the reference first: each
// engine must give the script's results, and every engine after the first
// the same outcome as the first. report receives each failure.
func runSLT(path string, engines []*sltEngine, report func(string)) ([]sltCounts, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	recs, err := parseSLT(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	counts := make([]sltCounts, len(engines))
	labels := make([]map[string]string, len(engines))
	for i := range labels {
		labels[i] = map[string]string{}
	}
	threshold := 0
	reportf := func(format string, args ...any) { report(fmt.Sprintf(format, args...)) }
	for _, rec := range recs {
		where := fmt.Sprintf("%s:%d", filepath.Base(path), rec.line)
		switch rec.kind {
		case sltHashThreshold:
			threshold = rec.threshold
			continue
		case sltHalt:
			if rec.applies(sltEngineName) {
				return counts, nil
			}
			continue
		}
		if !rec.applies(sltEngineName) {
			for i := range counts {
				counts[i].skipped++
			}
			continue
		}
		var outcomes []string
		for i, e := range engines {
			c := &counts[i]
			c.records++
			var got string
			var ok bool
			if rec.kind == sltStatement {
				c.statements++
				got, ok = e.statement(rec)
			} else {
				c.queries++
				got, ok = e.query(rec, threshold, labels[i])
			}
			outcomes = append(outcomes, got)
			if why, documented := sltDocumented[where]; documented && i > 0 {
				if ok || got == outcomes[0] {
					reportf("%s on %s: passes, but is listed as a documented difference (%s)", where, e.name, why)
				}
				c.documented++
				continue
			}
			if ok {
				c.passed++
			} else {
				c.failed++
				reportf("%s on %s: %s\n%s", where, e.name, got, rec.sql)
			}
			if i > 0 && got != outcomes[0] {
				c.differ++
				reportf("%s: %s differs from %s:\n  %s: %s\n  %s: %s\n%s", where, e.name, engines[0].name, e.name, got, engines[0].name, outcomes[0], rec.sql)
			}
		}
	}
	return counts, nil
}

// sltEngine runs records on one *sql.DB.
type sltEngine struct {
	name string
	db   *sql.DB
	f    *sltFormatter
}

// statement runs a statement record and says what happened and whether
// the script expected it.
func (e *sltEngine) statement(rec sltRecord) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), sltRecordTimeout)
	defer cancel()
	_, err := e.db.ExecContext(ctx, rec.sql)
	if err != nil {
		return "error " + codeText(err), rec.wantError
	}
	return "ok", !rec.wantError
}

// query runs a query record, formats, sorts and (past the threshold)
// hashes its values as the reference runner does, and compares them with
// the script's.
func (e *sltEngine) query(rec sltRecord, threshold int, labels map[string]string) (string, bool) {
	values, stepErr, err := e.values(rec)
	if err != nil {
		return "error " + codeText(err) + ": " + err.Error(), false
	}
	sortValues(values, len(rec.types), rec.sort)
	got := strings.Join(values, " ")
	hash := hashValues(values)
	if threshold > 0 && len(values) > threshold {
		got = fmt.Sprintf("%d values hashing to %s", len(values), hash)
	}
	if stepErr != nil {
		// The reference runner stops at the first step that does not
		// return a row and ignores why (sum() overflowing, say); the
		// error stays in the outcome that the engines compare.
		got += " (then " + codeText(stepErr) + ")"
	}
	if rec.label != "" {
		if prev, ok := labels[rec.label]; ok && prev != hash {
			return got + " (differs from the results labelled " + rec.label + ")", false
		}
		labels[rec.label] = hash
	}
	switch {
	case rec.unchecked:
		return got, true
	case rec.hashed:
		return got, len(values) == rec.hashCount && hash == rec.hash
	default:
		return got, slices.Equal(values, rec.values)
	}
}

// values runs the query and formats every value by its column's type. An
// error that ends the rows early is stepErr; err is one that gave none.
func (e *sltEngine) values(rec sltRecord) (values []string, stepErr, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), sltRecordTimeout)
	defer cancel()
	rows, err := e.db.QueryContext(ctx, rec.sql)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	if len(cols) != len(rec.types) {
		return nil, nil, fmt.Errorf("%d columns, but the record's types are %q", len(cols), rec.types)
	}
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		for i, v := range raw {
			s, err := e.f.format(v, rec.types[i])
			if err != nil {
				return nil, nil, err
			}
			values = append(values, s)
		}
	}
	return values, rows.Err(), nil
}

// sltFormatter formats values as the reference runner's SQLite engine
// does: sqlite3_column_int truncated to 32 bits for I, "%.3f" of
// sqlite3_column_double for R, sqlite3_column_text for T with "(empty)"
// for an empty string and "@" for each byte outside ' '..'~'; NULL is
// "NULL". Conversions between storage classes are SQLite's own: the value
// is bound to a statement of a private in-memory connection and read back
// with the same column functions.
type sltFormatter struct {
	conn   *sqlite3.Conn
	echo   *sqlite3.Stmt // SELECT ?1
	printf *sqlite3.Stmt // SELECT printf('%.3f', ?1)
}

func newSLTFormatter(t *testing.T) *sltFormatter {
	t.Helper()
	c, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	f := &sltFormatter{conn: c}
	if f.echo, _, err = c.Prepare(`SELECT ?1`); err != nil {
		t.Fatal(err)
	}
	if f.printf, _, err = c.Prepare(`SELECT printf('%.3f', ?1)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.echo.Close()
		f.printf.Close()
		c.Close()
	})
	return f
}

func (f *sltFormatter) format(v any, typ byte) (string, error) {
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case bool: // a BOOLEAN column, decoded by the driver
		v = int64(0)
		if x {
			v = int64(1)
		}
	case time.Time:
		return "", fmt.Errorf("the driver decoded a value as time.Time: %v", x)
	}
	// The common cases need no conversion.
	switch x := v.(type) {
	case int64:
		if typ == 'I' {
			return strconv.FormatInt(int64(int32(x)), 10), nil
		}
	case string:
		if typ == 'T' {
			return printable(x), nil
		}
	}
	if err := bindValue(f.echo, v); err != nil {
		return "", err
	}
	defer f.echo.Reset()
	if !f.echo.Step() {
		return "", fmt.Errorf("formatter: %w", f.echo.Err())
	}
	switch typ {
	case 'I':
		return strconv.FormatInt(int64(int32(f.echo.ColumnInt64(0))), 10), nil
	case 'R':
		d := f.echo.ColumnFloat(0)
		defer f.printf.Reset()
		if err := f.printf.BindFloat(1, d); err != nil {
			return "", err
		}
		if !f.printf.Step() {
			return "", fmt.Errorf("formatter: %w", f.printf.Err())
		}
		return f.printf.ColumnText(0), nil
	default:
		return printable(f.echo.ColumnText(0)), nil
	}
}

func bindValue(s *sqlite3.Stmt, v any) error {
	switch x := v.(type) {
	case int64:
		return s.BindInt64(1, x)
	case float64:
		return s.BindFloat(1, x)
	case string:
		return s.BindText(1, x)
	case []byte:
		return s.BindBlob(1, x)
	}
	return fmt.Errorf("formatter: unexpected value %T", v)
}

// printable renders text as the reference runner does.
func printable(s string) string {
	if s == "" {
		return "(empty)"
	}
	b := []byte(s)
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '@'
		}
	}
	return string(b)
}

// dropAll drops every view and table of db (indexes and triggers go with
// them) but hiqlite's own, so that the next script starts afresh.
func dropAll(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT type, name FROM sqlite_schema
		WHERE type IN ('view', 'table') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_hiqlite\_%' ESCAPE '\'
		ORDER BY type = 'table', name`)
	if err != nil {
		t.Fatal(err)
	}
	var drops []string
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			t.Fatal(err)
		}
		drops = append(drops, fmt.Sprintf(`DROP %s "%s"`, strings.ToUpper(typ), strings.ReplaceAll(name, `"`, `""`)))
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range drops {
		if _, err := db.Exec(d); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
}
