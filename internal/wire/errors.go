package wire

import (
	"errors"

	"github.com/hiqlite/hiqlite/internal/encoding"
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
// that the receiver can rebuild (encoding.ErrorTable): SQLite errors and
// codes, the typed errors and the sentinels of replication.ResultErrors,
// and the errors of a node below. Whatever else the tree held (an os error
// under an I/O error, a caller's own type) arrives as text only.

// Part kinds of a node's errors; replication.ResultErrors has the others.
// The numbers are protocol: never reuse one.
const (
	kindNotLeaderAt    = 4 // *NotLeaderError: leader id, leader address
	kindNotLeader      = 16
	kindNoLeader       = 17
	kindClosed         = 18
	kindTxIdle         = 19
	kindLeadershipLost = 26
)

// nodeErrors is the error table of every message.
var nodeErrors = replication.ResultErrors.With(
	encoding.ErrorPart{Kind: kindNotLeaderAt,
		Match: func(err error) bool { e, ok := err.(*NotLeaderError); return ok && e != nil },
		Append: func(b []byte, err error) []byte {
			e := err.(*NotLeaderError)
			return encoding.AppendString(encoding.AppendString(b, e.LeaderID), e.LeaderAddr)
		},
		Decode: func(d *encoding.Decoder) error {
			id := d.String()
			addr := d.String()
			return &NotLeaderError{LeaderID: id, LeaderAddr: addr}
		}},
	encoding.ErrorPart{Kind: kindNotLeader, Sentinel: ErrNotLeader},
	encoding.ErrorPart{Kind: kindNoLeader, Sentinel: ErrNoLeader},
	encoding.ErrorPart{Kind: kindClosed, Sentinel: ErrClosed},
	encoding.ErrorPart{Kind: kindTxIdle, Sentinel: ErrTxIdle},
	encoding.ErrorPart{Kind: kindLeadershipLost, Sentinel: ErrLeadershipLost},
)

func appendError(b []byte, err error) []byte { return nodeErrors.AppendError(b, err) }
