package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// A sqlCase runs statements on one env and writes what it observes to a
// transcript. The transcript of every hiqlite topology must equal that of
// plain SQLite; a documented difference is written the same on both sides
// (the case checks each side's own behaviour, see README.md).
type sqlCase struct {
	name string
	run  func(r *recorder)
}

// recorder is what a sqlCase works with.
type recorder struct {
	t     *testing.T
	e     *env
	db    *sql.DB
	ctx   context.Context
	mu    sync.Mutex
	lines []string
}

// hiqlite reports whether the case runs on hiqlite (not the reference).
func (r *recorder) hiqlite() bool { return r.e.hiqlite }

// note adds a line to the transcript.
func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// exec runs q and notes its result or error.
func (r *recorder) exec(q string, args ...any) (sql.Result, error) {
	r.t.Helper()
	return r.execOn(r.db, q, args...)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (r *recorder) execOn(db execer, q string, args ...any) (sql.Result, error) {
	r.t.Helper()
	res, err := db.ExecContext(r.ctx, q, args...)
	if err != nil {
		r.note("exec %s: %s", short(q), errText(err))
		return nil, err
	}
	id, err1 := res.LastInsertId()
	n, err2 := res.RowsAffected()
	if err1 != nil || err2 != nil {
		r.note("exec %s: result errors %v %v", short(q), err1, err2)
		return res, nil
	}
	// LastInsertId is meaningful after an INSERT, RowsAffected after a
	// DML statement; otherwise both drivers report what an earlier
	// statement left behind (see README.md), so the transcript leaves
	// them out.
	switch firstKeyword(q) {
	case "INSERT", "REPLACE":
		r.note("exec %s: id=%d rows=%d", short(q), id, n)
	case "UPDATE", "DELETE":
		r.note("exec %s: rows=%d", short(q), n)
	default:
		r.note("exec %s: ok", short(q))
	}
	return res, nil
}

// firstKeyword is the upper-cased first word of q.
func firstKeyword(q string) string {
	f := strings.Fields(q)
	if len(f) == 0 {
		return ""
	}
	return strings.ToUpper(strings.TrimRight(f[0], ";"))
}

// mustExec runs q, which must succeed, and notes its result.
func (r *recorder) mustExec(q string, args ...any) sql.Result {
	r.t.Helper()
	res, err := r.exec(q, args...)
	if err != nil {
		r.t.Fatalf("%s: exec %s: %v", r.e.name, short(q), err)
	}
	return res
}

// query runs q and notes every row (each value with its Go type) or the
// error.
func (r *recorder) query(q string, args ...any) {
	r.t.Helper()
	r.queryOn(r.db, q, args...)
}

func (r *recorder) queryOn(db queryer, q string, args ...any) {
	r.t.Helper()
	rows, err := db.QueryContext(r.ctx, q, args...)
	if err != nil {
		r.note("query %s: %s", short(q), errText(err))
		return
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	r.note("query %s: columns %q", short(q), cols)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			r.note("  scan: %s", errText(err))
			return
		}
		var b bytes.Buffer
		for _, v := range vals {
			writeValue(&b, v)
		}
		r.note("  %s", b.String())
	}
	if err := rows.Err(); err != nil {
		r.note("  err: %s", errText(err))
	}
}

// errText renders an error with its SQLite codes, when it has them.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	var serr *sqlite3.Error
	if errors.As(err, &serr) {
		return fmt.Sprintf("error(%d/%d %s): %v", serr.Code(), serr.ExtendedCode(), serr.ExtendedCode(), err)
	}
	var code sqlite3.ErrorCode
	if errors.As(err, &code) {
		return fmt.Sprintf("error(%d %s): %v", code, code, err)
	}
	return fmt.Sprintf("error: %v", err)
}

// codeText renders only an error's SQLite codes (or "ok"), for errors
// whose message is a documented difference: the primary code, and the
// extended one where it says more.
func codeText(err error) string {
	if err == nil {
		return "ok"
	}
	var code sqlite3.ErrorCode
	var ext sqlite3.ExtendedErrorCode
	var serr *sqlite3.Error
	switch {
	case errors.As(err, &serr):
		code, ext = serr.Code(), serr.ExtendedCode()
	case errors.As(err, &ext):
		code = ext.Code()
	case errors.As(err, &code):
		ext = sqlite3.ExtendedErrorCode(code)
	default:
		return "error"
	}
	if sqlite3.ExtendedErrorCode(code) == ext {
		return fmt.Sprintf("error(%d)", code)
	}
	return fmt.Sprintf("error(%d/%d)", code, ext)
}

func short(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 120 {
		return q[:120] + "..."
	}
	return q
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b))[:16] }

// transcripts caches the reference's transcript of each case, so that it
// runs once however many topologies compare with it.
type transcripts struct {
	mu   sync.Mutex
	ref  *env
	done map[string][]string
}

// of runs c on the reference unless it has already, and returns its
// transcript.
func (ts *transcripts) of(t *testing.T, c sqlCase) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if lines, ok := ts.done[c.name]; ok {
		return lines
	}
	lines := runCase(t, ts.ref, c)
	ts.done[c.name] = lines
	return lines
}

// runCase runs c on e and returns its transcript.
func runCase(t *testing.T, e *env, c sqlCase) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*readyTimeout)
	defer cancel()
	r := &recorder{t: t, e: e, db: e.db, ctx: ctx}
	c.run(r)
	return r.lines
}

// compareTranscripts fails t at the first few lines where got differs
// from want.
func compareTranscripts(t *testing.T, name string, got, want []string) {
	t.Helper()
	diffs := 0
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s differs from plain SQLite at line %d:\n  hiqlite: %s\n  sqlite:  %s", name, i+1, g, w)
			if diffs++; diffs == 5 {
				return
			}
		}
	}
}
