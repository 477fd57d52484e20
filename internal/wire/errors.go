package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// Errors of a node. They live here, below package cluster, so that the codec
// can carry them without an import cycle; cluster's variables of the same
// names are these values.
var (
	ErrNotLeader = errors.New("hiqlite: not the leader")
	ErrNoLeader  = errors.New("hiqlite: no leader")
	ErrClosed    = errors.New("hiqlite: node closed")
	ErrTxIdle    = errors.New("hiqlite: write transaction rolled back after being idle")
	// ErrLeadershipLost: the leader lost its leadership after a write
	// entered its log and before it committed, so the write may or may not
	// be applied. Writes that carry an origin are resolved, never guessed.
	ErrLeadershipLost = errors.New("hiqlite: leadership lost while replicating the write")
)

// ErrMalformed is matched by every decoding failure of ReadMessage, including
// a frame longer than MaxFrameSize, but not by I/O errors.
var ErrMalformed = errors.New("hiqlite: malformed RPC message")

// NotLeaderError is ErrNotLeader with the leader this node knows of, so a
// follower can send the request there at once. errors.Is(err, ErrNotLeader)
// matches it.
type NotLeaderError struct {
	LeaderID   string // "" if unknown
	LeaderAddr string // host:port for Raft and RPC; "" if unknown
}

func (e *NotLeaderError) Error() string {
	switch {
	case e.LeaderID == "" && e.LeaderAddr == "":
		return ErrNotLeader.Error()
	case e.LeaderAddr == "":
		return ErrNotLeader.Error() + "; the leader is " + e.LeaderID
	case e.LeaderID == "":
		return ErrNotLeader.Error() + "; the leader is at " + e.LeaderAddr
	}
	return ErrNotLeader.Error() + "; the leader is " + e.LeaderID + " at " + e.LeaderAddr
}

// Unwrap returns ErrNotLeader.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// An error crosses the wire as its Error() text and the parts of its tree
// that the receiver can rebuild: SQLite errors and codes, the typed errors
// and the sentinels below. The receiver returns the single part itself when
// its text is the whole text (so err == ErrClosed still holds), and otherwise
// a remoteError with the original text that unwraps to every part, so that
// errors.Is and errors.As match exactly what they matched on the sender.
// Whatever else the tree held (an os error under an I/O error, a caller's
// own type) arrives as text only.

// Part kinds on the wire. The numbers are protocol: never reuse one.
const (
	kindSQLiteCode    = 1 // sqlite3.ErrorCode: code
	kindSQLiteExtCode = 2 // sqlite3.ExtendedErrorCode: code
	kindSQLiteError   = 3 // *sqlite3.Error: extended code, message
	kindNotLeaderAt   = 4 // *NotLeaderError: leader id, leader address
	kindRefusedStmt   = 5 // *replication.RefusedError: SQL, reason
	// Sentinels, no fields.
	kindNotLeader      = 16
	kindNoLeader       = 17
	kindClosed         = 18
	kindTxIdle         = 19
	kindTxAborted      = 20
	kindStopped        = 21
	kindRefused        = 22
	kindCanceled       = 23
	kindDeadline       = 24
	kindCorruptCommand = 25
	kindLeadershipLost = 26
	kindNotApplied     = 27
	kindTooLarge       = 28
)

// sentinels maps the sentinel kinds to their values.
var sentinels = [...]struct {
	kind byte
	err  error
}{
	{kindNotLeader, ErrNotLeader},
	{kindNoLeader, ErrNoLeader},
	{kindClosed, ErrClosed},
	{kindTxIdle, ErrTxIdle},
	{kindTxAborted, replication.ErrTxAborted},
	{kindStopped, replication.ErrStopped},
	{kindRefused, replication.ErrRefused},
	{kindCanceled, context.Canceled},
	{kindDeadline, context.DeadlineExceeded},
	{kindCorruptCommand, replication.ErrCorruptCommand},
	{kindLeadershipLost, ErrLeadershipLost},
	{kindNotApplied, replication.ErrNotApplied},
	{kindTooLarge, replication.ErrTooLarge},
}

const (
	maxParts = 16 // parts kept per error; more are dropped (their text stays)
	maxDepth = 64 // how deep the encoder walks an error tree
)

// remoteError is an error received from another node: its text as the sender
// printed it, and the parts of it that could be rebuilt here.
type remoteError struct {
	msg  string
	errs []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.errs }

// partKind returns the kind err is sent as, or 0 if it is not a part.
func partKind(err error) byte {
	switch e := err.(type) {
	case sqlite3.ErrorCode:
		return kindSQLiteCode
	case sqlite3.ExtendedErrorCode:
		return kindSQLiteExtCode
	case *sqlite3.Error:
		if e != nil {
			return kindSQLiteError
		}
		return 0
	case *NotLeaderError:
		if e != nil {
			return kindNotLeaderAt
		}
		return 0
	case *replication.RefusedError:
		if e != nil {
			return kindRefusedStmt
		}
		return 0
	}
	for _, s := range sentinels {
		// Cannot panic: the sentinels' dynamic types are comparable, and
		// == only panics on two values of one uncomparable type.
		if err == s.err {
			return s.kind
		}
	}
	return 0
}

// collectParts appends the parts of err's tree, in the order errors.Is
// visits them, without descending into a part.
func collectParts(parts []error, err error, depth int) []error {
	if err == nil || depth > maxDepth || len(parts) >= maxParts {
		return parts
	}
	if partKind(err) != 0 {
		return append(parts, err)
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return collectParts(parts, u.Unwrap(), depth+1)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			parts = collectParts(parts, e, depth+1)
		}
	}
	return parts
}

// appendError encodes err: a presence byte, then its text and its parts.
func appendError(b []byte, err error) []byte {
	if err == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendString(b, err.Error())
	var buf [4]error
	parts := collectParts(buf[:0], err, 0)
	b = binary.AppendUvarint(b, uint64(len(parts)))
	for _, p := range parts {
		k := partKind(p)
		b = append(b, k)
		switch e := p.(type) {
		case sqlite3.ErrorCode:
			b = binary.AppendUvarint(b, uint64(e))
		case sqlite3.ExtendedErrorCode:
			b = binary.AppendUvarint(b, uint64(e))
		case *sqlite3.Error:
			b = binary.AppendUvarint(b, uint64(e.ExtendedCode()))
			b = appendString(b, sqliteMessage(e))
		case *NotLeaderError:
			b = appendString(b, e.LeaderID)
			b = appendString(b, e.LeaderAddr)
		case *replication.RefusedError:
			b = appendString(b, e.SQL)
			b = appendString(b, e.Reason)
		}
	}
	return b
}

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

func (d *decoder) error() error {
	switch v := d.byte(); v {
	case 0:
		return nil
	case 1:
	default:
		d.fail("bad error presence %d", v)
		return nil
	}
	text := d.string()
	n := d.count(1) // a part takes at least its kind
	if n > maxParts {
		d.fail("%d error parts", n)
	}
	var parts []error
	if n > 0 && d.err == nil {
		parts = make([]error, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		parts = append(parts, d.part())
	}
	if d.err != nil {
		return nil
	}
	if n == 1 && parts[0].Error() == text {
		return parts[0]
	}
	return &remoteError{msg: text, errs: parts}
}

func (d *decoder) part() error {
	k := d.byte()
	switch k {
	case kindSQLiteCode:
		c := d.uvarint()
		if c > 0xff {
			d.fail("sqlite error code %d", c)
		}
		return sqlite3.ErrorCode(c)
	case kindSQLiteExtCode:
		c := d.uvarint()
		if c > 0xffff {
			d.fail("sqlite extended error code %d", c)
		}
		return sqlite3.ExtendedErrorCode(c)
	case kindSQLiteError:
		c := d.uvarint()
		msg := d.string()
		if c > 0xffff {
			d.fail("sqlite extended error code %d", c)
		}
		if d.err != nil {
			return nil
		}
		return newSQLiteError(sqlite3.ExtendedErrorCode(c), msg)
	case kindNotLeaderAt:
		id := d.string()
		addr := d.string()
		return &NotLeaderError{LeaderID: id, LeaderAddr: addr}
	case kindRefusedStmt:
		sql := d.string()
		reason := d.string()
		return &replication.RefusedError{SQL: sql, Reason: reason}
	}
	for _, s := range sentinels {
		if s.kind == k {
			return s.err
		}
	}
	d.fail("unknown error kind %d", k)
	return nil
}
