package sqltext

// Statement is where one statement of a text lies.
type Statement struct {
	// Start and End are the offsets of its first token and just past its last; they
	// are equal for an empty statement (a ";" alone, or only white space and comments).
	Start, End int
	// Next is the offset just past the ";" that ends it, or the end of the text (its
	// first NUL, if it has one) when no ";" does.
	Next int
	// Terminated is false for a statement no ";" ends: the last of a text that lacks
	// one, or one whose string, quoted name, comment or trigger body is still open.
	Terminated bool
}

// Empty reports whether the statement holds no token.
func (s Statement) Empty() bool { return s.Start == s.End }

// Where a statement ends: a ";" outside a CREATE TRIGGER body, and in a body the ";"
// after its END. These are the states of SQLite's sqlite3_complete.
const (
	sStart   = iota // before the first token
	sNormal         // in a statement
	sExplain        // after EXPLAIN, before CREATE
	sCreate         // after CREATE [TEMP]
	sTrigger        // in a CREATE TRIGGER
	sSemi           // in a CREATE TRIGGER, after a ";"
	sEnd            // in a CREATE TRIGGER, after "; END"
)

// First reads the first statement of text that is not empty, as SQLite's prepare does:
// the empty statements before it are skipped. It calls visit, unless it is nil, with
// each token of that statement (the ";" that ends it excluded), and nothing after it is
// read. The result is empty when text holds no statement.
func First(text string, visit func(Token)) Statement {
	var lx Lexer
	lx.reset(text)
	for {
		st := lx.statement(visit)
		if !st.Empty() || !st.Terminated {
			return st
		}
	}
}

// IsBlank reports whether text holds no statement: only white space, comments and
// semicolons.
func IsBlank(text string) bool {
	return First(text, nil).Empty()
}

// Split cuts the complete statements off the front of text, each with the ";" that ends
// it and the white space and comments before it (so an empty statement is kept too), and
// returns them and the rest, which holds at most one statement that no ";" ends yet.
func Split(text string) (stmts []string, rest string) {
	var lx Lexer
	lx.reset(text)
	from := 0
	for {
		st := lx.statement(nil)
		if !st.Terminated {
			return stmts, text[from:]
		}
		stmts = append(stmts, text[from:st.Next])
		from = st.Next
	}
}

// statement reads the statement that starts at l.pos, leaving l.pos just past the ";"
// that ends it.
func (l *Lexer) statement(visit func(Token)) Statement {
	state := sStart
	st := Statement{Start: -1}
	for {
		t := l.Next()
		if t.Kind == EOF {
			st.Next = len(l.sql)
			break
		}
		semi := t.IsPunct(';')
		done := false
		switch state {
		case sStart:
			switch {
			case semi:
				done = true
			case t.Is("EXPLAIN"):
				state = sExplain
			case t.Is("CREATE"):
				state = sCreate
			default:
				state = sNormal
			}
		case sNormal:
			done = semi
		case sExplain:
			switch {
			case semi:
				done = true
			case t.Is("CREATE"):
				state = sCreate
			case t.Is("EXPLAIN"), t.Is("TEMP"), t.Is("TEMPORARY"), t.Is("TRIGGER"), t.Is("END"):
				state = sNormal
			}
		case sCreate:
			switch {
			case semi:
				done = true
			case t.Is("TEMP"), t.Is("TEMPORARY"):
			case t.Is("TRIGGER"):
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
			case t.Is("END"):
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
			st.Next = t.End()
			st.Terminated = true
			if st.Start < 0 {
				st.Start, st.End = t.Pos, t.Pos
			}
			return st
		}
		if st.Start < 0 {
			st.Start = t.Pos
		}
		st.End = t.End()
		if visit != nil {
			visit(t)
		}
	}
	if st.Start < 0 {
		st.Start, st.End = st.Next, st.Next
	}
	return st
}
