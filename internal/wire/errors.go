package wire

import (
	"errors"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// ErrMalformed is matched by every decoding failure of ReadMessage, including
// a frame longer than MaxFrameSize, but not by I/O errors.
var ErrMalformed = errors.New("hiqlite: malformed RPC message")

// An error crosses the wire as its Error() text and the parts of its tree
// that the receiver can rebuild (encoding.ErrorTable): SQLite errors and
// codes, the typed errors and the sentinels of replication.ResultErrors,
// and the errors of a node (package nodeerr) below. Whatever else the tree held (an os error
// under an I/O error, a caller's own type) arrives as text only.

// Part kinds of a node's errors; replication.ResultErrors has the others.
// The numbers are protocol: never reuse one.
const (
	kindNotLeaderAt    = 4 // *nodeerr.NotLeaderError: leader id, leader address
	kindNotLeader      = 16
	kindNoLeader       = 17
	kindClosed         = 18
	kindTxIdle         = 19
	kindLeadershipLost = 26
	kindLockLost       = 29 // the extensions' errors, for remote clients
	kindLockHeld       = 30
	kindListenerClosed = 31
	kindOutcomeUnknown = 32
	kindNotVisible     = 33
)

// nodeErrors is the error table of every message.
var nodeErrors = replication.ResultErrors.With(
	encoding.ErrorPart{Kind: kindNotLeaderAt,
		Match: func(err error) bool { e, ok := err.(*nodeerr.NotLeaderError); return ok && e != nil },
		Append: func(b []byte, err error) []byte {
			e := err.(*nodeerr.NotLeaderError)
			return encoding.AppendString(encoding.AppendString(b, e.LeaderID), e.LeaderAddr)
		},
		Decode: func(d *encoding.Decoder) error {
			id := d.String()
			addr := d.String()
			return &nodeerr.NotLeaderError{LeaderID: id, LeaderAddr: addr}
		}},
	encoding.ErrorPart{Kind: kindNotLeader, Sentinel: nodeerr.ErrNotLeader},
	encoding.ErrorPart{Kind: kindNoLeader, Sentinel: nodeerr.ErrNoLeader},
	encoding.ErrorPart{Kind: kindClosed, Sentinel: nodeerr.ErrClosed},
	encoding.ErrorPart{Kind: kindTxIdle, Sentinel: nodeerr.ErrTxIdle},
	encoding.ErrorPart{Kind: kindLeadershipLost, Sentinel: nodeerr.ErrLeadershipLost},
	encoding.ErrorPart{Kind: kindLockLost, Sentinel: extensions.ErrLockLost},
	encoding.ErrorPart{Kind: kindLockHeld, Sentinel: extensions.ErrLockHeld},
	encoding.ErrorPart{Kind: kindListenerClosed, Sentinel: extensions.ErrListenerClosed},
	encoding.ErrorPart{Kind: kindOutcomeUnknown, Sentinel: nodeerr.ErrOutcomeUnknown},
	encoding.ErrorPart{Kind: kindNotVisible, Sentinel: nodeerr.ErrNotVisible},
)

func appendError(b []byte, err error) []byte { return nodeErrors.AppendError(b, err) }
