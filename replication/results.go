package replication

import (
	"context"
	"errors"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Session results, the results of a session's last KindExec that the state
// machine records in _hiqlite_sessions for a retry (sessions.go), and so
// keeps in the database and its snapshots. Version 1:
//
//	version  1 byte  resultsV1
//	count    uvarint, then each result (AppendResult)
//
// The encoding is deterministic: equal results give equal bytes on every
// node. The RPC carries results in the same layout (package internal/wire),
// with the errors of a node added to the error table.
const resultsV1 = 1

// resultsFormat names the format in errors.
const resultsFormat = "session results"

// Error part kinds. The numbers are protocol: never reuse one. Package
// internal/wire adds the errors of a node (4, 16 to 19, 26).
const (
	partSQLiteCode    = 1 // sqlite3.ErrorCode: code
	partSQLiteExtCode = 2 // sqlite3.ExtendedErrorCode: code
	partSQLiteError   = 3 // *sqlite3.Error: extended code, message
	partRefusedStmt   = 5 // *RefusedError: SQL, reason
	// Sentinels, no fields.
	partTxAborted      = 20
	partStopped        = 21
	partRefused        = 22
	partCanceled       = 23
	partDeadline       = 24
	partCorruptCommand = 25
	partNotApplied     = 27
	partTooLarge       = 28
)

// ResultErrors is the table of the errors a result carries: SQLite's and
// the state machine's. Package internal/wire extends it.
var ResultErrors = encoding.NewErrorTable(
	encoding.ErrorPart{Kind: partSQLiteCode,
		Match:  func(err error) bool { _, ok := err.(sqlite3.ErrorCode); return ok },
		Append: func(b []byte, err error) []byte { return encoding.AppendUvarint(b, uint64(err.(sqlite3.ErrorCode))) },
		Decode: func(d *encoding.Decoder) error {
			c := d.Uvarint()
			if c > 0xff {
				d.Fail("sqlite error code %d", c)
			}
			return sqlite3.ErrorCode(c)
		}},
	encoding.ErrorPart{Kind: partSQLiteExtCode,
		Match: func(err error) bool { _, ok := err.(sqlite3.ExtendedErrorCode); return ok },
		Append: func(b []byte, err error) []byte {
			return encoding.AppendUvarint(b, uint64(err.(sqlite3.ExtendedErrorCode)))
		},
		Decode: func(d *encoding.Decoder) error {
			c := d.Uvarint()
			if c > 0xffff {
				d.Fail("sqlite extended error code %d", c)
			}
			return sqlite3.ExtendedErrorCode(c)
		}},
	encoding.ErrorPart{Kind: partSQLiteError,
		Match: func(err error) bool { e, ok := err.(*sqlite3.Error); return ok && e != nil },
		Append: func(b []byte, err error) []byte {
			e := err.(*sqlite3.Error)
			b = encoding.AppendUvarint(b, uint64(e.ExtendedCode()))
			return encoding.AppendString(b, sqliteMessage(e))
		},
		Decode: func(d *encoding.Decoder) error {
			c := d.Uvarint()
			msg := d.String()
			if c > 0xffff {
				d.Fail("sqlite extended error code %d", c)
			}
			if d.Err() != nil {
				return nil
			}
			return newSQLiteError(sqlite3.ExtendedErrorCode(c), msg)
		}},
	encoding.ErrorPart{Kind: partRefusedStmt,
		Match: func(err error) bool { e, ok := err.(*RefusedError); return ok && e != nil },
		Append: func(b []byte, err error) []byte {
			e := err.(*RefusedError)
			return encoding.AppendString(encoding.AppendString(b, e.SQL), e.Reason)
		},
		Decode: func(d *encoding.Decoder) error {
			sql := d.String()
			reason := d.String()
			return &RefusedError{SQL: sql, Reason: reason}
		}},
	encoding.ErrorPart{Kind: partTxAborted, Sentinel: nodeerr.ErrTxAborted},
	encoding.ErrorPart{Kind: partStopped, Sentinel: nodeerr.ErrStopped},
	encoding.ErrorPart{Kind: partRefused, Sentinel: nodeerr.ErrRefused},
	encoding.ErrorPart{Kind: partCanceled, Sentinel: context.Canceled},
	encoding.ErrorPart{Kind: partDeadline, Sentinel: context.DeadlineExceeded},
	encoding.ErrorPart{Kind: partCorruptCommand, Sentinel: ErrCorruptCommand},
	encoding.ErrorPart{Kind: partNotApplied, Sentinel: nodeerr.ErrNotApplied},
	encoding.ErrorPart{Kind: partTooLarge, Sentinel: nodeerr.ErrTooLarge},
)

// sqliteMessage returns what e.Error() prints after its code's text: the
// message SQLite gave, then the text of the OS error under it, if any.
func sqliteMessage(e *sqlite3.Error) string {
	s := e.Error()
	rest, ok := strings.CutPrefix(s, e.ExtendedCode().Error())
	if !ok {
		return s // cannot happen; the receiver then falls back to text
	}
	return strings.TrimPrefix(rest, ": ")
}

// AppendResult appends r, its error encoded with errs:
//
//	columns, decl types   count, then each string
//	rows                  count, then each row: count, then each value
//	last insert id, rows affected   varints
//	error                 see encoding.ErrorTable.AppendError
func AppendResult(b []byte, r *Result, errs *encoding.ErrorTable) ([]byte, error) {
	b = encoding.AppendStrings(b, r.Columns)
	b = encoding.AppendStrings(b, r.DeclTypes)
	b = encoding.AppendUvarint(b, uint64(len(r.Rows)))
	for _, row := range r.Rows {
		b = encoding.AppendUvarint(b, uint64(len(row)))
		for _, v := range row {
			var err error
			if b, err = encoding.AppendValue(b, v); err != nil {
				return nil, err
			}
		}
	}
	b = encoding.AppendVarint(b, r.LastInsertID)
	b = encoding.AppendVarint(b, r.RowsAffected)
	return errs.AppendError(b, r.Err), nil
}

// DecodeResult reads what AppendResult wrote into r.
func DecodeResult(d *encoding.Decoder, r *Result, errs *encoding.ErrorTable) {
	r.Columns = d.Strings()
	r.DeclTypes = d.Strings()
	n := d.Count(1) // a row takes at least its length byte
	if n > 0 {
		r.Rows = make([][]any, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		nv := d.Count(1) // a value takes at least its tag
		if nv == 0 {
			continue // nil, like every empty slice here
		}
		row := make([]any, nv)
		for j := 0; j < nv && d.Err() == nil; j++ {
			row[j] = d.Value()
		}
		r.Rows[i] = row
	}
	r.LastInsertID = d.Varint()
	r.RowsAffected = d.Varint()
	r.Err = errs.DecodeError(d)
}

// marshalResults encodes results as the state machine records them.
func marshalResults(results []Result) ([]byte, error) {
	b := []byte{resultsV1}
	b = encoding.AppendUvarint(b, uint64(len(results)))
	for i := range results {
		var err error
		if b, err = AppendResult(b, &results[i], ResultErrors); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// errCorruptResults is matched by every decoding failure of
// unmarshalResults but a newer version (encoding.ErrUnknownVersion).
var errCorruptResults = errors.New("hiqlite: corrupt session results")

// unmarshalResults decodes what marshalResults encoded. Blobs in the
// results alias b.
func unmarshalResults(b []byte) ([]Result, error) {
	d := encoding.NewDecoder(b, errCorruptResults)
	d.Version(resultsFormat, resultsV1)
	n := d.Count(4) // a result takes at least 4 bytes
	var out []Result
	if n > 0 {
		out = make([]Result, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		DecodeResult(d, &out[i], ResultErrors)
	}
	d.Done()
	if d.Err() != nil {
		return nil, d.Err()
	}
	return out, nil
}
