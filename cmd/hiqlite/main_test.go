package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

// TestDemo runs the demo as a user would, with a temporary directory and
// with --dir, and checks the facts it reports: a write through a follower
// reached every node, the leader's failover, the old leader's rejoin.
func TestDemo(t *testing.T) {
	t.Parallel()
	t.Run("temporary dir", func(t *testing.T) {
		t.Parallel()
		out := runDemo(t)
		m := regexp.MustCompile(`Removed the temporary directory (\S+)\.\n`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the demo did not say it removed its temporary directory; output:\n%s", out)
		}
		if _, err := os.Stat(m[1]); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the temporary directory %s is still there (stat: %v)", m[1], err)
		}
	})
	t.Run("--dir", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "new")
		out := runDemo(t, "--dir", dir)
		if !strings.Contains(out, "The data stays in "+dir) {
			t.Errorf("the demo does not say where its data stays; output:\n%s", out)
		}
		// The DSNs it prints start the cluster again, with every note.
		dsns := regexp.MustCompile(`(?m)^   (\S+\?_node=node\d\S*)$`).FindAllStringSubmatch(out[strings.Index(out, "The data stays"):], -1)
		if len(dsns) != 3 {
			t.Fatalf("want the 3 DSNs after the demo, got %d; output:\n%s", len(dsns), out)
		}
		ctx := testContext(t)
		var dbs []*sql.DB
		for _, m := range dsns {
			db, err := sql.Open(hiqlite.DriverName, m[1])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs = append(dbs, db)
		}
		for i, db := range dbs {
			n, err := hiqlite.NodeOf(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.WaitReady(ctx); err != nil {
				t.Fatalf("restart node%d: %v", i+1, err)
			}
			var notes int
			q := `SELECT count(*) FROM notes`
			if err := db.QueryRowContext(hiqlite.WithConsistency(ctx, hiqlite.Linearizable), q).Scan(&notes); err != nil {
				t.Fatal(err)
			}
			if notes != 9 {
				t.Errorf("node%d has %d notes after a restart, want 9", i+1, notes)
			}
		}
	})
}

// runDemo runs "hiqlite demo args...", checks the facts common to every
// run and returns the output.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(testContext(t), append([]string{"demo"}, args...), strings.NewReader(""), &out, &errOut)
	got := out.String()
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s\noutput:\n%s", code, errOut.String(), got)
	}
	find := func(pattern string) []string {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("the output does not match %q; output:\n%s", pattern, got)
		}
		return m
	}
	first := find(`=> 3 voters; (node\d) leads\.`)[1]
	m := find(`=> written through (node\d), a follower; forwarded to (node\d), the leader, and applied there\.`)
	if m[1] == m[2] || m[2] != first {
		t.Errorf("the write went through %s to the leader %s; want a follower of %s", m[1], m[2], first)
	}
	find(`=> the same rows and the same stored random\(\) and 'now' values on all 3 nodes\.`)
	find(`=> the linearizable read on node\d saw the write made on node\d just before\.`)
	find(`=> the committed transaction is on every node; the rolled-back one left no trace\.`)
	m = find(`=> (node\d) took over from (node\d): first write accepted [0-9.]+m?s after (node\d) stopped\.`)
	newLeader, old := m[1], m[2]
	if newLeader == old || m[3] != old {
		t.Errorf("failover from %s to %s; want another node", old, newLeader)
	}
	m = find(`=> (node\d) rejoined as a follower and caught up: applied index (\d+), as on the leader\.`)
	if m[1] != old {
		t.Errorf("%s rejoined; want the old leader %s", m[1], old)
	}
	if n := strings.Count(got, "The tables are identical on all 3 nodes, row for row and value for value."); n != 3 {
		t.Errorf("the output says %d times that all 3 nodes are identical, want 3", n)
	}
	if n := strings.Count(got, `got "tell everyone"`); n != 3 {
		t.Errorf("%d nodes got the notification, want 3", n)
	}
	if n := strings.Count(got, `Get("ada") = "logged in"`); n != 3 {
		t.Errorf("%d nodes read the cache entry, want 3", n)
	}
	find(`=> every node got the notification, the cache entry, and the lock in turn\.`)
	find(`\n9\. .*\n(?s:.*)all three stopped\.\n\nDone: every step worked`)
	return got
}

func TestDemoRefusesUsedDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(testContext(t), []string{"demo", "--dir", dir}, strings.NewReader(""), &out, &errOut)
	if code != exitFail || !strings.Contains(errOut.String(), "is not empty") {
		t.Fatalf("demo in a used dir: exit %d, stderr %q; want exit %d and a message saying it is not empty", code, errOut.String(), exitFail)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the demo changed the used dir: it holds %d entries, want 1", len(entries))
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
		{args: []string{"help"}, code: exitOK, out: "cert --dir DIR [--nodes N,...]"},
		{args: []string{"nope"}, code: exitUsage, err: `unknown command "nope"`},
		{args: []string{"serve"}, code: exitUsage, err: "--dsn is required"},
		{args: []string{"bench", "--only", "nothing"}, code: exitUsage, err: `--only "nothing" matches no scenario`},
		{args: []string{"shell"}, code: exitUsage, err: "--dsn is required"},
		{args: []string{"status"}, code: exitUsage, err: "give exactly one of --dsn DSN"},
		{args: []string{"status", "--bogus"}, code: exitUsage, err: "flag provided but not defined: -bogus"},
		{args: []string{"status", "-h"}, code: exitOK, err: "Usage: hiqlite status --dsn DSN | --http ADDR"},
		{args: []string{"demo", "extra"}, code: exitUsage, err: `unexpected argument "extra"`},
		{args: []string{"help"}, code: exitOK, out: "version"},
		{args: []string{"version", "extra"}, code: exitUsage, err: `unexpected argument "extra"`},
		{args: []string{"status", "--dsn", "?_bogus=1"}, code: exitUsage, err: "empty data directory"},
		{args: []string{"help"}, code: exitOK, out: "restore --from SRC --dir DATA_DIR"},
		{args: []string{"backup"}, code: exitUsage, err: "give --dsn DSN and --to DEST"},
		{args: []string{"backup", "list"}, code: exitUsage, err: "give the source"},
		{args: []string{"backup", "verify", "a", "b"}, code: exitUsage, err: `unexpected argument "b"`},
		{args: []string{"backup", "list", "ftp://x/y"}, code: exitFail, err: `unknown scheme "ftp"`},
		{args: []string{"backup", "verify", "/nonexistent/hiqlite-backups"}, code: exitFail, err: "no backup in /nonexistent/hiqlite-backups"},
		{args: []string{"restore", "--from", "x"}, code: exitUsage, err: "give --from SRC and --dir DATA_DIR"},
		{args: []string{"restore", "--from", "/nonexistent/b", "--dir", "/nonexistent/d", "--node", "a b", "--name", "x.hqb"}, code: exitFail, err: `node id "a b"`},
		{args: []string{"restore", "--from", "/nonexistent/b", "--dir", "/nonexistent/d", "--identity", "/nonexistent/key"}, code: exitFail, err: "/nonexistent/key"},
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
