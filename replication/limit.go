package replication

import (
	"strconv"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// MaxCommandBytes bounds the encoded size of one command: an autocommit
// write, or all the writes of a transaction, which commit as one Raft log
// entry. raft-wal refuses entries over 64 MiB (its segment.MaxEntrySize),
// and a refused append would cost the leader its leadership, so a write
// over this limit is refused on the node that sends it, before anything
// goes on the wire or into the log.
const MaxCommandBytes = 63 << 20

// TooLargeError is a write refused for its size. errors.Is(err,
// ErrTooLarge) matches it.
type TooLargeError struct {
	Size int // bytes of the write (with the transaction's earlier writes)
}

func (e *TooLargeError) Error() string {
	return "hiqlite: write of " + strconv.Itoa(e.Size) + " bytes exceeds the " + strconv.Itoa(MaxCommandBytes>>20) + " MiB limit of one command"
}

// Unwrap returns ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return nodeerr.ErrTooLarge }

// commandOverhead bounds the bytes of a command outside its statements:
// version, kind, time, seed, origin (its node id up to 255 bytes), flags
// and the statement count.
const commandOverhead = 2 + 4*10 + 2*10 + 255

// statementsSize is an upper bound of the bytes stmts add to an encoded
// command, without allocating.
func statementsSize(stmts []Statement) int {
	n := 0
	for i := range stmts {
		s := &stmts[i]
		n += 10 + len(s.SQL) + 1 + 10
		for _, a := range s.Args {
			n += 10 + len(a.Name) + 10 + 1 + 10
			switch v := a.Value.(type) {
			case string:
				n += len(v)
			case []byte:
				n += len(v)
			}
		}
	}
	return n
}

// StatementsSize is an upper bound of the bytes stmts add to an encoded
// command.
func StatementsSize(stmts []Statement) int { return statementsSize(stmts) }

// CheckSize refuses stmts when, added to earlier bytes of the same command
// (a transaction's writes so far), they would exceed MaxCommandBytes.
func CheckSize(earlier int, stmts []Statement) error {
	if n := earlier + commandOverhead + statementsSize(stmts); n > MaxCommandBytes {
		return &TooLargeError{Size: n - commandOverhead}
	}
	return nil
}
