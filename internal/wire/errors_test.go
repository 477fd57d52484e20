package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// sqliteErrs returns real errors from SQLite, by name.
func sqliteErrs(t *testing.T) map[string]error {
	t.Helper()
	conn, err := sqlite3.OpenFlags(":memory:", sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, u UNIQUE, n NOT NULL DEFAULT 0, c CHECK (c > 0))`); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(`INSERT INTO t(u, c) VALUES ('x', 1)`); err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{}
	for name, sql := range map[string]string{
		"unique":        `INSERT INTO t(u, c) VALUES ('x', 1)`,
		"not null":      `INSERT INTO t(n, c) VALUES (NULL, 1)`,
		"check":         `INSERT INTO t(c) VALUES (-1)`,
		"primary key":   `INSERT INTO t(id, c) VALUES (1, 1)`,
		"syntax":        `INSERT INTO t VALUES (`,
		"no such table": `SELECT * FROM nope`,
		"unicode":       `SELECT * FROM "tablé ☃"`,
		"raise":         `SELECT raise(ABORT, 'custom: message')`,
	} {
		err := conn.Exec(sql)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		errs[name] = err
	}
	// Prepare, unlike Exec, records where a syntax error is (Error.SQL).
	if _, _, err := conn.Prepare(`SELECT * FROM t WHERE id = = 1`); err != nil {
		errs["syntax at"] = err
	} else {
		t.Fatal("prepared a syntax error")
	}
	_, err = sqlite3.OpenFlags(filepath.Join(t.TempDir(), "missing", "x.db"), sqlite3.OPEN_READWRITE)
	if err == nil {
		t.Fatal("opening a missing file succeeded")
	}
	errs["cantopen with an OS error"] = err
	return errs
}

// errCases returns every kind of error the codec carries, by name.
func errCases(t *testing.T) map[string]error {
	sq := sqliteErrs(t)
	cases := map[string]error{
		"ErrorCode":              sqlite3.BUSY,
		"ExtendedErrorCode":      sqlite3.BUSY_SNAPSHOT,
		"NOMEM code":             sqlite3.NOMEM,
		"gate busy":              fmt.Errorf("hiqlite: the writer is busy with a transaction: %w", sqlite3.BUSY),
		"aborted by a statement": fmt.Errorf("%w: %w", nodeerr.ErrTxAborted, sq["unique"]),
		"ErrNotLeader":           nodeerr.ErrNotLeader,
		"wrapped ErrNotLeader":   fmt.Errorf("exec: %w", nodeerr.ErrNotLeader),
		"NotLeaderError":         &nodeerr.NotLeaderError{LeaderID: "node-2", LeaderAddr: "10.0.0.2:4001"},
		"NotLeaderError no addr": &nodeerr.NotLeaderError{LeaderID: "node-2"},
		"NotLeaderError no id":   &nodeerr.NotLeaderError{LeaderAddr: "[::1]:4001"},
		"NotLeaderError unknown": &nodeerr.NotLeaderError{},
		"ErrNoLeader":            nodeerr.ErrNoLeader,
		"ErrClosed":              nodeerr.ErrClosed,
		"ErrTxIdle":              nodeerr.ErrTxIdle,
		"ErrTxAborted":           nodeerr.ErrTxAborted,
		"ErrStopped":             fmt.Errorf("%w: apply failed: %w", nodeerr.ErrStopped, sqlite3.IOERR_WRITE),
		"ErrRefused":             nodeerr.ErrRefused,
		"RefusedError":           &replication.RefusedError{SQL: "PRAGMA journal_mode=delete", Reason: "journal_mode is the cluster's"},
		"wrapped RefusedError":   fmt.Errorf("statement 2: %w", &replication.RefusedError{SQL: "ATTACH 'x' AS y", Reason: "ATTACH"}),
		"ErrCorruptCommand":      fmt.Errorf("%w: truncated", replication.ErrCorruptCommand),
		"Canceled":               context.Canceled,
		"DeadlineExceeded":       context.DeadlineExceeded,
		"wrapped deadline":       fmt.Errorf("waiting for apply: %w", context.DeadlineExceeded),
		"generic":                errors.New("something else ☹"),
		"joined":                 errors.Join(nodeerr.ErrClosed, sqlite3.FULL, errors.New("x")),
		"opaque sqlite":          fmt.Errorf("lost: %v", sqlite3.CONSTRAINT),
	}
	for name, err := range sq {
		cases["sqlite "+name] = err
	}
	return cases
}

// targets are what callers match with errors.Is.
var targets = []error{
	nodeerr.ErrNotLeader, nodeerr.ErrNoLeader, nodeerr.ErrClosed, nodeerr.ErrTxIdle,
	nodeerr.ErrTxAborted, nodeerr.ErrStopped, nodeerr.ErrRefused, replication.ErrCorruptCommand,
	context.Canceled, context.DeadlineExceeded,
	sqlite3.BUSY, sqlite3.BUSY_SNAPSHOT, sqlite3.CONSTRAINT, sqlite3.CONSTRAINT_UNIQUE,
	sqlite3.CONSTRAINT_NOTNULL, sqlite3.CONSTRAINT_CHECK, sqlite3.CONSTRAINT_PRIMARYKEY,
	sqlite3.ERROR, sqlite3.CANTOPEN, sqlite3.IOERR, sqlite3.IOERR_WRITE, sqlite3.FULL, sqlite3.NOMEM,
}

// roundTripError sends err in an ErrorResponse and in a Result.
func roundTripError(t *testing.T, err error) (resp, result error) {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range []Message{&ErrorResponse{Err: err}, &ResultResponse{Result: replication.Result{Err: err}}} {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	m1, err1 := ReadMessage(&buf)
	m2, err2 := ReadMessage(&buf)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return m1.(*ErrorResponse).Err, m2.(*ResultResponse).Result.Err
}

func TestErrorRoundTrip(t *testing.T) {
	t.Parallel()
	for name, want := range errCases(t) {
		t.Run(name, func(t *testing.T) {
			resp, res := roundTripError(t, want)
			for _, got := range []error{resp, res} {
				checkSameError(t, got, want)
			}
		})
	}
}

// checkSameError checks that got matches errors.Is and errors.As as want
// does, with the same text.
func checkSameError(t *testing.T, got, want error) {
	t.Helper()
	if got == nil {
		t.Fatal("got nil")
	}
	if got.Error() != want.Error() {
		t.Errorf("Error():\n got %q\nwant %q", got.Error(), want.Error())
	}
	for _, target := range targets {
		if g, w := errors.Is(got, target), errors.Is(want, target); g != w {
			t.Errorf("errors.Is(err, %v): got %v, want %v", target, g, w)
		}
	}
	var gs, ws *sqlite3.Error
	if g, w := errors.As(got, &gs), errors.As(want, &ws); g != w {
		t.Errorf("errors.As(*sqlite3.Error): got %v, want %v", g, w)
	} else if g && (gs.Error() != ws.Error() || gs.ExtendedCode() != ws.ExtendedCode()) {
		t.Errorf("*sqlite3.Error: got %q (%d), want %q (%d)", gs, gs.ExtendedCode(), ws, ws.ExtendedCode())
	}
	var gc, wc sqlite3.ErrorCode
	if g, w := errors.As(got, &gc), errors.As(want, &wc); g != w || gc != wc {
		t.Errorf("errors.As(ErrorCode): got %v %v, want %v %v", g, gc, w, wc)
	}
	var gx, wx sqlite3.ExtendedErrorCode
	if g, w := errors.As(got, &gx), errors.As(want, &wx); g != w || gx != wx {
		t.Errorf("errors.As(ExtendedErrorCode): got %v %v, want %v %v", g, gx, w, wx)
	}
	var gn, wn *nodeerr.NotLeaderError
	if g, w := errors.As(got, &gn), errors.As(want, &wn); g != w || g && *gn != *wn {
		t.Errorf("errors.As(*NotLeaderError): got %v %v, want %v %v", g, gn, w, wn)
	}
	var gr, wr *replication.RefusedError
	if g, w := errors.As(got, &gr), errors.As(want, &wr); g != w || g && *gr != *wr {
		t.Errorf("errors.As(*RefusedError): got %v %v, want %v %v", g, gr, w, wr)
	}
}

// TestErrorIdentity: an error that is exactly a sentinel or a typed error
// arrives as that value, not a wrapper.
func TestErrorIdentity(t *testing.T) {
	t.Parallel()
	for _, want := range []error{nodeerr.ErrNotLeader, nodeerr.ErrNoLeader, nodeerr.ErrClosed, nodeerr.ErrTxIdle, nodeerr.ErrTxAborted,
		nodeerr.ErrStopped, nodeerr.ErrRefused, context.Canceled, context.DeadlineExceeded, sqlite3.BUSY, sqlite3.BUSY_SNAPSHOT,
		nodeerr.ErrLeadershipLost, nodeerr.ErrNotApplied} {
		if got, _ := roundTripError(t, want); got != want {
			t.Errorf("got %#v, want %#v", got, want)
		}
	}
	got, _ := roundTripError(t, &nodeerr.NotLeaderError{LeaderID: "a", LeaderAddr: "b:1"})
	if n, ok := got.(*nodeerr.NotLeaderError); !ok || *n != (nodeerr.NotLeaderError{LeaderID: "a", LeaderAddr: "b:1"}) {
		t.Errorf("got %#v, want a *NotLeaderError", got)
	}
	sq := sqliteErrs(t)
	if got, _ := roundTripError(t, sq["unique"]); reflectType(got) != "*sqlite3.Error" {
		t.Errorf("got %T, want *sqlite3.Error", got)
	}
}

func reflectType(v any) string { return fmt.Sprintf("%T", v) }

// TestSQLiteErrorDetails pins what a rebuilt *sqlite3.Error keeps and loses.
func TestSQLiteErrorDetails(t *testing.T) {
	t.Parallel()
	sq := sqliteErrs(t)

	got, _ := roundTripError(t, sq["unique"])
	if !errors.Is(got, sqlite3.CONSTRAINT) || !errors.Is(got, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("%v does not match CONSTRAINT_UNIQUE", got)
	}
	if got.Error() != "sqlite3: constraint failed: UNIQUE constraint failed: t.u" {
		t.Errorf("got %q", got)
	}

	// The SQL of a syntax error is not carried.
	var want *sqlite3.Error
	errors.As(sq["syntax at"], &want)
	got, _ = roundTripError(t, sq["syntax at"])
	var e *sqlite3.Error
	if !errors.As(got, &e) || e.SQL() != "" || want.SQL() == "" {
		t.Errorf("SQL(): got %q, sender had %q", e.SQL(), want.SQL())
	}

	// The OS error under CANTOPEN keeps its text but does not unwrap.
	if !errors.Is(sq["cantopen with an OS error"], fs.ErrNotExist) {
		t.Skip("this platform's CANTOPEN does not wrap fs.ErrNotExist")
	}
	got, _ = roundTripError(t, sq["cantopen with an OS error"])
	if errors.Is(got, fs.ErrNotExist) {
		t.Error("the OS error unwraps; update the doc of sqliteerr.go")
	}
}

// TestConcurrentRebuild decodes SQLite errors from many goroutines (run with
// -race).
func TestConcurrentRebuild(t *testing.T) {
	t.Parallel()
	frame := encode(t, &ErrorResponse{Err: sqliteErrs(t)["unique"]})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				m, err := ReadMessage(bytes.NewReader(frame))
				if err != nil {
					t.Error(err)
					return
				}
				if !errors.Is(m.(*ErrorResponse).Err, sqlite3.CONSTRAINT_UNIQUE) {
					t.Error("lost the code")
					return
				}
			}
		})
	}
	wg.Wait()
}
