package replication

import (
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/sqltext"
)

// Result is the outcome of one statement as the state machine saw it: the
// rows it returned (RETURNING, or a read inside a write transaction), the
// connection's LastInsertRowID and Changes, or its SQL error.
type Result struct {
	Columns      []string
	DeclTypes    []string
	Rows         [][]any // each value nil, int64, float64, string or []byte
	LastInsertID int64
	RowsAffected int64
	Err          error // a *sqlite3.Error (or sqlite3.ErrorCode) from SQLite, or a refusal
}

// BindArgs binds args to stmt as the database/sql face passes them: a named
// argument binds every parameter spelled :name, @name or $name; an unnamed
// one binds its ordinal.
func BindArgs(stmt *sqlite3.Stmt, args []Arg) error {
	for _, a := range args {
		if a.Name == "" {
			if err := bindValue(stmt, a.Ordinal, a.Value); err != nil {
				return err
			}
			continue
		}
		found := false
		for _, prefix := range [...]string{":", "@", "$"} {
			if i := stmt.BindIndex(prefix + a.Name); i != 0 {
				found = true
				if err := bindValue(stmt, i, a.Value); err != nil {
					return err
				}
			}
		}
		if !found {
			return fmt.Errorf("hiqlite: named argument %q matches no parameter of the statement", a.Name)
		}
	}
	return nil
}

func bindValue(stmt *sqlite3.Stmt, i int, v any) error {
	switch v := v.(type) {
	case nil:
		return stmt.BindNull(i)
	case int64:
		return stmt.BindInt64(i, v)
	case float64:
		return stmt.BindFloat(i, v)
	case string:
		return stmt.BindText(i, v)
	case []byte:
		if v == nil {
			return stmt.BindNull(i)
		}
		return stmt.BindBlob(i, v)
	}
	return fmt.Errorf("hiqlite: cannot bind argument %d of type %T", i, v)
}

// ColumnValue returns column i of the current row as nil, int64, float64,
// string or a copy of the blob.
func ColumnValue(stmt *sqlite3.Stmt, i int) any {
	switch stmt.ColumnType(i) {
	case sqlite3.INTEGER:
		return stmt.ColumnInt64(i)
	case sqlite3.FLOAT:
		return stmt.ColumnFloat(i)
	case sqlite3.TEXT:
		return stmt.ColumnText(i)
	case sqlite3.BLOB:
		return stmt.ColumnBlob(i, []byte{})
	}
	return nil
}

// runStmt binds and steps stmt to completion, collecting its rows. The caller
// resets the statement.
func runStmt(stmt *sqlite3.Stmt, args []Arg, res *Result) error {
	if err := BindArgs(stmt, args); err != nil {
		return err
	}
	n := stmt.ColumnCount()
	if n > 0 {
		res.Columns = make([]string, n)
		res.DeclTypes = make([]string, n)
		for i := range n {
			res.Columns[i] = stmt.ColumnName(i)
			res.DeclTypes[i] = stmt.ColumnDeclType(i)
		}
	}
	for stmt.Step() {
		row := make([]any, n)
		for i := range row {
			row[i] = ColumnValue(stmt, i)
		}
		res.Rows = append(res.Rows, row)
	}
	return stmt.Err()
}

// isNodeFault reports whether err means this node, not the statement, is at
// fault (I/O, disk full, corruption, out of memory): the same command would
// succeed elsewhere, so applying past it would make this node diverge.
//
// Only such a fault may stop the state machine; anything a command can
// provoke (a constraint, SQLITE_AUTH from the guard, "no such table", a
// schema error, TOOBIG, ...) is that command's error, alike on every node.
// A command cannot provoke the codes below: the pragmas that could (a low
// max_page_count for SQLITE_FULL, query_only for SQLITE_READONLY) and
// ATTACH/VACUUM INTO (SQLITE_CANTOPEN) are refused by ClassifySQL. SQLITE_NOMEM
// from a statement that wanted too much memory is an *OutOfMemoryError: the
// statement's error.
// SQLITE_CORRUPT_VTAB is a command's error (see isVTabCorrupt).
func isNodeFault(err error) bool {
	if err == nil {
		return false // the common case, without errors.As's allocation
	}
	var oom *OutOfMemoryError
	if errors.As(err, &oom) {
		return false // a statement that asked for too much memory (oom.go)
	}
	var code sqlite3.ErrorCode
	if !errors.As(err, &code) || isVTabCorrupt(err) {
		return false
	}
	switch code {
	case sqlite3.IOERR, sqlite3.FULL, sqlite3.CORRUPT, sqlite3.NOMEM,
		sqlite3.CANTOPEN, sqlite3.NOTADB, sqlite3.READONLY, sqlite3.PROTOCOL,
		sqlite3.INTERNAL, sqlite3.INTERRUPT, sqlite3.NOLFS, sqlite3.PERM:
		return true
	}
	return false
}

// IsBlank reports whether s holds no statement, only white space, comments and
// semicolons, as a statement's tail does after its last statement.
func IsBlank(s string) bool { return sqltext.IsBlank(s) }
