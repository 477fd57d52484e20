package replication

import (
	"slices"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/sqltext"
)

// FuzzStatementBoundaries checks that the shell's splitter (sqltext.Split) and the
// classifier (parseStatement, with which the driver and the state machine walk a text
// statement by statement) cut a text into the same statements, and that they cut where
// SQLite's own prepare does whenever SQLite can prepare the first statement.
func FuzzStatementBoundaries(f *testing.F) {
	for _, seed := range []string{
		"",
		"select 1; select 2",
		";; select ';' ; -- ;\n select 'it''s;';",
		`select "a;b", [c;d], ` + "`e;f`" + `; select 1 /* ; */;`,
		"create trigger r after insert on t begin update t set b = 'end;'; select 1; end; select 2;",
		"create temp trigger r after insert on t begin select 1;; end ; end;",
		"explain create trigger r after insert on t begin select 1; end; select 2",
		"create table trigger(a); select 1;",
		"create table x(end); explain query plan select 1;",
		"BEGIN; INSERT INTO t VALUES(1, 'a;'); COMMIT;",
		"select 'open; select 2",
		"select 1 /* open; select 2",
		"select x'00;', ?1, :a, @b, $c; select 1e+5;",
		"select 1;\x00select 2;",
		"select ((((((1)))))); select (",
	} {
		f.Add(seed)
	}
	c, err := sqlite3.Open(":memory:")
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	if err := c.Exec(`CREATE TABLE t(a, b); CREATE TABLE "end"(x)`); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 1<<12 {
			return
		}
		var classified []string
		for off := 0; ; {
			st := parseStatement(text[off:])
			if st.n == 0 {
				break
			}
			classified = append(classified, st.sql)
			off += st.end
		}
		stmts, rest := sqltext.Split(text)
		var split []string
		for _, s := range append(stmts, rest) {
			if st := sqltext.First(s, nil); !st.Empty() {
				split = append(split, s[st.Start:st.End])
			}
		}
		if !slices.Equal(classified, split) {
			t.Fatalf("text %q:\nclassifier's statements %q\nsplitter's statements   %q", text, classified, split)
		}

		if strings.IndexByte(text, 0) >= 0 {
			return // SQLite reads up to the NUL, ncruces passes all of it
		}
		stmt, tail, err := c.Prepare(text)
		if err != nil || stmt == nil {
			return // SQLite's boundary is only known for a statement it prepares
		}
		stmt.Close()
		first := sqltext.First(text, nil)
		if got := len(text) - len(tail); got != first.Next {
			t.Fatalf("text %q: SQLite's first statement ends at %d (%q), the lexer's at %d (%q)", text, got, text[:got], first.Next, text[:first.Next])
		}
	})
}
