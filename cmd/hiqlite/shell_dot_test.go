package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newTestShell opens a single in-process node and a shell session on it.
func newTestShell(t *testing.T) (context.Context, *sql.DB, *shellSession, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	ctx := testContext(t)
	db, err := openNode(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var out, errOut bytes.Buffer
	s, err := newShellSession(ctx, db, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return ctx, db, s, &out, &errOut
}

// feed runs text through the shell as piped input and returns what it
// printed, then empties the buffers.
func feed(t *testing.T, ctx context.Context, s *shellSession, out, errOut *bytes.Buffer, text string) (string, string, int) {
	t.Helper()
	_, failed, err := s.run(ctx, newPlainSource(strings.NewReader(text), out, false), "", false)
	if err != nil {
		t.Fatalf("shell: %v", err)
	}
	o, e := trimLines(out.String()), errOut.String()
	out.Reset()
	errOut.Reset()
	return o, e, failed
}

func TestShellModes(t *testing.T) {
	t.Parallel()
	ctx, _, s, out, errOut := newTestShell(t)
	setup := `CREATE TABLE t(id INTEGER, name TEXT, x REAL, b BLOB);
INSERT INTO t VALUES (1, 'a', 1.5, NULL), (2, 'b,c "q"', NULL, x'00FF');
`
	if _, e, failed := feed(t, ctx, s, out, errOut, setup); failed != 0 {
		t.Fatalf("setup: %s", e)
	}
	const q = "SELECT * FROM t ORDER BY id;\n"
	tests := []struct{ cmds, want string }{
		{".mode column\n", `id  name     x     b
--  -------  ----  -------
1   a        1.5   NULL
2   b,c "q"  NULL  X'00FF'
(2 rows)
`},
		{".mode column\n.headers off\n", `1   a        1.5   NULL
2   b,c "q"  NULL  X'00FF'
(2 rows)
`},
		{".mode list\n", `id|name|x|b
1|a|1.5|NULL
2|b,c "q"|NULL|X'00FF'
`},
		{".mode list\n.headers off\n", `1|a|1.5|NULL
2|b,c "q"|NULL|X'00FF'
`},
		{".mode line\n", `  id = 1
name = a
   x = 1.5
   b = NULL

  id = 2
name = b,c "q"
   x = NULL
   b = X'00FF'
`},
		{".mode table\n", `+----+---------+------+---------+
| id | name    | x    | b       |
+----+---------+------+---------+
| 1  | a       | 1.5  | NULL    |
| 2  | b,c "q" | NULL | X'00FF' |
+----+---------+------+---------+
`},
		{".mode box\n", `┌────┬─────────┬──────┬─────────┐
│ id │ name    │ x    │ b       │
├────┼─────────┼──────┼─────────┤
│ 1  │ a       │ 1.5  │ NULL    │
│ 2  │ b,c "q" │ NULL │ X'00FF' │
└────┴─────────┴──────┴─────────┘
`},
		{".mode csv\n", `id,name,x,b
1,a,1.5,
2,"b,c ""q""",,X'00FF'
`},
		{".mode csv\n.headers off\n", `1,a,1.5,
2,"b,c ""q""",,X'00FF'
`},
		{".mode json\n", `[{"id":1,"name":"a","x":1.5,"b":null},
{"id":2,"name":"b,c \"q\"","x":null,"b":"X'00FF'"}]
`},
	}
	for _, tt := range tests {
		got, e, failed := feed(t, ctx, s, out, errOut, ".headers on\n"+tt.cmds+q)
		if failed != 0 || got != tt.want {
			t.Errorf("%q: got (errors %q)\n%s\nwant\n%s", tt.cmds, e, got, tt.want)
		}
	}
	// json of no rows is an empty array; csv and json print no row counts.
	got, _, _ := feed(t, ctx, s, out, errOut, ".mode json\nSELECT * FROM t WHERE 0;\nINSERT INTO t(id) VALUES (3);\n")
	if got != "[]\n" {
		t.Errorf("json of no rows and an INSERT: %q, want %q", got, "[]\n")
	}
	got, _, _ = feed(t, ctx, s, out, errOut, ".mode\n")
	if got != "current output mode: json\n" {
		t.Errorf(".mode: %q", got)
	}
	_, e, failed := feed(t, ctx, s, out, errOut, ".mode xml\n")
	if failed != 1 || !strings.Contains(e, `unknown mode "xml"`) || !strings.Contains(e, "column, table, box") {
		t.Errorf(".mode xml: failed %d, errors %q", failed, e)
	}
}

func TestShellDotCommands(t *testing.T) {
	t.Parallel()
	ctx, _, s, out, errOut := newTestShell(t)
	setup := `CREATE TABLE b(x);
CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT);
CREATE INDEX a_v ON a(v);
CREATE VIEW av AS SELECT v FROM a;
`
	if _, e, failed := feed(t, ctx, s, out, errOut, setup); failed != 0 {
		t.Fatalf("setup: %s", e)
	}
	tests := []struct {
		cmd, want string // want: the exact output, or with a "~" prefix text it must hold
	}{
		{".tables", "name\n----\na\nav\nb\n(3 rows)\n"},
		{".schema a", "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT);\nCREATE INDEX a_v ON a(v);\n"},
		{".schema", "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT);\nCREATE INDEX a_v ON a(v);\nCREATE VIEW av AS SELECT v FROM a;\nCREATE TABLE b(x);\n"},
		{".headers off", ""},
		{".mode list", ""},
		{".nodes", "~|leader|1|"},
		{".status", "~|"},
		{".consistency", "the DSN's (_consistency, local unless set)\n"},
		{".consistency linearizable\nSELECT 7;\n.consistency", "7\nlinearizable\n"},
		{".timer on\nSELECT 8;\n.timer off\nSELECT 9;", "~8\nRun Time: real "},
		{".help", "~.dump"},
		{".help", "~no .backup"},
		{".quit\nSELECT 'never';", ""},
	}
	for _, tt := range tests {
		got, e, failed := feed(t, ctx, s, out, errOut, tt.cmd+"\n")
		ok := got == tt.want
		if w, hold := strings.CutPrefix(tt.want, "~"); hold {
			ok = strings.Contains(got, w)
		}
		if failed != 0 || !ok {
			t.Errorf("%s: got (errors %q)\n%s\nwant\n%s", tt.cmd, e, got, tt.want)
		}
	}
	errs := []struct{ cmd, want string }{
		{".frobnicate", "unknown command .frobnicate; enter .help for the list"},
		{".schema nosuch", `no table named "nosuch"`},
		{".headers maybe", `.headers: want on or off, not "maybe"`},
		{".consistency strong", `unknown consistency`},
		{".read", "usage: .read FILE"},
		{".read " + filepath.Join(t.TempDir(), "missing.sql"), "missing.sql"},
		{".backup x.db", "unknown command .backup"},
	}
	for _, tt := range errs {
		_, e, failed := feed(t, ctx, s, out, errOut, tt.cmd+"\n")
		if failed != 1 || !strings.Contains(e, tt.want) {
			t.Errorf("%s: failed %d, errors %q; want one naming %q", tt.cmd, failed, e, tt.want)
		}
	}
}

func TestShellRead(t *testing.T) {
	t.Parallel()
	ctx, _, s, out, errOut := newTestShell(t)
	dir := t.TempDir()
	inner := filepath.Join(dir, "inner.sql")
	outer := filepath.Join(dir, "outer.sql")
	if err := os.WriteFile(inner, []byte("INSERT INTO t VALUES (2);\n\nINSERT INTO nosuch\n  VALUES (3);\nINSERT INTO t VALUES (4); SELECT no_col FROM t;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outer, []byte("CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\n.read "+inner+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, e, failed := feed(t, ctx, s, out, errOut, ".read "+outer+"\n.mode list\n.headers off\nSELECT group_concat(x) FROM t;\n")
	for _, want := range []string{inner + ":3: Error:", "no such table: nosuch", inner + ":5: Error:", "no such column: no_col",
		".read " + inner + ": 2 statement(s) failed", outer + ":3: Error:"} {
		if !strings.Contains(e, want) {
			t.Errorf("errors %q lack %q", e, want)
		}
	}
	if failed != 1 {
		t.Errorf("failed %d, want 1 (the outer .read)", failed)
	}
	got, _, _ := feed(t, ctx, s, out, errOut, "SELECT group_concat(x) FROM t;\n")
	if got != "1,2,4\n" {
		t.Errorf("rows after .read: %q, want the statements around the errors run", got)
	}
	// A file that reads itself stops at the depth bound.
	self := filepath.Join(dir, "self.sql")
	if err := os.WriteFile(self, []byte(".read "+self+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, e, _ = feed(t, ctx, s, out, errOut, ".read "+self+"\n")
	if !strings.Contains(e, "more than 16 deep") {
		t.Errorf(".read of itself: errors %q", e)
	}
}
