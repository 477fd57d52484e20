package conformance

import (
	"bufio"
	"crypto/md5"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file reads sqllogictest scripts, in the format of SQLite's
// sqllogictest: records separated by blank lines, "#" comments, and
//
//	statement ok | statement error         then the SQL
//	query TYPES SORTMODE [LABEL]           then the SQL, "----" and the results
//	hash-threshold N
//	halt
//
// each optionally preceded by "skipif ENGINE" or "onlyif ENGINE" lines.

// sltKind is what a record does.
type sltKind uint8

const (
	sltStatement sltKind = iota
	sltQuery
	sltHashThreshold
	sltHalt
)

// sltRecord is one record of a script.
type sltRecord struct {
	line  int // where the record starts, for messages
	kind  sltKind
	conds []sltCond
	sql   string

	wantError bool // statement error

	types string // query: one of I, R, T per column
	sort  string // query: nosort, rowsort or valuesort
	label string // query: results must equal other queries' of the label

	// The expected results: the values, one per line, or with hashed set,
	// their count and MD5. Without a "----" line nothing is expected.
	unchecked bool
	values    []string
	hashed    bool
	hashCount int
	hash      string

	threshold int // hash-threshold
}

// sltCond is a skipif or onlyif line.
type sltCond struct {
	only   bool // onlyif, else skipif
	engine string
}

// applies reports whether r runs on the engine named engine.
func (r *sltRecord) applies(engine string) bool {
	for _, c := range r.conds {
		if c.only != (c.engine == engine) {
			return false
		}
	}
	return true
}

var hashLine = regexp.MustCompile(`^(\d+) values hashing to ([0-9a-f]{32})$`)

// parseSLT reads every record of a script.
func parseSLT(r io.Reader) ([]sltRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var recs []sltRecord
	var lines []string
	start, n := 0, 0
	flush := func() error {
		if len(lines) == 0 {
			return nil
		}
		rec, err := parseRecord(start, lines)
		lines = lines[:0]
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		return nil
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case strings.HasPrefix(line, "#") && len(lines) == 0:
			// A comment between records.
		default:
			if len(lines) == 0 {
				start = n
			}
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return recs, nil
}

func parseRecord(start int, lines []string) (sltRecord, error) {
	rec := sltRecord{line: start}
	bad := func(format string, args ...any) (sltRecord, error) {
		return sltRecord{}, fmt.Errorf("line %d: %s", start, fmt.Sprintf(format, args...))
	}
	for len(lines) > 0 {
		f := strings.Fields(lines[0])
		if len(f) < 2 || (f[0] != "skipif" && f[0] != "onlyif") {
			break
		}
		rec.conds = append(rec.conds, sltCond{only: f[0] == "onlyif", engine: f[1]})
		lines = lines[1:]
	}
	if len(lines) == 0 {
		return bad("a condition without a record")
	}
	head := strings.Fields(lines[0])
	body := lines[1:]
	switch head[0] {
	case "statement":
		if len(head) < 2 || (head[1] != "ok" && head[1] != "error") {
			return bad("statement must be ok or error: %q", lines[0])
		}
		rec.kind = sltStatement
		rec.wantError = head[1] == "error"
		rec.sql = strings.Join(body, "\n")
	case "query":
		if len(head) < 2 {
			return bad("query without types: %q", lines[0])
		}
		rec.kind = sltQuery
		rec.types = head[1]
		for _, c := range rec.types {
			if c != 'I' && c != 'R' && c != 'T' {
				return bad("unknown column type %q in %q", c, lines[0])
			}
		}
		rec.sort = "nosort"
		if len(head) > 2 {
			rec.sort = head[2]
		}
		if rec.sort != "nosort" && rec.sort != "rowsort" && rec.sort != "valuesort" {
			return bad("unknown sort mode %q", rec.sort)
		}
		if len(head) > 3 {
			rec.label = head[3]
		}
		sep := slices.Index(body, "----")
		if sep < 0 {
			rec.sql = strings.Join(body, "\n")
			rec.unchecked = true
			break
		}
		rec.sql = strings.Join(body[:sep], "\n")
		results := body[sep+1:]
		if len(results) == 1 {
			if m := hashLine.FindStringSubmatch(results[0]); m != nil {
				rec.hashed = true
				rec.hashCount, _ = strconv.Atoi(m[1])
				rec.hash = m[2]
				break
			}
		}
		for _, l := range results {
			rec.values = append(rec.values, strings.TrimSpace(l))
		}
	case "hash-threshold":
		if len(head) < 2 {
			return bad("hash-threshold without a number")
		}
		v, err := strconv.Atoi(head[1])
		if err != nil {
			return bad("hash-threshold: %v", err)
		}
		rec.kind, rec.threshold = sltHashThreshold, v
	case "halt":
		rec.kind = sltHalt
	default:
		return bad("unknown record %q", lines[0])
	}
	return rec, nil
}

// sortValues orders the formatted values of a query as its sort mode says:
// rowsort sorts rows (comparing value by value, as strcmp does), valuesort
// sorts every value on its own.
func sortValues(values []string, ncol int, mode string) {
	switch mode {
	case "rowsort":
		rows := make([][]string, 0, len(values)/max(ncol, 1))
		for i := 0; i+ncol <= len(values); i += ncol {
			rows = append(rows, slices.Clone(values[i:i+ncol]))
		}
		slices.SortStableFunc(rows, func(a, b []string) int { return slices.Compare(a, b) })
		values = values[:0]
		for _, r := range rows {
			values = append(values, r...)
		}
	case "valuesort":
		slices.Sort(values)
	}
}

// hashValues is the reference runner's MD5: every value followed by a
// newline.
func hashValues(values []string) string {
	h := md5.New()
	for _, v := range values {
		io.WriteString(h, v)
		io.WriteString(h, "\n")
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
