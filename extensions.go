package hiqlite

import (
	"context"
	"errors"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/replication"
)

// The extensions of SPEC §9, reachable from a Node and, through
// (*sql.Conn).Raw, from a driver connection (see NodeConn).

// NodeConn is implemented by the driver connections of hiqlite; it reaches
// the node, and so the extensions, from database/sql:
//
//	err := sqlConn.Raw(func(dc any) error {
//		node := dc.(hiqlite.NodeConn).Node()
//		return node.Notify(ctx, "jobs", "42")
//	})
type NodeConn interface {
	Node() *Node
}

var _ NodeConn = (*conn)(nil)

type (
	// Cache is a named cache of byte values, replicated to every node;
	// see Node.Cache.
	Cache = extensions.Cache
	// Lease is a held distributed lock; see Node.Lock.
	Lease = extensions.Lease
	// Notification is one message on a channel; see Node.Listen.
	Notification = extensions.Notification
	// Listener receives the notifications of one channel on one node;
	// see Node.Listen.
	Listener = extensions.Listener
)

// Errors of the extensions.
var (
	// ErrListenerClosed ends a Listener.
	ErrListenerClosed = extensions.ErrListenerClosed
	// ErrLockLost: a lease ended before Renew or Unlock.
	ErrLockLost = extensions.ErrLockLost
	// ErrLockHeld: TryLock found the lock held.
	ErrLockHeld = extensions.ErrLockHeld
)

// Cache returns the cache called name (caches exist as soon as they are
// written). Its entries live in the memory of every node, replicated by a
// second Raft group on the node's port: Get is local, writes go through
// that group's leader. Expiry follows the leader's clock and is
// replicated, so every node holds the same entries; a follower may return
// an entry for as long as it has not applied the leader's expiry of it
// (usually milliseconds). The caches survive the restart of any minority
// of the nodes, but not of the whole cluster: they are caches.
func (n *Node) Cache(name string) *Cache { return extensions.NewCache(n.c.Cache(), name) }

// Lock waits until this node holds the distributed lock name, and returns
// the lease. Waiters from all nodes are served first in, first out; when
// ctx ends first, the request leaves the queue. The lease's Token strictly
// grows from one holder to the next (a fencing token); the lease expires
// ttl after it was granted or last renewed (by the leader's clock), so the
// lock of a crashed holder frees itself; Lost is closed when the lease ends.
func (n *Node) Lock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	return extensions.Lock(ctx, n.c.Cache(), name, ttl)
}

// TryLock is Lock without waiting: it fails with ErrLockHeld when the lock is
// held or waited for.
func (n *Node) TryLock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	return extensions.TryLock(ctx, n.c.Cache(), name, ttl)
}

// ListenOption configures Node.Listen.
type ListenOption func(*listenOptions)

type listenOptions struct{ buffer int }

// ListenBuffer sets how many notifications a listener holds for its reader
// (default 256). When it is full the oldest is dropped, and the next
// notification the reader gets counts it in Missed.
func ListenBuffer(n int) ListenOption { return func(o *listenOptions) { o.buffer = n } }

// Notify sends payload on channel to the listeners of every node. It goes
// through the Raft log like a write, so every node delivers it in log order
// with the notifications that SQL writes raise with hiqlite_notify, and it
// returns once this node has delivered it to its own listeners.
//
// Like a write without a session, a Notify from a follower whose reply is
// lost fails with an error saying its outcome is unknown: it may have been
// delivered.
func (n *Node) Notify(ctx context.Context, channel, payload string) error {
	return n.c.Notify(ctx, channel, payload)
}

// Listen subscribes to channel on this node. The listener gets every
// notification of channel that this node delivers after Listen returns, in
// log order: those sent with Notify on any node, and those raised in SQL
// by hiqlite_notify(channel, payload) in a write (or a trigger), delivered
// if and when that write commits. It stops when ctx ends or on Close.
//
// A slow reader never holds up the node: the listener's buffer is bounded
// (ListenBuffer), and a full buffer drops its oldest notification and
// counts it in the Missed field of the next one the reader gets. A node
// that catches up by installing a snapshot delivers nothing for the writes
// the snapshot covers.
func (n *Node) Listen(ctx context.Context, channel string, opts ...ListenOption) (*Listener, error) {
	var o listenOptions
	for _, opt := range opts {
		opt(&o)
	}
	return n.c.Notifications().Listen(ctx, channel, o.buffer)
}

// registerNotify installs hiqlite_notify on a read connection, where it
// fails: a notification is raised by a write only. The driver sends every
// statement that calls it to the writer; a read reaches it only through a
// view.
func registerNotify(db *sqlite3.Conn) error {
	fail := func(ctx sqlite3.Context, args ...sqlite3.Value) {
		ctx.ResultError(errReadNotify)
	}
	for _, n := range []int{1, 2} {
		if err := db.CreateFunction(replication.NotifyFunc, n, sqlite3.INNOCUOUS, fail); err != nil {
			return err
		}
	}
	return nil
}

var errReadNotify = errors.New("hiqlite: hiqlite_notify raises a notification only in a write (INSERT, UPDATE, DELETE, a trigger, or a SELECT that calls it), not in a read such as a view")
