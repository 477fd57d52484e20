package replication

import "github.com/hiqlite/hiqlite/internal/sqltext"

// headLen is how many leading tokens classification looks at; the longest form it reads
// is EXPLAIN QUERY PLAN PRAGMA schema.name(+value).
const headLen = 16

// parsedStmt is the first statement of a text, as far as classification reads it. The
// text is lexed by package sqltext, hiqlite's one SQL lexer.
type parsedStmt struct {
	sql           string                 // the statement as written, from its first token to its last
	start, end    int                    // where sql starts and ends in the text read
	head          [headLen]sqltext.Token // its first tokens
	n             int                    // how many of head are set
	loadExtension bool                   // it calls load_extension(...)
	notify        bool                   // it calls hiqlite_notify(...)
}

// tok returns token i of the statement, or an EOF token past the end of head.
func (st *parsedStmt) tok(i int) sqltext.Token {
	if i < st.n {
		return st.head[i]
	}
	return sqltext.Token{}
}

// parseStatement reads the first statement of sql: empty statements before it are
// skipped, and nothing after it is read.
func parseStatement(sql string) parsedStmt {
	var st parsedStmt
	var prev1, prev2 sqltext.Token
	span := sqltext.First(sql, func(t sqltext.Token) {
		if st.n < headLen {
			st.head[st.n] = t
			st.n++
		}
		if t.IsPunct('(') && isCall(prev2, prev1, "load_extension") {
			st.loadExtension = true
		}
		if t.IsPunct('(') && isCall(prev2, prev1, NotifyFunc) {
			st.notify = true
		}
		prev2, prev1 = prev1, t
	})
	if span.Empty() {
		span.Start, span.End = 0, 0
	}
	st.sql = sql[span.Start:span.End]
	st.start, st.end = span.Start, span.End
	return st
}

// isCall reports whether name, followed by "(", calls the function fn rather than
// naming an object with a column list or arguments.
func isCall(before, name sqltext.Token, fn string) bool {
	v, ok := name.Name()
	if !ok || name.Kind == sqltext.String || !equalFold(v, fn) {
		return false
	}
	if before.IsPunct('.') {
		return false
	}
	for _, kw := range [...]string{"TABLE", "VIEW", "INTO", "EXISTS", "REFERENCES", "USING", "WITH", "RECURSIVE"} {
		if before.Is(kw) {
			return false
		}
	}
	return true
}

// Case folding as SQLite does it, ASCII only (see package sqltext).
func lowerASCII(s string) string { return sqltext.LowerASCII(s) }
func upperASCII(s string) string { return sqltext.UpperASCII(s) }
func equalFold(a, b string) bool { return sqltext.EqualFold(a, b) }
