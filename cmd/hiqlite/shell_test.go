package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/waitfor"
	"golang.org/x/term"
)

// TestShellDumpRoundTrip loads .dump's output into plain SQLite and
// compares every user table, value for value and type for type.
func TestShellDumpRoundTrip(t *testing.T) {
	t.Parallel()
	ctx, db, s, out, errOut := newTestShell(t)
	setup := `CREATE TABLE "odd ""name"""(id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT, r REAL, b BLOB, n);
INSERT INTO "odd ""name"""(s, r, b, n) VALUES
  ('it''s', 0.1, x'00ff10', NULL),
  ('two
lines', 1e300, x'', 42),
  ('', -0.0, NULL, 'text'),
  (NULL, 123456789.123456789, zeroblob(3), 1.5);
DELETE FROM "odd ""name""" WHERE s = '';
CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO kv VALUES ('a', 1), ('b', x'ab');
CREATE INDEX kv_v ON kv(v);
CREATE VIEW kv_view AS SELECT k FROM kv;
CREATE TRIGGER kv_ai AFTER INSERT ON kv BEGIN UPDATE kv SET v = v WHERE k = new.k; END;
`
	if _, e, failed := feed(t, ctx, s, out, errOut, setup); failed != 0 {
		t.Fatalf("setup: %s", e)
	}
	var internal int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name LIKE '\_hiqlite%' ESCAPE '\'`).Scan(&internal); err != nil {
		t.Fatal(err)
	}
	dump, e, failed := feed(t, ctx, s, out, errOut, ".dump\n")
	if failed != 0 {
		t.Fatalf(".dump: %s", e)
	}
	if strings.Contains(dump, "_hiqlite") {
		t.Errorf("the dump holds hiqlite's internal tables (%d in the node):\n%s", internal, dump)
	}
	plain, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.ExecContext(ctx, dump); err != nil {
		t.Fatalf("plain SQLite rejects the dump: %v\n%s", err, dump)
	}
	contents := func(db *sql.DB) string {
		t.Helper()
		var b strings.Builder
		for _, q := range []string{
			`SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE '\_hiqlite%' ESCAPE '\' ORDER BY name`,
			`SELECT id, quote(s), quote(r), quote(b), quote(n), typeof(n) FROM "odd ""name""" ORDER BY id`,
			`SELECT quote(k), quote(v) FROM kv ORDER BY k`,
			`SELECT name, seq FROM sqlite_sequence`,
		} {
			rows, err := db.QueryContext(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if _, err := eachRow(rows, func(v []any) error {
				for _, x := range v {
					fmt.Fprintf(&b, "%s|", formatValue(x))
				}
				b.WriteString("\n")
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	if got, want := contents(plain), contents(db); got != want {
		t.Errorf("plain SQLite after the dump:\n%s\nthe node:\n%s\ndump:\n%s", got, want, dump)
	}
}

// TestShellInterrupt cancels a statement that would run for ever through
// the shell's interrupt, as a Ctrl-C does, and checks the shell goes on.
func TestShellInterrupt(t *testing.T) {
	t.Parallel()
	ctx, _, s, _, _ := newTestShell(t)
	pr, pw := io.Pipe()
	type result struct {
		quit   bool
		failed int
		err    error
	}
	done := make(chan result, 1)
	var sout, serr syncBuffer
	s.out, s.errOut = &sout, &serr
	go func() {
		q, f, err := s.run(ctx, newPlainSource(pr, &sout, false), "", false)
		done <- result{q, f, err}
	}()
	if _, err := io.WriteString(pw, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;\n"); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "the endless statement to run", 30*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cancelStmt != nil
	})
	if !s.interrupt() {
		t.Fatal("interrupt found no running statement")
	}
	if _, err := io.WriteString(pw, "SELECT 'after' AS word;\n"); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-done
	if r.err != nil || r.quit || r.failed != 1 {
		t.Errorf("run: quit %v, failed %d, err %v; want the shell to go on with 1 failure", r.quit, r.failed, r.err)
	}
	if !strings.Contains(serr.String(), "interrupted") {
		t.Errorf("errors %q, want the statement reported interrupted", serr.String())
	}
	if got := trimLines(sout.String()); got != "word\n-----\nafter\n(1 row)\n" {
		t.Errorf("output after the interrupt %q", got)
	}
	if s.interrupt() {
		t.Error("interrupt between statements found one running")
	}
}

// TestShellInterruptRead checks that a Ctrl-C during .read stops the whole
// file, not only its running statement.
func TestShellInterruptRead(t *testing.T) {
	t.Parallel()
	ctx, db, s, _, _ := newTestShell(t)
	file := filepath.Join(t.TempDir(), "long.sql")
	text := "CREATE TABLE t(x);\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;\nINSERT INTO t VALUES (1);\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var sout, serr syncBuffer
	s.out, s.errOut = &sout, &serr
	done := make(chan int, 1)
	go func() {
		_, failed, _ := s.run(ctx, newPlainSource(strings.NewReader(".read "+file+"\n.mode list\n.headers off\nSELECT count(*) FROM t;\n"), &sout, false), "", false)
		done <- failed
	}()
	// Once t exists, the file is past its first statement: whether the
	// interrupt comes before or during the endless one, the file stops.
	waitfor.Cond(t, "the file's CREATE TABLE", 30*time.Second, func() bool {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 't'`).Scan(&n)
		return err == nil && n == 1
	})
	if !s.interrupt() {
		t.Fatal("interrupt found no .read running")
	}
	if failed := <-done; failed != 1 {
		t.Errorf("failed %d, want 1 (the .read)", failed)
	}
	if got := sout.String(); got != "0\n" {
		t.Errorf("rows of t after the interrupted .read: %q, want the INSERT after the interrupt not run", got)
	}
}

// scriptedSource hands out lines and Ctrl-Cs as a terminal would.
type scriptedSource struct{ items []any } // string or error

func (s *scriptedSource) readLine(string) (string, error) {
	if len(s.items) == 0 {
		return "", io.EOF
	}
	it := s.items[0]
	s.items = s.items[1:]
	if err, ok := it.(error); ok {
		return "", err
	}
	return it.(string), nil
}

func TestShellCtrlCAtPrompt(t *testing.T) {
	t.Parallel()
	ctx, _, s, out, errOut := newTestShell(t)
	src := &scriptedSource{items: []any{
		"SELECT 'dropped'", errInterrupted, // Ctrl-C drops the unfinished statement
		"SELECT 1 AS one;", errInterrupted, "", // a blank line does not count as input
		errInterrupted, // a second Ctrl-C at an empty prompt leaves
		"SELECT 'never';",
	}}
	quit, failed, err := s.run(ctx, src, "", true)
	if !quit || failed != 0 || err != nil {
		t.Errorf("run: quit %v, failed %d, err %v; want a clean exit", quit, failed, err)
	}
	if got := trimLines(out.String()); got != "one\n---\n1\n(1 row)\n" {
		t.Errorf("output %q", got)
	}
	if len(src.items) != 1 {
		t.Errorf("%d items left, want the shell gone before the last", len(src.items))
	}
	if !strings.Contains(errOut.String(), "Ctrl-C again or Ctrl-D to leave") {
		t.Errorf("errors %q lack the hint", errOut.String())
	}
}

// TestCtrlCReader checks that a Ctrl-C typed into the line editor becomes
// an interrupt, not the end of input, and clears the line.
func TestCtrlCReader(t *testing.T) {
	t.Parallel()
	in := &ctrlCReader{r: strings.NewReader("abc\x03rest")}
	tm := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, io.Discard}, "> ")
	line, err := tm.ReadLine()
	if err != nil || line != "" || !in.interrupted.Load() {
		t.Errorf("ReadLine after Ctrl-C: %q, %v, interrupted %v; want an empty line, interrupted", line, err, in.interrupted.Load())
	}
}

func TestShellHistory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".hiqlite_history")
	h := &history{path: path}
	for i := range historyLimit + 5 {
		h.Add(fmt.Sprintf("SELECT %d;", i))
	}
	h.Add("SELECT 1004;") // a repeat is kept once
	h.Add("   ")          // blank lines are not kept
	if h.Len() != historyLimit || h.At(0) != "SELECT 1004;" || h.At(historyLimit-1) != "SELECT 5;" {
		t.Fatalf("history: %d lines, newest %q, oldest %q", h.Len(), h.At(0), h.At(h.Len()-1))
	}
	if err := h.save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("history file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	h2 := &history{path: path}
	if err := h2.load(); err != nil || h2.Len() != historyLimit || h2.At(0) != "SELECT 1004;" {
		t.Errorf("reloaded history: %v, %d lines", err, h2.Len())
	}
	// A missing file is an empty history; an unwritable one an error to warn of.
	h3 := &history{path: filepath.Join(t.TempDir(), "none", "h")}
	if err := h3.load(); err != nil || h3.Len() != 0 {
		t.Errorf("missing history: %v, %d lines", err, h3.Len())
	}
	if err := h3.save(); err == nil || errors.Is(err, os.ErrExist) {
		t.Errorf("saving to a missing directory: %v, want an error", err)
	}
}
