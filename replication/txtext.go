package replication

// TransactionBody reads a text that is one whole transaction, as schema and migration
// texts often are: BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE] [TRANSACTION], then statements,
// then COMMIT or END [TRANSACTION]. It returns the statements between, as written, and
// ok; the caller runs them as one write, which is atomic as the transaction was (the mode
// of BEGIN makes no difference to a text that runs at once, in one piece).
//
// A text whose first statement is not BEGIN, or that is BEGIN alone, is not such a text:
// ok is false and err nil. A text that begins a transaction any other way (no COMMIT at
// its end, a ROLLBACK, a second BEGIN or COMMIT inside) is refused: SQLite would leave a
// transaction open, or end it in the middle of the text, and a replicated write cannot
// stay open after its text.
//
// Statements are split by the classifier's lexer, so a ";" in a string, a comment or a
// CREATE TRIGGER body does not end one.
func TransactionBody(sql string) (body string, ok bool, err error) {
	body, _, ok, err = transactionBody(sql)
	return body, ok, err
}

// transactionBody is TransactionBody that also returns the first statement of what runs:
// of body when ok, of sql otherwise. The caller classifies it without lexing it again.
func transactionBody(sql string) (body string, first parsedStmt, ok bool, err error) {
	first = parseStatement(sql)
	if !first.tok(0).Is("BEGIN") {
		return "", first, false, nil
	}
	notBody := first
	rest := sql[first.end:]
	if IsBlank(rest) {
		return "", notBody, false, nil
	}
	var last, bodyFirst parsedStmt
	lastAt := -1 // where last starts in sql
	for off := first.end; ; {
		st := parseStatement(sql[off:])
		if st.n == 0 {
			break
		}
		if lastAt >= 0 {
			if k := last.control(); k == Begin || k == Commit || k == Rollback {
				return "", notBody, false, transactionRefusal(sql, k)
			}
		}
		if lastAt < 0 {
			bodyFirst = st // offsets in sql[first.end:], which is where body starts
		}
		last, lastAt = st, off+st.start
		off += st.end
	}
	if lastAt < 0 {
		return "", notBody, false, nil
	}
	if k := last.control(); k != Commit {
		if k == Rollback || k == Begin {
			return "", notBody, false, transactionRefusal(sql, k)
		}
		return "", notBody, false, &RefusedError{SQL: sql, Reason: "a text that begins a transaction must end it with COMMIT: a replicated write cannot stay open after its text (use db.BeginTx to keep a transaction open)"}
	}
	body = sql[first.end:lastAt]
	if bodyFirst.start+first.end == lastAt {
		// The COMMIT is the only statement after BEGIN: the body has none.
		bodyFirst = parsedStmt{}
	}
	return body, bodyFirst, true, nil
}

// control returns the Kind of st, as classify decides it by keywords, when st begins or
// ends a transaction (Begin, Commit or Rollback), and Read otherwise.
func (st *parsedStmt) control() Kind {
	if c, _, _ := st.classify(); c.Kind == Begin || c.Kind == Commit || c.Kind == Rollback {
		return c.Kind
	}
	return Read
}

func transactionRefusal(sql string, k Kind) error {
	return &RefusedError{SQL: sql, Reason: "a text that begins a transaction runs as one atomic write from BEGIN to a final COMMIT; " + k.String() + " elsewhere in it is not supported (run the statements of its own, or use db.BeginTx)"}
}
