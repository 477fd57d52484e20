package replication

import (
	"sync"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// sqlite3.Error has only unexported fields and no constructor, so a received
// SQLite error is rebuilt by SQLite itself: a private in-memory connection
// runs "SELECT hiqlite_rebuild_error()", an application-defined function that
// fails with the wanted extended code and message (Context.ResultError), and
// the statement's error is a real *sqlite3.Error. ncruces builds it from
// sqlite3_errmsg, trimming a leading "sqlite3: " and the code's own text, as
// it did on the sender; the result is checked (code, Error() text, no OS
// error, no SQL) and used only if it matches, so a message those trims would
// alter, or a code SQLite treats specially, falls back to an encoding.RemoteError with
// the same text that unwraps to the sqlite3.ExtendedErrorCode: errors.Is and
// the text still match, only errors.As to *sqlite3.Error does not.
//
// Not carried: Error.SQL() (the tail of a statement with a syntax error; the
// sender's statement is the receiver's too) and the OS error under an I/O
// error, whose text stays part of Error() but which does not unwrap.

// codeError is what the SQL function fails with. ResultError takes its
// message from Error() and its code from As; it must have no Is or Unwrap,
// so ResultError does not treat NOMEM or TOOBIG specially.
type codeError struct {
	code sqlite3.ExtendedErrorCode
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func (e *codeError) As(target any) bool {
	if p, ok := target.(*sqlite3.ExtendedErrorCode); ok {
		*p = e.code
		return true
	}
	return false
}

// errorBuilder owns the private connection.
//
// mu guards every field and serialises the connection's use: the SQL
// function reads next on the goroutine that holds mu and runs Step.
type errorBuilder struct {
	mu     sync.Mutex
	opened bool // conn and stmt were opened, or failed to open (both nil)
	conn   *sqlite3.Conn
	stmt   *sqlite3.Stmt
	next   codeError
}

// sqliteErrors lives for the process: one in-memory connection, opened on
// the first SQLite error received.
var sqliteErrors errorBuilder

// newSQLiteError returns the error a sender's *sqlite3.Error with this code
// and message (what follows the code's text in Error()) stands for.
func newSQLiteError(code sqlite3.ExtendedErrorCode, msg string) error {
	if msg == "" {
		// ncruces returns the bare code for an error without a message.
		return code
	}
	if e := sqliteErrors.build(code, msg); e != nil {
		return e
	}
	return &encoding.RemoteError{Msg: code.Error() + ": " + msg, Errs: []error{code}}
}

// rebuildable reports whether SQLite reports code from a function unchanged.
// ROW and DONE are not errors; NOMEM makes ncruces panic; the others that
// SQLite special-cases are caught by build's check.
func rebuildable(code sqlite3.ExtendedErrorCode) bool {
	p := code.Code()
	return p >= sqlite3.ERROR && p <= sqlite3.WARNING &&
		p != sqlite3.NOMEM && code != sqlite3.IOERR_NOMEM
}

func (b *errorBuilder) build(code sqlite3.ExtendedErrorCode, msg string) *sqlite3.Error {
	if !rebuildable(code) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.opened {
		b.opened = true
		b.open()
	}
	if b.stmt == nil {
		return nil
	}
	b.next = codeError{code: code, msg: msg}
	b.stmt.Step()
	err := b.stmt.Err()
	b.stmt.Reset()
	b.next = codeError{}
	e, ok := err.(*sqlite3.Error)
	if !ok || e.ExtendedCode() != code || e.Unwrap() != nil || e.SQL() != "" ||
		e.Error() != code.Error()+": "+msg {
		return nil
	}
	return e
}

// open sets conn and stmt, or leaves them nil if SQLite cannot be opened.
func (b *errorBuilder) open() {
	conn, err := sqlite3.OpenFlags(":memory:", sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return
	}
	err = conn.CreateFunction("hiqlite_rebuild_error", 0, 0, func(ctx sqlite3.Context, _ ...sqlite3.Value) {
		e := b.next // b.mu is held by build, which is stepping
		ctx.ResultError(&e)
	})
	if err != nil {
		conn.Close()
		return
	}
	stmt, _, err := conn.Prepare("SELECT hiqlite_rebuild_error()")
	if err != nil {
		conn.Close()
		return
	}
	b.conn, b.stmt = conn, stmt
}
