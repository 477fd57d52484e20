package extensions

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Errors of the locks.
var (
	// ErrLockLost: the lease ended (it expired, or was released) before the
	// call; the lock may be held by another waiter now.
	ErrLockLost = errors.New("hiqlite: lock lease lost")
	// ErrLockHeld: TryLock found the lock held.
	ErrLockHeld = errors.New("hiqlite: lock is held")
)

// abandonTimeout bounds how long a Lock whose context ended keeps trying to
// take its request out of the queue.
const abandonTimeout = 5 * time.Second

// watch is this node's view of one of its lock requests, by waiter id:
// granted closes when the machine grants the lock to it, lost when it no
// longer holds the lease or its place in the queue. The machine updates it
// under its lock as it applies commands; the requester only waits on the
// channels.
type watch struct {
	name     string
	active   bool // its OpAcquire was applied here (guarded by Machine.mu)
	token    uint64
	granted  chan struct{}
	lost     chan struct{}
	lostOnce sync.Once
}

// grant records the lease's token and closes granted (Machine.mu held).
func (w *watch) grant(token uint64) {
	if w.token != 0 {
		return
	}
	w.token = token
	close(w.granted)
}

func (w *watch) lose() { w.lostOnce.Do(func() { close(w.lost) }) }

// watch registers a lock request of this node before it is sent.
func (m *Machine) watch(id uint64, name string) *watch {
	w := &watch{name: name, granted: make(chan struct{}), lost: make(chan struct{})}
	m.mu.Lock()
	if m.shutdown != nil {
		w.lose()
	} else {
		m.watchers[id] = w
	}
	m.mu.Unlock()
	return w
}

// Shutdown ends every lock request of this node with err: the node is
// closing and can neither wait nor renew.
func (m *Machine) Shutdown(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shutdown = err
	for id, w := range m.watchers {
		w.lose()
		delete(m.watchers, id)
	}
}

// closedErr is the error of Shutdown, if it was called.
func (m *Machine) closedErr() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.shutdown
}

func (m *Machine) unwatch(id uint64) {
	m.mu.Lock()
	delete(m.watchers, id)
	m.mu.Unlock()
}

// grantedToken returns the token of a granted watch.
func (m *Machine) grantedToken(w *watch) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return w.token
}

// reconcileWatchers brings the local requests in line with a restored
// state (Machine.mu held).
func (m *Machine) reconcileWatchers() {
	for id, w := range m.watchers {
		if !w.active {
			continue // its request is not applied yet
		}
		ls := m.locks[w.name]
		switch {
		case ls != nil && ls.holder == id:
			w.grant(ls.token)
		case ls != nil && ls.queued(id) >= 0:
		default:
			w.lose()
			delete(m.watchers, id)
		}
	}
}

// Lock waits until it holds lock name and returns its lease, which expires
// ttl after it was granted, by the cache group leader's clock, unless
// renewed. Waiters are served first in, first out. When ctx ends first,
// Lock takes its request out of the queue before it returns ctx's error.
func Lock(ctx context.Context, r Replicator, name string, ttl time.Duration) (*Lease, error) {
	return acquire(ctx, r, name, ttl, true)
}

// TryLock is Lock without waiting: when the lock is held (or has
// waiters) it returns ErrLockHeld.
func TryLock(ctx context.Context, r Replicator, name string, ttl time.Duration) (*Lease, error) {
	return acquire(ctx, r, name, ttl, false)
}

func acquire(ctx context.Context, r Replicator, name string, ttl time.Duration, wait bool) (*Lease, error) {
	if name == "" {
		return nil, errors.New("hiqlite: lock: the name must not be empty")
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("hiqlite: lock %q: ttl %v is shorter than 1ms", name, ttl)
	}
	m := r.Machine()
	id := rand.Uint64() | 1 // never 0, which means "free"
	w := m.watch(id, name)
	l := &Lease{r: r, w: w, name: name, id: id, ttl: ttl}
	sent := time.Now()
	res, err := r.Replicate(ctx, Command{Op: OpAcquire, Cache: name, ID: id, TTL: int64(ttl), Wait: wait}, true)
	if err != nil {
		l.abandon(ctx)
		return nil, err
	}
	switch {
	case res.OK:
		l.token = res.Token
		l.arm(sent)
		return l, nil
	case !res.Queued:
		m.unwatch(id)
		return nil, fmt.Errorf("%w: %q", ErrLockHeld, name)
	}
	select {
	case <-w.granted:
	case <-w.lost:
		m.unwatch(id)
		if err := m.closedErr(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("hiqlite: lock %q: the request left the queue: %w", name, ErrLockLost)
	case <-ctx.Done():
		l.abandon(ctx)
		return nil, ctx.Err()
	}
	// Granted while queued, at a time this node only learns later: a
	// renewal starts a lease whose end this node can bound by its own clock.
	l.token = m.grantedToken(w)
	if err := l.Renew(ctx); err != nil {
		l.abandon(ctx)
		return nil, err
	}
	return l, nil
}

// Lease is a held lock. Its Token is a fencing token: it strictly grows
// with each grant of the lock (and across all locks), so a store that
// remembers the largest token it saw can refuse a late holder.
//
// The lease ends when it is released, or when ttl passes without a renewal
// by the cache group leader's clock. Lost is closed when this node sees it
// end, or, sooner, when ttl has passed on this node's clock since the
// request that granted or last renewed the lease was sent: the leader
// cannot have ended the lease earlier, provided the clocks of the nodes
// run at the same rate and agree to well within ttl.
//
// mu guards timer.
type Lease struct {
	r     Replicator
	w     *watch
	name  string
	id    uint64
	token uint64
	ttl   time.Duration

	mu    sync.Mutex
	timer *time.Timer
}

// Name is the lock's name.
func (l *Lease) Name() string { return l.name }

// Token is the lease's fencing token.
func (l *Lease) Token() uint64 { return l.token }

// Lost is closed when the lease ends: lost, expired, or released by Unlock.
func (l *Lease) Lost() <-chan struct{} { return l.w.lost }

// arm starts (or restarts) the local deadline: ttl after sent.
func (l *Lease) arm(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := time.Until(sent.Add(l.ttl))
	if l.timer == nil {
		l.timer = time.AfterFunc(d, l.w.lose)
	} else {
		l.timer.Reset(d)
	}
}

func (l *Lease) isLost() bool {
	select {
	case <-l.w.lost:
		return true
	default:
		return false
	}
}

// Renew extends the lease to ttl from now. It fails with ErrLockLost when
// the lease already ended; other errors leave it running to its deadline.
func (l *Lease) Renew(ctx context.Context) error {
	if l.isLost() {
		return fmt.Errorf("hiqlite: renew lock %q: %w", l.name, ErrLockLost)
	}
	sent := time.Now()
	res, err := l.r.Replicate(ctx, Command{Op: OpRenew, Cache: l.name, ID: l.id, Token: l.token, TTL: int64(l.ttl)}, true)
	if err != nil {
		return fmt.Errorf("hiqlite: renew lock %q: %w", l.name, err)
	}
	if !res.OK {
		l.w.lose()
		return fmt.Errorf("hiqlite: renew lock %q: %w", l.name, ErrLockLost)
	}
	l.arm(sent)
	if l.isLost() {
		// The local deadline passed while the renewal was on its way.
		return fmt.Errorf("hiqlite: renew lock %q: %w", l.name, ErrLockLost)
	}
	return nil
}

// Unlock releases the lock (to its first waiter) and closes Lost. It
// reports ErrLockLost when the lease had ended before; call it even then,
// as a lease that only this node's clock ended still holds the lock until
// the leader's clock ends it.
func (l *Lease) Unlock(ctx context.Context) error {
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
	}
	l.mu.Unlock()
	lost := l.isLost()
	res, err := l.r.Replicate(ctx, Command{Op: OpRelease, Cache: l.name, ID: l.id, Token: l.token}, true)
	l.w.lose()
	l.r.Machine().unwatch(l.id)
	switch {
	case err != nil:
		return fmt.Errorf("hiqlite: unlock %q: %w", l.name, err)
	case !res.OK || lost:
		return fmt.Errorf("hiqlite: unlock %q: %w", l.name, ErrLockLost)
	}
	return nil
}

// abandon takes a request whose caller gave up out of the queue (or
// releases the lock if it was granted meanwhile), then forgets it.
func (l *Lease) abandon(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
	defer cancel()
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
	}
	l.mu.Unlock()
	// Token 0 releases whatever this request holds, or its place in line.
	l.r.Replicate(ctx, Command{Op: OpRelease, Cache: l.name, ID: l.id}, true)
	l.w.lose()
	l.r.Machine().unwatch(l.id)
}
