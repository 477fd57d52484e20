package replication

import "github.com/ncruces/go-sqlite3"

// Text is a client's SQL text as the driver reads it before a prepare: lexed once, its
// first statement classified by its keywords, and, for ReadText, the BEGIN and COMMIT of
// a text that is one whole transaction taken off. The classification of the statement
// prepared from it (Prepared) reuses what was read, so a write's text is classified once
// on the client; the state machine still checks what it applies (checkReplicable), as it
// must not trust a client.
type Text struct {
	// SQL is the text to prepare and run: the statements between BEGIN and COMMIT of
	// a text that is one whole transaction, else the text itself.
	SQL string
	// Atomic is set when the text is one whole transaction (see TransactionBody).
	Atomic bool

	first   parsedStmt // the first statement of SQL
	class   Class      // what ClassifySQL says of SQL
	decided bool       // the keywords decided class; else only a prepare can
}

// ReadText reads sql as conn's prepare does: as TransactionBody, then ClassifySQL of the
// first statement of what runs. A text that TransactionBody refuses, or whose statement
// ClassifySQL refuses, returns that error; Atomic is set whenever sql is one whole
// transaction, even when its body is refused.
func ReadText(sql string) (Text, error) {
	body, first, atomic, err := transactionBody(sql)
	t := Text{SQL: sql, Atomic: atomic, first: first}
	if err != nil {
		return t, err
	}
	if atomic {
		t.SQL = body
	}
	t.class, t.decided, err = t.first.classifySQL()
	return t, err
}

// ClassifyText is ClassifySQL keeping what it read, for Prepared: sql is not taken for a
// whole transaction (it is the tail of a text, after its first statement).
func ClassifyText(sql string) (Text, error) {
	t := Text{SQL: sql, first: parseStatement(sql)}
	var err error
	t.class, t.decided, err = t.first.classifySQL()
	return t, err
}

// Class returns what ClassifySQL says of the first statement of t.SQL.
func (t *Text) Class() Class { return t.class }

// Prepared returns what Classify says of stmt, prepared from t.SQL, without reading the
// text again: where the keywords decided, their class, and otherwise Read when SQLite
// reports the statement read-only, else Write.
func (t *Text) Prepared(stmt *sqlite3.Stmt) Class {
	if t.decided {
		return t.class
	}
	if stmt.ReadOnly() {
		return Class{Kind: Read}
	}
	return Class{Kind: Write}
}

// WriteByKeyword reports whether the first keyword of the statement alone makes it a
// write: INSERT, UPDATE, DELETE, REPLACE, CREATE, DROP, ALTER, ANALYZE, REINDEX or
// VACUUM. Such a statement that the read connection cannot prepare may still run on the
// writer: the reader's schema may lag (REINDEX and ANALYZE of an index it does not know
// yet fail there without SQLite's usual schema reload), so the writer must prepare it,
// and reports any real error.
func (t *Text) WriteByKeyword() bool {
	if !t.decided || t.class.Kind != Write || t.class.Pragma != "" {
		return false
	}
	switch upperASCII(t.first.tok(0).Text) {
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "ANALYZE", "REINDEX", "VACUUM":
		return true
	}
	return false
}
