package hiqlite

import (
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// Errors returned by the driver, matched with errors.Is. SQL errors are not
// among them: those stay *sqlite3.Error (or wrap a sqlite3.ErrorCode), so
// errors.Is(err, sqlite3.CONSTRAINT) and errors.Is(err, sqlite3.BUSY) work.
var (
	// ErrNotLeader: a write reached a node that is not the leader.
	ErrNotLeader = nodeerr.ErrNotLeader
	// ErrNoLeader: no leader was elected before the request's deadline (its
	// context's or _timeout, whichever came first); the error also matches
	// the context's error.
	ErrNoLeader = nodeerr.ErrNoLeader
	// ErrNotInCluster: the node (with _join) is not part of a cluster yet;
	// the error that wraps it says why (no seed answered, a wrong secret,
	// too few voters for _expect). It is also ErrNoLeader.
	ErrNotInCluster = nodeerr.ErrNotInCluster
	// ErrNodeIDInUse: the node's _node is the id of a live member of the
	// cluster it tried to join; it gave up joining, and the cluster was
	// left alone. Restart it with another _node.
	ErrNodeIDInUse = nodeerr.ErrNodeIDInUse
	// ErrClosed: the node was closed.
	ErrClosed = nodeerr.ErrClosed
	// ErrLocked: another process holds the DATA_DIR.
	ErrLocked = nodeerr.ErrLocked
	// ErrRefused: the statement cannot be replicated (ATTACH, VACUUM INTO,
	// PRAGMA journal_mode=..., temporary objects, ...), or it would change
	// an object of hiqlite (_hiqlite*; such a refusal matches sqlite3.AUTH
	// too).
	ErrRefused = nodeerr.ErrRefused
	// ErrTxAborted: the write transaction no longer exists on the writer;
	// SQLite rolled it back (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)), or the
	// node lost leadership.
	ErrTxAborted = nodeerr.ErrTxAborted
	// ErrTxIdle: the write transaction was rolled back after _txidle.
	ErrTxIdle = nodeerr.ErrTxIdle
	// ErrStopped: the node's state machine stopped after a fault of the
	// node itself (I/O error, disk full, corruption) that could make it
	// diverge; see Node.Fault. Nothing a command does stops it.
	ErrStopped = nodeerr.ErrStopped
	// ErrNotApplied: a write (or COMMIT) was settled as not applied after
	// its reply was lost or its leader failed, and never will be; it is
	// safe to run it again.
	ErrNotApplied = nodeerr.ErrNotApplied
	// ErrUnreadableLog: the node's Raft log (DATA_DIR/raft) cannot be read,
	// so the node cannot start; the error names the directory. Moving it
	// aside makes a cluster member be rebuilt by the leader and a single
	// node continue from its database (ARCHITECTURE.md, crash story).
	ErrUnreadableLog = nodeerr.ErrUnreadableLog
	// ErrOutcomeUnknown: the node could not learn whether a write was
	// applied before its deadline (for example no leader was elected in
	// time). Check with a read before running it again.
	ErrOutcomeUnknown = nodeerr.ErrOutcomeUnknown
	// ErrNotVisible: a read (or Notify) on a node waited for a write or
	// COMMIT that node acknowledged, and the node had not applied it when
	// the wait ended (the context's deadline, or _timeout). The write
	// happened and must not be run again; the read did not run.
	ErrNotVisible = nodeerr.ErrNotVisible
	// ErrTooLarge: a write, or a transaction's writes together, would make
	// one Raft command larger than MaxCommandBytes (63 MiB). It is refused
	// on the node where it was issued, before anything is sent or logged;
	// nothing was applied. Store larger values in several rows, or outside
	// the database.
	ErrTooLarge = nodeerr.ErrTooLarge
)

// MaxCommandBytes is the largest write one command can carry: an
// autocommit write's statements and arguments, or all the writes of a
// transaction together (see ErrTooLarge).
const MaxCommandBytes = replication.MaxCommandBytes
