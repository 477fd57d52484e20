package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestDemo(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	var out bytes.Buffer
	if err := demo(ctx, &out, dir); err != nil {
		t.Fatalf("demo: %v\noutput:\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"1. Open a node",
		"is leader:  true",
		"inside the transaction:  4 notes",
		"outside the transaction: 3 notes",
		"after ROLLBACK:         4 notes",
		"4   written in a transaction",
		"(4 rows)",
		"9. Close the node and open it again",
		"4 notes survived the restart (4 before)",
		"Done: every step worked.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q; output:\n%s", want, got)
		}
	}

	// The demo closed its node; what it wrote is on disk.
	db, err := sql.Open(hiqlite.DriverName, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var notes, samples, moments int
	err = db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM notes), (SELECT count(*) FROM samples),
		(SELECT count(DISTINCT at) FROM samples)`).Scan(&notes, &samples, &moments)
	if err != nil {
		t.Fatal(err)
	}
	if notes != 4 || samples != 3 || moments != 1 {
		t.Errorf("after the demo: %d notes, %d samples at %d moments; want 4, 3 at 1", notes, samples, moments)
	}
}

func TestDemoRefusesUsedDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := sql.Open(hiqlite.DriverName, dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var out bytes.Buffer
	err = demo(testContext(t), &out, dir)
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("demo in a used dir: got %v, want an error saying it is not empty", err)
	}
}

func TestShell(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db, err := openNode(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	in := strings.NewReader(`CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n REAL);
INSERT INTO t(name, n)
  VALUES ('a;b', 1), ('longer name', 2.5);  -- a ';' in a string, a comment
CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN
  UPDATE t SET n = n * 2 WHERE id = new.id;
END;
BEGIN;
INSERT INTO t(name, n) VALUES ('in tx', 10) RETURNING id, n;
COMMIT;
SELECT id, name, n, NULL AS none, x'CAFE' AS blob FROM t ORDER BY id;
SELECT no_such_column FROM t;
.tables
SELECT 'last' AS word;
.quit
SELECT 'never run';
`)
	var out, errOut bytes.Buffer
	err = shell(ctx, db, in, &out, &errOut, false)
	if err == nil || !strings.Contains(err.Error(), "1 statement(s) failed") {
		t.Errorf("shell returned %v, want 1 failed statement", err)
	}
	// RETURNING shows the row as inserted, before the AFTER trigger.
	want := `(2 rows affected)
id  n
--  ----
3   10.0
(1 row)
id  name         n     none  blob
--  -----------  ----  ----  -------
1   a;b          1.0   NULL  X'CAFE'
2   longer name  2.5   NULL  X'CAFE'
3   in tx        20.0  NULL  X'CAFE'
(3 rows)
name
----
t
(1 row)
word
----
last
(1 row)
`
	// Lines are padded to their column; compare without trailing blanks.
	if trimLines(out.String()) != want {
		t.Errorf("shell output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(errOut.String(), "no such column: no_such_column") {
		t.Errorf("shell errors: %q, want the unknown column", errOut.String())
	}
}

func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestShellThroughRun(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	// As in: echo 'select 1;' | hiqlite shell --dsn DIR
	code := run(ctx, []string{"shell", "--dsn", dir}, strings.NewReader("select 1;\nselect 2 as two"), &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut.String())
	}
	if got, want := trimLines(out.String()), "1\n-\n1\n(1 row)\ntwo\n---\n2\n(1 row)\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestSplitStatements(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text  string
		stmts []string
		rest  string
	}{
		{"", nil, ""},
		{"select 1", nil, "select 1"},
		{"select 1;", []string{"select 1;"}, ""},
		{"select 1; select 2;\n", []string{"select 1;", " select 2;"}, "\n"},
		{"select ';'; select 'it''s;'", []string{"select ';';"}, " select 'it''s;'"},
		{`select "a;b", [c;d], ` + "`e;f`;", []string{`select "a;b", [c;d], ` + "`e;f`;"}, ""},
		{"select 1 -- ;\n;", []string{"select 1 -- ;\n;"}, ""},
		{"select /* ; */ 1;", []string{"select /* ; */ 1;"}, ""},
		{"select 'open;", nil, "select 'open;"},
		{"create trigger x after insert on t begin select 1; end; select 2;",
			[]string{"create trigger x after insert on t begin select 1; end;", " select 2;"}, ""},
		{"create temp trigger x after insert on t begin select 1;", nil, "create temp trigger x after insert on t begin select 1;"},
		{"create table t(end);", []string{"create table t(end);"}, ""},
		{"explain create trigger x after insert on t begin select 1; end;",
			[]string{"explain create trigger x after insert on t begin select 1; end;"}, ""},
		{";;", []string{";", ";"}, ""},
	}
	for _, tt := range tests {
		stmts, rest := splitStatements(tt.text)
		if !slices.Equal(stmts, tt.stmts) || rest != tt.rest {
			t.Errorf("splitStatements(%q) = %q, %q; want %q, %q", tt.text, stmts, rest, tt.stmts, tt.rest)
		}
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{args: nil, code: exitUsage, err: "Commands:"},
		{args: []string{"help"}, code: exitOK, out: "demo [--dir DIR]"},
		{args: []string{"--help"}, code: exitOK, out: "shell --dsn DSN"},
		{args: []string{"nope"}, code: exitUsage, err: `unknown command "nope"`},
		{args: []string{"serve"}, code: exitUsage, err: "--dsn is required"},
		{args: []string{"bench"}, code: exitUsage, err: "not implemented yet: arrives with the performance issue"},
		{args: []string{"shell"}, code: exitUsage, err: "--dsn is required"},
		{args: []string{"status"}, code: exitUsage, err: "give exactly one of --dsn DSN"},
		{args: []string{"status", "--bogus"}, code: exitUsage, err: "flag provided but not defined: -bogus"},
		{args: []string{"status", "-h"}, code: exitOK, err: "Usage: hiqlite status --dsn DSN | --http ADDR"},
		{args: []string{"demo", "extra"}, code: exitUsage, err: `unexpected argument "extra"`},
		{args: []string{"status", "--dsn", "?_bogus=1"}, code: exitUsage, err: "empty data directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"hiqlite"}, tt.args...), " "), func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := run(testContext(t), tt.args, strings.NewReader(""), &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, errOut.String())
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.out)
			}
			if !strings.Contains(errOut.String(), tt.err) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.err)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := filepath.Join(t.TempDir(), "node")
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"status", "--dsn", dir + "?_node=n1"}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut.String())
	}
	for _, want := range []string{
		"node:          n1\n",
		"leader:        n1 (this node)\n",
		"applied index: ",
		"data dir:      " + dir + "\n",
		"  n1  n1       true   true",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStatusSharesNodeInProcess(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	// A node of this process shares the directory; only another process
	// would be refused. Opening the same dir twice must still work.
	db, err := openNode(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	if err := status(ctx, dir, 10*time.Second, &out); err != nil {
		t.Fatalf("status of a node this process runs: %v", err)
	}
}
