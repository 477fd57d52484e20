package replication

import "strings"

// headLen is how many leading tokens classification looks at; the longest form it reads
// is EXPLAIN QUERY PLAN PRAGMA schema.name(+value).
const headLen = 16

// parsedStmt is the first statement of a text, as far as classification reads it.
type parsedStmt struct {
	sql           string            // the statement as written, from its first token to its last
	start, end    int               // where sql starts and ends in the text read
	head          [headLen]sqlToken // its first tokens
	n             int               // how many of head are set
	loadExtension bool              // it calls load_extension(...)
	notify        bool              // it calls hiqlite_notify(...)
}

// tok returns token i of the statement, or a tEOF token past the end of head.
func (st *parsedStmt) tok(i int) sqlToken {
	if i < st.n {
		return st.head[i]
	}
	return sqlToken{}
}

// Where a statement ends: a ";" outside a CREATE TRIGGER body, and in a body the ";"
// after its END. This is the state machine of sqlite3_complete.
const (
	sStart   = iota // before the first token
	sNormal         // in a statement
	sExplain        // after EXPLAIN, before CREATE
	sCreate         // after CREATE [TEMP]
	sTrigger        // in a CREATE TRIGGER
	sSemi           // in a CREATE TRIGGER, after a ";"
	sEnd            // in a CREATE TRIGGER, after "; END"
)

// parseStatement reads the first statement of sql: empty statements before it are
// skipped, and nothing after it is read.
func parseStatement(sql string) parsedStmt {
	var st parsedStmt
	lx := sqlLexer{sql: sql}
	if i := strings.IndexByte(sql, 0); i >= 0 {
		lx.sql = sql[:i] // SQLite's input ends at a NUL
	}
	state := sStart
	start, end := 0, 0
	var prev1, prev2 sqlToken
	for {
		t := lx.next()
		if t.kind == tEOF {
			break
		}
		semi := t.isPunct(';')
		if semi && state == sStart {
			continue
		}
		done := false
		switch state {
		case sStart:
			switch {
			case t.is("EXPLAIN"):
				state = sExplain
			case t.is("CREATE"):
				state = sCreate
			default:
				state = sNormal
			}
			start = t.pos
		case sNormal:
			done = semi
		case sExplain:
			switch {
			case semi:
				done = true
			case t.is("CREATE"):
				state = sCreate
			case t.is("EXPLAIN"), t.is("TEMP"), t.is("TEMPORARY"), t.is("TRIGGER"), t.is("END"):
				state = sNormal
			}
		case sCreate:
			switch {
			case semi:
				done = true
			case t.is("TEMP"), t.is("TEMPORARY"):
			case t.is("TRIGGER"):
				state = sTrigger
			default:
				state = sNormal
			}
		case sTrigger:
			if semi {
				state = sSemi
			}
		case sSemi:
			switch {
			case semi:
			case t.is("END"):
				state = sEnd
			default:
				state = sTrigger
			}
		case sEnd:
			if semi {
				done = true
			} else {
				state = sTrigger
			}
		}
		if done {
			break
		}
		end = t.pos + len(t.text)
		if st.n < headLen {
			st.head[st.n] = t
			st.n++
		}
		if t.isPunct('(') && isCall(prev2, prev1, "load_extension") {
			st.loadExtension = true
		}
		if t.isPunct('(') && isCall(prev2, prev1, NotifyFunc) {
			st.notify = true
		}
		prev2, prev1 = prev1, t
	}
	st.sql = lx.sql[start:end]
	st.start, st.end = start, end
	return st
}

// isCall reports whether name, followed by "(", calls the function fn rather than
// naming an object with a column list or arguments.
func isCall(before, name sqlToken, fn string) bool {
	v, ok := name.name()
	if !ok || name.kind == tString || !equalFold(v, fn) {
		return false
	}
	if before.isPunct('.') {
		return false
	}
	for _, kw := range [...]string{"TABLE", "VIEW", "INTO", "EXISTS", "REFERENCES", "USING", "WITH", "RECURSIVE"} {
		if before.is(kw) {
			return false
		}
	}
	return true
}

type tokKind uint8

const (
	tEOF    tokKind = iota // no more tokens
	tWord                  // a keyword or a bare identifier
	tQuoted                // an identifier in "", [] or ``
	tString                // a string literal in ''
	tNumber                // a numeric literal
	tBlob                  // a blob literal x'..'
	tVar                   // a parameter: ?NNN, :name, @name, $name
	tPunct                 // any other byte: ; ( ) . = + - ...
)

type sqlToken struct {
	kind tokKind
	text string // as written
	pos  int    // byte offset in the text
}

// is reports whether t is the bare keyword kw (upper case), in any case.
func (t sqlToken) is(kw string) bool {
	return t.kind == tWord && equalFold(t.text, kw)
}

func (t sqlToken) isPunct(c byte) bool {
	return t.kind == tPunct && t.text[0] == c
}

// name returns the value of a token SQLite takes as a name: a bare word, a quoted
// identifier, or a string (which SQLite accepts where it expects a name).
func (t sqlToken) name() (string, bool) {
	switch t.kind {
	case tWord:
		return t.text, true
	case tQuoted, tString:
		return unquote(t.text), true
	}
	return "", false
}

// unquote returns the value of a quoted token: its text without the quotes, and with a
// doubled quote standing for one (none in [x]). An unterminated token runs to its end.
func unquote(s string) string {
	q, v := s[0], s[1:]
	if q == '[' {
		if i := strings.IndexByte(v, ']'); i >= 0 {
			return v[:i]
		}
		return v
	}
	i := strings.IndexByte(v, q)
	if i < 0 {
		return v
	}
	if i+1 >= len(v) || v[i+1] != q {
		return v[:i]
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(v, q)
		if i < 0 {
			b.WriteString(v)
			break
		}
		b.WriteString(v[:i])
		if i+1 >= len(v) || v[i+1] != q {
			break
		}
		b.WriteByte(q)
		v = v[i+2:]
	}
	return b.String()
}

// lexer splits SQL text into tokens as SQLite's tokenizer does, as far as classification
// needs. It skips whitespace and comments and never fails: what SQLite would reject (an
// unterminated quote or comment, a stray byte) still makes a token or ends the input.
type sqlLexer struct {
	sql string
	pos int
}

func (l *sqlLexer) next() sqlToken {
	for l.pos < len(l.sql) {
		c := l.sql[l.pos]
		switch {
		case isSpace(c):
			l.pos++
		case c == '-' && l.at(l.pos+1) == '-':
			if i := strings.IndexByte(l.sql[l.pos:], '\n'); i >= 0 {
				l.pos += i + 1
			} else {
				l.pos = len(l.sql)
			}
		case c == '/' && l.at(l.pos+1) == '*':
			if i := strings.Index(l.sql[l.pos+2:], "*/"); i >= 0 {
				l.pos += 2 + i + 2
			} else {
				l.pos = len(l.sql)
			}
		default:
			return l.scan()
		}
	}
	return sqlToken{}
}

// at returns the byte at i, or 0 past the end.
func (l *sqlLexer) at(i int) byte {
	if i < len(l.sql) {
		return l.sql[i]
	}
	return 0
}

// scan reads the token that starts at l.pos.
func (l *sqlLexer) scan() sqlToken {
	start := l.pos
	c := l.sql[start]
	kind := tPunct
	switch {
	case c == '\'':
		kind = tString
		l.quoted(c)
	case c == '"' || c == '`':
		kind = tQuoted
		l.quoted(c)
	case c == '[':
		kind = tQuoted
		if i := strings.IndexByte(l.sql[start:], ']'); i >= 0 {
			l.pos = start + i + 1
		} else {
			l.pos = len(l.sql)
		}
	case (c == 'x' || c == 'X') && l.at(start+1) == '\'':
		kind = tBlob
		l.pos++
		l.quoted('\'')
	case isIDStart(c):
		kind = tWord
		l.pos++
		l.skipID()
	case isDigit(c) || c == '.' && isDigit(l.at(start+1)):
		kind = tNumber
		l.pos++
		for l.pos < len(l.sql) {
			c := l.sql[l.pos]
			if (c == '+' || c == '-') && (l.sql[l.pos-1]|0x20) == 'e' || c == '.' || isIDChar(c) {
				l.pos++
				continue
			}
			break
		}
	case c == '?':
		kind = tVar
		l.pos++
		for l.pos < len(l.sql) && isDigit(l.sql[l.pos]) {
			l.pos++
		}
	case (c == ':' || c == '@' || c == '$' || c == '#') && isIDChar(l.at(start+1)):
		kind = tVar
		l.pos++
		l.skipID()
	default:
		// One byte; a UTF-8 sequence is an identifier, so c is ASCII here.
		l.pos++
	}
	return sqlToken{kind: kind, text: l.sql[start:l.pos], pos: start}
}

// quoted skips a token quoted by q, at l.pos, where a doubled q stands for itself.
func (l *sqlLexer) quoted(q byte) {
	i := l.pos + 1
	for {
		j := strings.IndexByte(l.sql[i:], q)
		if j < 0 {
			l.pos = len(l.sql)
			return
		}
		i += j + 1
		if l.at(i) != q {
			l.pos = i
			return
		}
		i++
	}
}

func (l *sqlLexer) skipID() {
	for l.pos < len(l.sql) && isIDChar(l.sql[l.pos]) {
		l.pos++
	}
}

// SQLite's character classes: whitespace is ASCII and not \v, and every byte of a UTF-8
// sequence may be part of an identifier.
func isSpace(c byte) bool   { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isIDStart(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' || c == '_' || c >= 0x80 }
func isIDChar(c byte) bool  { return isIDStart(c) || isDigit(c) || c == '$' }

// lowerASCII and upperASCII map ASCII letters only, as SQLite folds case
// (strings.ToUpper would also map, say, the long s to S).
func lowerASCII(s string) string { return mapASCII(s, 'A', 'Z') }
func upperASCII(s string) string { return mapASCII(s, 'a', 'z') }

// mapASCII flips the case of every byte of s in lo..hi.
func mapASCII(s string, lo, hi byte) string {
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}

// equalFold compares ASCII case-insensitively, as SQLite compares keywords and names
// (strings.EqualFold would also fold, say, the Kelvin sign to k).
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
