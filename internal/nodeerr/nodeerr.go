// Package nodeerr holds the errors a hiqlite node returns to its callers:
// the sentinels matched with errors.Is and the typed NotLeaderError. It is
// a leaf, imported by every package that returns or matches them (the
// state machine, the RPC codec, gossip, the node) so that each error has
// one home and one value; package hiqlite re-exports them for users.
//
// How an error crosses the wire (its part kinds) is not here: the codecs
// of replication and internal/wire own that and refer to these values.
package nodeerr

import "errors"

// Errors of leadership and of the node's life.
var (
	// ErrNotLeader: a write reached a node that is not the leader.
	ErrNotLeader = errors.New("hiqlite: not the leader")
	// ErrNoLeader: no leader was known before the request's deadline.
	ErrNoLeader = errors.New("hiqlite: no leader")
	// ErrClosed: the node (or the part of it that was asked) was closed.
	ErrClosed = errors.New("hiqlite: node closed")
	// ErrLocked: another process holds the node's data directory.
	ErrLocked = errors.New("hiqlite: data dir locked")
	// ErrLeadershipLost: the leader lost its leadership after a write
	// entered its log and before it committed, so the write may or may not
	// be applied. Writes that carry an origin are resolved, never guessed.
	ErrLeadershipLost = errors.New("hiqlite: leadership lost while replicating the write")
	// ErrNotInCluster: this node, in cluster mode, is not part of a cluster
	// yet (its seeds do not answer or refuse it, or not enough voters are
	// in gossip to bootstrap). Errors that wrap it are also ErrNoLeader,
	// and say why.
	ErrNotInCluster = errors.New("hiqlite: not part of a cluster yet")
	// ErrNodeIDInUse: the node's id is the id of a live member of the
	// cluster it tried to join. The node gave up joining; the cluster was
	// not touched. It lasts until the node restarts with another id.
	ErrNodeIDInUse = errors.New("hiqlite: node id in use by a live member")
	// ErrUnreadableLog: the node's Raft log (DATA_DIR/raft) cannot be read,
	// so the node cannot start. The error that wraps it names the
	// directory.
	ErrUnreadableLog = errors.New("hiqlite: the Raft log cannot be read")
)

// Errors of writes and transactions.
var (
	// ErrTxIdle ends a write transaction left idle longer than its idle
	// timeout.
	ErrTxIdle = errors.New("hiqlite: write transaction rolled back after being idle")
	// ErrTxAborted: the interactive transaction no longer exists on the
	// writer (rolled back by SQLite, by leadership loss, or by Close).
	ErrTxAborted = errors.New("hiqlite: transaction aborted")
	// ErrStopped: the state machine stopped applying after a fault that
	// could make this node diverge.
	ErrStopped = errors.New("hiqlite: state machine stopped")
	// ErrNotApplied: the write was not applied and never will be, because a
	// later write of its session or a check of its outcome was applied
	// first. It is safe to retry as a new write.
	ErrNotApplied = errors.New("hiqlite: the write was not applied (a later write of its session, or a check of its outcome, came first); it is safe to retry")
	// ErrOutcomeUnknown: the leader may or may not have applied a write
	// whose reply was lost. Check with a read before retrying.
	ErrOutcomeUnknown = errors.New("hiqlite: the write may or may not have been applied (its reply was lost and its outcome could not be learned)")
	// ErrNotVisible: a write (or COMMIT) was committed by the leader, but
	// the node it was issued on had not applied it when a read there (or
	// Notify) stopped waiting for it. The write happened: do not run it
	// again.
	ErrNotVisible = errors.New("hiqlite: the write was committed, but this node has not applied it yet")
	// ErrTooLarge is matched by the error of a write, or of a transaction's
	// statement, that would make one command larger than
	// replication.MaxCommandBytes (63 MiB; a test of replication keeps the
	// two in step).
	ErrTooLarge = errors.New("hiqlite: command exceeds the 63 MiB limit")
	// ErrRefused is matched by every refusal of a statement that cannot be
	// replicated.
	ErrRefused = errors.New("hiqlite: statement refused")
)

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
