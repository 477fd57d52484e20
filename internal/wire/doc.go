// Package wire is the message codec of the RPC over which followers forward
// writes, write transactions, read-index and outcome requests to the leader.
//
// # Frames
//
// A connection carries frames: the uvarint length of the rest of the frame,
// a [Type] byte, then the message body. A length above [MaxFrameSize] is
// rejected before anything is allocated for it. [WriteMessage] and
// [AppendMessage] encode a [Message]; [ReadMessage] decodes one. A session is
// requests and responses in turn: each request gets its response type or an
// [ErrorResponse].
//
// # Values
//
// Arguments and row values are nil, int64, float64, string or []byte and
// arrive exactly as sent: float bits (NaN payloads included), an empty blob
// as a non-nil empty []byte, a nil []byte as a nil []byte. The primitives
// are package encoding's, shared with every other format (testdata/golden
// pins the bytes of each message type).
//
// # Errors
//
// An error (in [ErrorResponse] or in a [replication.Result]) crosses the wire
// as its Error() text plus the parts of its tree the receiver can rebuild:
// *sqlite3.Error, sqlite3.ErrorCode and sqlite3.ExtendedErrorCode values,
// *nodeerr.NotLeaderError, *replication.RefusedError, the sentinels of
// package nodeerr (ErrNotLeader, ErrNoLeader, ErrClosed, ErrTxIdle,
// ErrLeadershipLost, ErrTxAborted, ErrStopped, ErrRefused, ...),
// replication.ErrCorruptCommand,
// context.Canceled and context.DeadlineExceeded. The received error has the
// same text, and errors.Is and errors.As match it as they matched the
// original. A received *sqlite3.Error is a real one, made by SQLite on a
// private in-memory connection (replication/sqliteerr.go).
package wire
