package sqltext

import "strings"

// Kind is the kind of a Token.
type Kind uint8

const (
	EOF    Kind = iota // no more tokens
	Word               // a keyword or a bare identifier
	Quoted             // an identifier in "", [] or ``
	String             // a string literal in ''
	Number             // a numeric literal
	Blob               // a blob literal x'..'
	Var                // a parameter: ?NNN, :name, @name, $name, #name
	Punct              // any other byte: ; ( ) . = + - ...
)

// Token is one token of a text.
type Token struct {
	Kind Kind
	Text string // as written; for an unterminated quote, up to the end of the input
	Pos  int    // byte offset in the text
}

// End returns the offset just past t.
func (t Token) End() int { return t.Pos + len(t.Text) }

// Is reports whether t is the bare keyword kw (given in upper case), in any case.
func (t Token) Is(kw string) bool {
	return t.Kind == Word && EqualFold(t.Text, kw)
}

// IsPunct reports whether t is the punctuation byte c.
func (t Token) IsPunct(c byte) bool {
	return t.Kind == Punct && t.Text[0] == c
}

// Name returns the value of a token SQLite takes as a name: a bare word, a quoted
// identifier, or a string (which SQLite accepts where it expects a name).
func (t Token) Name() (string, bool) {
	switch t.Kind {
	case Word:
		return t.Text, true
	case Quoted, String:
		return Unquote(t.Text), true
	}
	return "", false
}

// Unquote returns the value of a quoted token: its text without the quotes, and with a
// doubled quote standing for one (none in [x]). An unterminated token runs to its end.
func Unquote(s string) string {
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

// Lexer splits a text into tokens. It skips white space and comments. Its zero value
// reads an empty text; NewLexer reads a given one.
type Lexer struct {
	sql string
	pos int
}

// NewLexer returns a lexer of text, which ends, as SQLite's input does, at its first
// NUL byte.
func NewLexer(text string) *Lexer {
	l := &Lexer{}
	l.reset(text)
	return l
}

func (l *Lexer) reset(text string) {
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	l.sql = text
	l.pos = 0
}

// Next returns the next token, or a token of kind EOF at the end of the text.
func (l *Lexer) Next() Token {
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
	return Token{Pos: l.pos}
}

// at returns the byte at i, or 0 past the end.
func (l *Lexer) at(i int) byte {
	if i < len(l.sql) {
		return l.sql[i]
	}
	return 0
}

// scan reads the token that starts at l.pos.
func (l *Lexer) scan() Token {
	start := l.pos
	c := l.sql[start]
	kind := Punct
	switch {
	case c == '\'':
		kind = String
		l.quoted(c)
	case c == '"' || c == '`':
		kind = Quoted
		l.quoted(c)
	case c == '[':
		kind = Quoted
		if i := strings.IndexByte(l.sql[start:], ']'); i >= 0 {
			l.pos = start + i + 1
		} else {
			l.pos = len(l.sql)
		}
	case (c == 'x' || c == 'X') && l.at(start+1) == '\'':
		kind = Blob
		l.pos++
		l.quoted('\'')
	case isIDStart(c):
		kind = Word
		l.pos++
		l.skipID()
	case isDigit(c) || c == '.' && isDigit(l.at(start+1)):
		kind = Number
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
		kind = Var
		l.pos++
		for l.pos < len(l.sql) && isDigit(l.sql[l.pos]) {
			l.pos++
		}
	case (c == ':' || c == '@' || c == '$' || c == '#') && isIDChar(l.at(start+1)):
		kind = Var
		l.pos++
		l.skipID()
	default:
		// One byte; a UTF-8 sequence is an identifier, so c is ASCII here.
		l.pos++
	}
	return Token{Kind: kind, Text: l.sql[start:l.pos], Pos: start}
}

// quoted skips a token quoted by q, at l.pos, where a doubled q stands for itself.
func (l *Lexer) quoted(q byte) {
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

func (l *Lexer) skipID() {
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

// LowerASCII and UpperASCII map ASCII letters only, as SQLite folds case
// (strings.ToUpper would also map, say, the long s to S).
func LowerASCII(s string) string { return mapASCII(s, 'A', 'Z') }

// UpperASCII: see LowerASCII.
func UpperASCII(s string) string { return mapASCII(s, 'a', 'z') }

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

// EqualFold compares ASCII case-insensitively, as SQLite compares keywords and names
// (strings.EqualFold would also fold, say, the Kelvin sign to k).
func EqualFold(a, b string) bool {
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
