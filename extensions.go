package hiqlite

import (
	"context"
	"errors"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/cluster"
	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/replication"
)

// The extensions (notifications, caches, locks), reachable from a Node and, through
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

// Cache is a named cache of byte values, replicated to every node; get one
// with Node.Cache. Get and Len are local and never touch the network;
// writes go through the cache group's leader and return once applied on
// this node (read your writes).
//
// Expiry is decided by the cache group leader's clock and replicated: an
// entry with a TTL disappears from every node at the same point of the
// group's log, once the leader's clock has passed its deadline. Until this
// node has applied that point, its Get still returns the entry.
//
// Values are copied in and out: the caller owns the slices it passes and
// gets. A Set whose reply is lost (the group's leader died, or stopped
// answering and another was elected) is sent again to the leader; the
// other writes, whose results depend on what they find, are not: they fail
// with ErrOutcomeUnknown, as soon as a new leader is known or when the
// timeout ends. A Cache is safe for concurrent use.
//
// A remote client's Cache (Client.Cache) runs each method on a member:
// Get and Len read the member's replica, over the network.
type Cache struct {
	c *extensions.Cache
	n *cluster.Node // counts the reads in the metrics
	r *remoteCache  // a remote client's: c and n are nil
}

// Name is the cache's name.
func (c *Cache) Name() string {
	if c.r != nil {
		return c.r.name
	}
	return c.c.Name()
}

// Get returns the value of key in this node's replica, and whether there is
// an entry. On a remote client a failure to ask the member reads as no
// entry; GetContext reports it.
func (c *Cache) Get(key string) ([]byte, bool) {
	v, ok, _ := c.GetContext(context.Background(), key)
	return v, ok
}

// GetContext is Get with a context, and the error of a remote client that
// could not ask its member (on a node it never fails).
func (c *Cache) GetContext(ctx context.Context, key string) ([]byte, bool, error) {
	if c.r != nil {
		return c.r.get(ctx, key)
	}
	v, ok := c.c.Get(key)
	c.n.CountCacheGet(ok)
	return v, ok, nil
}

// Len returns how many entries this node's replica holds (-1 when a remote
// client could not ask its member).
func (c *Cache) Len() int {
	if c.r != nil {
		return c.r.len(context.Background())
	}
	return c.c.Len()
}

// Set stores value under key; with ttl > 0 the entry expires ttl after the
// leader applied the Set, and with ttl 0 it does not expire. A negative ttl
// is an error. A Set may be applied twice (sent again after a lost reply):
// the value is the same, but if another Set of key was applied in between,
// this value comes back, and a ttl starts again.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if c.r != nil {
		_, err := c.r.call(ctx, "cache.set", key, value, int64(ttl))
		return err
	}
	return c.c.Set(ctx, key, value, ttl)
}

// Delete removes key and reports whether it existed.
func (c *Cache) Delete(ctx context.Context, key string) (bool, error) {
	if c.r != nil {
		res, err := c.r.call(ctx, "cache.delete", key)
		return err == nil && res.Applied, err
	}
	return c.c.Delete(ctx, key)
}

// CompareAndSet stores value under key (with ttl, as Set) only if the
// entry holds old, or, when old is nil, only if there is no entry (an
// empty non-nil old matches an empty value). It reports whether it stored.
func (c *Cache) CompareAndSet(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if c.r != nil {
		res, err := c.r.call(ctx, "cache.cas", key, old, value, int64(ttl))
		return err == nil && res.Applied, err
	}
	return c.c.CompareAndSet(ctx, key, old, value, ttl)
}

// GetAndDelete removes key and returns the value it had, and whether there
// was an entry.
func (c *Cache) GetAndDelete(ctx context.Context, key string) ([]byte, bool, error) {
	if c.r != nil {
		res, err := c.r.call(ctx, "cache.getdel", key)
		if err != nil {
			return nil, false, err
		}
		return extValue(res), res.Applied, nil
	}
	return c.c.GetAndDelete(ctx, key)
}

// Clear removes every entry of the cache.
func (c *Cache) Clear(ctx context.Context) error {
	if c.r != nil {
		_, err := c.r.call(ctx, "cache.clear")
		return err
	}
	return c.c.Clear(ctx)
}

// Lease is a held distributed lock; get one with Node.Lock or Node.TryLock.
// Its Token is a fencing token: it strictly grows with each grant of the
// lock (and across all locks), so a store that remembers the largest token
// it saw can refuse a late holder.
//
// The lease ends when it is released, or when its ttl passes without a
// renewal, by the cache group leader's clock. Lost is closed when this node
// sees it end, or, sooner, when ttl has passed on this node's clock since
// the request that granted or last renewed the lease was sent: the leader
// cannot have ended the lease earlier, provided the clocks of the nodes run
// at the same rate and agree to well within ttl. A Lease is safe for
// concurrent use.
//
// A remote client's lease (Client.Lock) is held by a member for a session
// of its own; Lost is closed by the client's clock (ttl after the request
// that granted or last renewed it was sent), by Unlock, or when Renew or
// Unlock find it lost.
type Lease struct {
	l *extensions.Lease
	r *remoteLease
}

// Name is the lock's name.
func (l *Lease) Name() string {
	if l.r != nil {
		return l.r.name
	}
	return l.l.Name()
}

// Token is the lease's fencing token.
func (l *Lease) Token() uint64 {
	if l.r != nil {
		return l.r.token
	}
	return l.l.Token()
}

// Lost is closed when the lease ends: lost, expired, or released by Unlock.
func (l *Lease) Lost() <-chan struct{} {
	if l.r != nil {
		return l.r.lost
	}
	return l.l.Lost()
}

// Renew extends the lease to its ttl from now. It fails with ErrLockLost
// when the lease already ended; other errors leave it running to its
// deadline.
func (l *Lease) Renew(ctx context.Context) error {
	if l.r != nil {
		return l.r.renew(ctx)
	}
	return l.l.Renew(ctx)
}

// Unlock releases the lock (to its first waiter) and closes Lost. It
// reports ErrLockLost when the lease had ended before; call it even then,
// as a lease that only this node's clock ended still holds the lock until
// the leader's clock ends it.
func (l *Lease) Unlock(ctx context.Context) error {
	if l.r != nil {
		return l.r.unlock(ctx)
	}
	return l.l.Unlock(ctx)
}

// Notification is one message on a channel, sent with Node.Notify or raised
// by hiqlite_notify in a write that committed; a Listener returns them.
type Notification struct {
	Channel string
	Payload string
	// Index is the Raft index of the write that raised it: once a read on
	// the node sees that index, it sees the write.
	Index uint64
	// Missed counts the notifications of the listener's channel that were
	// dropped just before this one because the listener's buffer was full.
	Missed uint64
}

// Listener receives the notifications of one channel on one node; get one
// with Node.Listen. Read them with Next from one goroutine at a time; Close
// may be called from any. A remote client's listener (Client.Listen) is a
// listener of its member, read over a session of its own.
type Listener struct {
	l *extensions.Listener
	r *remoteListener
}

// Channel is the channel the listener receives.
func (l *Listener) Channel() string {
	if l.r != nil {
		return l.r.channel
	}
	return l.l.Channel()
}

// Next returns the next notification, waiting for one until ctx ends. Once
// the listener is closed (by Close, by the end of the context given to
// Node.Listen, or by the node closing), Next returns what it still holds,
// then an error matching ErrListenerClosed.
func (l *Listener) Next(ctx context.Context) (Notification, error) {
	if l.r != nil {
		return l.r.next(ctx)
	}
	n, err := l.l.Next(ctx)
	return Notification(n), err
}

// Close stops the listener. It is idempotent.
func (l *Listener) Close() error {
	if l.r != nil {
		return l.r.close()
	}
	return l.l.Close()
}

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
func (n *Node) Cache(name string) *Cache {
	return &Cache{c: extensions.NewCache(n.c.Cache(), name), n: n.c}
}

// Lock waits until this node holds the distributed lock name, and returns
// the lease. Waiters from all nodes are served first in, first out; when
// ctx ends first, the request leaves the queue. The lease's Token strictly
// grows from one holder to the next (a fencing token); the lease expires
// ttl after it was granted or last renewed (by the leader's clock), so the
// lock of a crashed holder frees itself; Lost is closed when the lease ends.
func (n *Node) Lock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	return lease(extensions.Lock(ctx, n.c.Cache(), name, ttl))
}

// TryLock is Lock without waiting: it fails with ErrLockHeld when the lock is
// held or waited for.
func (n *Node) TryLock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	return lease(extensions.TryLock(ctx, n.c.Cache(), name, ttl))
}

func lease(l *extensions.Lease, err error) (*Lease, error) {
	if err != nil {
		return nil, err
	}
	return &Lease{l: l}, nil
}

// ListenOption configures Node.Listen.
type ListenOption func(*listenOptions)

type listenOptions struct{ buffer int }

// ListenBuffer sets how many notifications a listener holds for its reader
// (default 256, at most 1,048,576). When it is full the oldest is dropped, and the next
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
	l, err := n.c.Notifications().Listen(ctx, channel, o.buffer)
	if err != nil {
		return nil, err
	}
	return &Listener{l: l}, nil
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
