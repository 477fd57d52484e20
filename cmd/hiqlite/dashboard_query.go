package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/ncruces/go-sqlite3"
)

// queryResult is the answer of POST /api/query: a statement's columns and
// rows, or the error it ended with.
type queryResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	// Truncated says that only the first maxQueryRows rows are in Rows.
	Truncated bool `json:"truncated,omitempty"`
	// Wrote says that the statement went to the leader as a write.
	Wrote bool   `json:"wrote,omitempty"`
	Error string `json:"error,omitempty"`
}

// runQuery runs one statement on db with consistency cons. It runs it in
// a read-only transaction first: a statement that writes fails there with
// sqlite3.READONLY, whatever its text looks like, before it does anything.
// It then runs again in a transaction that writes, through the leader, and
// the result says it wrote. A linearizable statement first waits for the
// read index on the same connection, so the transaction reads at least
// what the cluster had committed when the statement was received. A
// statement that fails changes nothing: its transaction rolls back.
func runQuery(ctx context.Context, db *sql.DB, text string, args []any, cons hiqlite.Consistency) (queryResult, error) {
	if isBlankSQL(text) {
		return queryResult{}, errors.New("no SQL statement to run")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return queryResult{}, err
	}
	defer conn.Close()
	if cons == hiqlite.Linearizable {
		var one int
		if err := conn.QueryRowContext(hiqlite.WithConsistency(ctx, hiqlite.Linearizable), "SELECT 1").Scan(&one); err != nil {
			return queryResult{}, err
		}
	}
	res, err := runInTx(ctx, conn, text, args, false)
	if err != nil && isReadOnlyErr(err) {
		res, err = runInTx(ctx, conn, text, args, true)
		res.Wrote = true
	}
	return res, err
}

// runInTx runs text in a transaction of conn, read-only unless write, and
// commits it if it wrote.
func runInTx(ctx context.Context, conn *sql.Conn, text string, args []any, write bool) (queryResult, error) {
	res := queryResult{Columns: []string{}, Rows: [][]any{}}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: !write})
	if err != nil {
		return res, err
	}
	defer tx.Rollback() // after Commit, a no-op
	rows, err := tx.QueryContext(ctx, text, args...)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return res, err
	}
	if cols != nil { // nil for a statement that returns no rows
		res.Columns = cols
	}
	size := 0 // what the rows kept so far take in JSON, about
	for rows.Next() {
		if len(res.Rows) == maxQueryRows || size >= maxQueryBytes {
			res.Truncated = true
			break
		}
		vals := make([]any, len(res.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return res, err
		}
		for i, v := range vals {
			vals[i] = jsonValue(v)
			size += valueSize(vals[i])
		}
		res.Rows = append(res.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if err := rows.Close(); err != nil {
		return res, err
	}
	if write {
		return res, tx.Commit()
	}
	return res, nil
}

// jsonValue turns a column value into one JSON shows faithfully: a BLOB
// as SQLite writes it, X'...'.
func jsonValue(v any) any {
	switch v := v.(type) {
	case []byte:
		return "X'" + strings.ToUpper(hex.EncodeToString(v)) + "'"
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return v
}

// valueSize is about what v takes in the JSON answer.
func valueSize(v any) int {
	if s, ok := v.(string); ok {
		return len(s) + 2
	}
	return 16
}

// isReadOnlyErr reports whether err is a write refused in a read-only
// transaction.
func isReadOnlyErr(err error) bool { return errors.Is(err, sqlite3.READONLY) }
