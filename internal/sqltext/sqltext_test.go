package sqltext

import (
	"slices"
	"strings"
	"testing"
)

func TestLexer(t *testing.T) {
	t.Parallel()
	type tok struct {
		kind Kind
		text string
	}
	tests := []struct {
		in   string
		want []tok
	}{
		{"", nil},
		{"  \t\n -- only a comment", nil},
		{"/* unterminated comment ; select 1", nil},
		{"select 1;", []tok{{Word, "select"}, {Number, "1"}, {Punct, ";"}}},
		{"'it''s;' \"a\"\"b\" [c;d] `e``f`", []tok{{String, "'it''s;'"}, {Quoted, `"a""b"`}, {Quoted, "[c;d]"}, {Quoted, "`e``f`"}}},
		{"x'0a' X'' ?1 ?  :a @b $c #d", []tok{{Blob, "x'0a'"}, {Blob, "X''"}, {Var, "?1"}, {Var, "?"}, {Var, ":a"}, {Var, "@b"}, {Var, "$c"}, {Var, "#d"}}},
		{"1.5e+3 .5 0x1F", []tok{{Number, "1.5e+3"}, {Number, ".5"}, {Number, "0x1F"}}},
		{"a/**/b--c\nd", []tok{{Word, "a"}, {Word, "b"}, {Word, "d"}}},
		{"'unterminated ; string", []tok{{String, "'unterminated ; string"}}},
		{`"unterminated ; name`, []tok{{Quoted, `"unterminated ; name`}}},
		{"[unterminated ; name", []tok{{Quoted, "[unterminated ; name"}}},
		{"ä_b1$ c", []tok{{Word, "ä_b1$"}, {Word, "c"}}},
		{"select 1\x00; select 2;", []tok{{Word, "select"}, {Number, "1"}}},
		{"a.b(c)", []tok{{Word, "a"}, {Punct, "."}, {Word, "b"}, {Punct, "("}, {Word, "c"}, {Punct, ")"}}},
	}
	for _, tt := range tests {
		var got []tok
		lx := NewLexer(tt.in)
		for t := lx.Next(); t.Kind != EOF; t = lx.Next() {
			if tt.in[t.Pos:t.End()] != t.Text {
				panic("token text is not the text at its position")
			}
			got = append(got, tok{t.Kind, t.Text})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("tokens of %q = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestUnquote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"'a'": "a", "'it''s'": "it's", `"a""b"`: `a"b`, "[a]]": "a", "`x`": "x",
		"'open": "open", "[open": "open", "'a''": "a'", "''": "",
	} {
		if got := Unquote(in); got != want {
			t.Errorf("Unquote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text  string
		stmts []string
		rest  string
	}{
		{"", nil, ""},
		{"select 1", nil, "select 1"},
		{"select 1;", []string{"select 1;"}, ""},
		{";;", []string{";", ";"}, ""},
		{"select 1; select 2;\n", []string{"select 1;", " select 2;"}, "\n"},
		{"select ';'; select 'it''s;'", []string{"select ';';"}, " select 'it''s;'"},
		{`select "a;b", [c;d], ` + "`e;f`;", []string{`select "a;b", [c;d], ` + "`e;f`;"}, ""},
		{"select 1 -- ;\n;", []string{"select 1 -- ;\n;"}, ""},
		{"select 1 -- ;", nil, "select 1 -- ;"},
		{"select /* ; */ 1;", []string{"select /* ; */ 1;"}, ""},
		{"select /* ; 1;", nil, "select /* ; 1;"},
		{"select 'open;", nil, "select 'open;"},
		{`select "open;`, nil, `select "open;`},
		{"select [open;", nil, "select [open;"},
		{"create trigger x after insert on t begin select 1; end; select 2;",
			[]string{"create trigger x after insert on t begin select 1; end;", " select 2;"}, ""},
		{"CREATE TEMP TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;", nil, "CREATE TEMP TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;"},
		{"create trigger x after insert on t begin select 1;; end ; end;",
			[]string{"create trigger x after insert on t begin select 1;; end ;", " end;"}, ""},
		{"create trigger x after insert on t begin update t set a = 'end;'; end;",
			[]string{"create trigger x after insert on t begin update t set a = 'end;'; end;"}, ""},
		{"create table t(end);", []string{"create table t(end);"}, ""},
		{"create table trigger(a); select 1;", []string{"create table trigger(a);", " select 1;"}, ""},
		{"explain create trigger x after insert on t begin select 1; end;",
			[]string{"explain create trigger x after insert on t begin select 1; end;"}, ""},
		{"explain select 1; select 2", []string{"explain select 1;"}, " select 2"},
		{"select 1;\x00select 2;", []string{"select 1;"}, "\x00select 2;"},
	}
	for _, tt := range tests {
		stmts, rest := Split(tt.text)
		if !slices.Equal(stmts, tt.stmts) || rest != tt.rest {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", tt.text, stmts, rest, tt.stmts, tt.rest)
		}
	}
}

func TestFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text       string
		stmt       string // text[Start:End]
		next       int
		terminated bool
	}{
		{"", "", 0, false},
		{" ;; -- c\n ; ", "", 12, false},
		{";; select 1 ; select 2", "select 1", 13, true},
		{"/* a */ insert into t values(';') -- x", "insert into t values(';')", 38, false},
		{"select 'open; select 2", "select 'open; select 2", 22, false},
		{"begin; commit;", "begin", 6, true},
	}
	for _, tt := range tests {
		st := First(tt.text, nil)
		if got := tt.text[st.Start:st.End]; got != tt.stmt || st.Next != tt.next || st.Terminated != tt.terminated {
			t.Errorf("First(%q) = %q, next %d, terminated %v; want %q, %d, %v", tt.text, got, st.Next, st.Terminated, tt.stmt, tt.next, tt.terminated)
		}
		if IsBlank(tt.text) != (tt.stmt == "") {
			t.Errorf("IsBlank(%q) = %v", tt.text, !(tt.stmt == ""))
		}
	}
}

// TestHostileInput reads texts an attacker could send: huge, deeply nested, and never
// terminated. Each is read in one pass without allocating, whatever its size.
func TestHostileInput(t *testing.T) {
	// Not parallel: testing.AllocsPerRun counts every goroutine's allocations.
	const n = 1 << 18
	tests := []struct {
		name       string
		text       string
		terminated bool
	}{
		{"nested parens", "select " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) + ";", true},
		{"unclosed parens", "select " + strings.Repeat("(", n) + ";", true},
		{"unterminated string", "select '" + strings.Repeat("a;", n), false},
		{"doubled quotes", "select '" + strings.Repeat("''", n), false},
		{"unterminated comment", "select 1 /*" + strings.Repeat("; *", n), false},
		{"open trigger body", "create trigger x after insert on t begin " + strings.Repeat("select 1; ", n/8), false},
		{"many empty statements", strings.Repeat(";", n) + "select 1", false},
		{"many words", strings.Repeat("a ", n) + ";", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tokens int
			st := First(tt.text, func(Token) { tokens++ })
			if st.Terminated != tt.terminated || (!tt.terminated && st.Next != len(tt.text)) {
				t.Errorf("First: terminated %v, next %d of %d; want terminated %v", st.Terminated, st.Next, len(tt.text), tt.terminated)
			}
			if tokens == 0 {
				t.Errorf("First visited no token")
			}
			allocs := testing.AllocsPerRun(3, func() {
				First(tt.text, nil)
				IsBlank(tt.text)
			})
			if allocs != 0 {
				t.Errorf("First and IsBlank of %d bytes allocate %v times, want 0", len(tt.text), allocs)
			}
			stmts, rest := Split(tt.text)
			if len(strings.Join(stmts, ""))+len(rest) != len(tt.text) {
				t.Errorf("Split lost bytes: %d statements and %d bytes of rest, of %d", len(stmts), len(rest), len(tt.text))
			}
		})
	}
}
