package hiqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// Extensions are the caches, locks and notifications, as a Node (a member
// of the cluster) and a Client (a remote client) both offer them.
type Extensions interface {
	Cache(name string) *Cache
	Lock(ctx context.Context, name string, ttl time.Duration) (*Lease, error)
	TryLock(ctx context.Context, name string, ttl time.Duration) (*Lease, error)
	Notify(ctx context.Context, channel, payload string) error
	Listen(ctx context.Context, channel string, opts ...ListenOption) (*Listener, error)
}

var (
	_ Extensions = (*Node)(nil)
	_ Extensions = (*Client)(nil)
)

// Client is the extensions of a remote client (a *sql.DB opened with a
// hiqlite:// DSN): the same methods as a Node's, each run on a member.
// Caches and Notify use the connections of the *sql.DB's pool; each Lease
// and each Listener holds a session of its own until it ends. A Client is
// safe for concurrent use and needs no closing of its own.
type Client struct {
	db *sql.DB
	rc *RemoteConnector
}

// ClientOf returns the extensions of db, which must be a remote client's
// (NodeOf is the member's counterpart).
func ClientOf(ctx context.Context, db *sql.DB) (*Client, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var rc *RemoteConnector
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*remoteConn)
		if !ok {
			return errors.New("hiqlite: ClientOf: the *sql.DB is not a remote client's (hiqlite://...); use NodeOf for a node's")
		}
		rc = c.rc
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Client{db: db, rc: rc}, nil
}

// call runs one extension call on a connection of the pool.
func (c *Client) call(ctx context.Context, op string, args ...any) (*wire.ClientResult, error) {
	for try := 0; ; try++ {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		var res *wire.ClientResult
		err = conn.Raw(func(dc any) error {
			var err error
			res, err = dc.(*remoteConn).ext(ctx, op, args...)
			return err
		})
		conn.Close()
		if errors.Is(err, driver.ErrBadConn) && try < 2 {
			continue // nothing was sent: another connection
		}
		return res, err
	}
}

// Cache returns the cache called name, as Node.Cache does; its methods run
// on a member.
func (c *Client) Cache(name string) *Cache {
	return &Cache{r: &remoteCache{c: c, name: name}}
}

// Lock waits until the lock is granted, as Node.Lock does; the member
// holds the lease for a session of this client's own.
func (c *Client) Lock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	return c.lock(ctx, name, ttl, false)
}

// TryLock is Lock without waiting: ErrLockHeld when the lock is held or
// waited for.
func (c *Client) TryLock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	return c.lock(ctx, name, ttl, true)
}

func (c *Client) lock(ctx context.Context, name string, ttl time.Duration, try bool) (*Lease, error) {
	dc, err := c.rc.Connect(ctx)
	if err != nil {
		return nil, err
	}
	conn := dc.(*remoteConn)
	l := &remoteLease{name: name, ttl: ttl, conn: conn, lost: make(chan struct{})}
	op := "lock"
	if try {
		op = "lock.try"
	}
	sent := time.Now()
	res, err := conn.ext(ctx, op, name, int64(ttl))
	if err != nil {
		conn.Close()
		return nil, err
	}
	l.token = uint64(res.Result.LastInsertID)
	l.arm(sent)
	return &Lease{r: l}, nil
}

// Notify sends payload on channel, as Node.Notify does, through a member.
func (c *Client) Notify(ctx context.Context, channel, payload string) error {
	_, err := c.call(ctx, "notify", channel, payload)
	return err
}

// Listen subscribes to channel on a member, as Node.Listen does there: the
// listener gets what that member delivers after Listen returns. It holds a
// session of its own until Close or the end of ctx.
func (c *Client) Listen(ctx context.Context, channel string, opts ...ListenOption) (*Listener, error) {
	var o listenOptions
	for _, opt := range opts {
		opt(&o)
	}
	dc, err := c.rc.Connect(ctx)
	if err != nil {
		return nil, err
	}
	conn := dc.(*remoteConn)
	if _, err := conn.ext(ctx, "listen", channel, int64(o.buffer)); err != nil {
		conn.Close()
		return nil, err
	}
	l := &remoteListener{channel: channel, conn: conn}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.stop = context.AfterFunc(ctx, func() { l.close() })
	return &Listener{r: l}, nil
}

// ext runs extension call op with args on the member. A call is never sent
// twice: one whose session broke after it was sent fails (with
// ErrOutcomeUnknown for a write).
func (c *remoteConn) ext(ctx context.Context, op string, args ...any) (*wire.ClientResult, error) {
	if c.bad || c.nc == nil {
		return nil, driver.ErrBadConn
	}
	if c.rows != nil {
		c.rows.detach()
	}
	c.seq++
	req := &wire.ClientRequest{Op: wire.OpExt, Seq: c.seq, Stmt: replication.Statement{SQL: op}}
	for i, a := range args {
		req.Stmt.Args = append(req.Stmt.Args, replication.Arg{Ordinal: i + 1, Value: a})
	}
	res, err := c.call(ctx, req)
	var be *brokenError
	if errors.As(err, &be) {
		c.bad = true
		if !be.sent {
			return nil, driver.ErrBadConn
		}
		switch op {
		case "cache.get", "cache.len", "listen.next":
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", nodeerr.ErrOutcomeUnknown, op, err)
	}
	return res, err
}

// extValue is the value an extension call returned, if any.
func extValue(res *wire.ClientResult) []byte {
	if !res.Applied || len(res.Result.Rows) == 0 || len(res.Result.Rows[0]) == 0 {
		return nil
	}
	v, _ := res.Result.Rows[0][0].([]byte)
	if v == nil {
		v = []byte{}
	}
	return v
}

// remoteCache is a remote client's Cache.
type remoteCache struct {
	c    *Client
	name string
}

func (r *remoteCache) call(ctx context.Context, op string, args ...any) (*wire.ClientResult, error) {
	return r.c.call(ctx, op, append([]any{r.name}, args...)...)
}

func (r *remoteCache) get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.c.rc.cfg.Timeout)
	defer cancel()
	res, err := r.call(ctx, "cache.get", key)
	if err != nil {
		return nil, false, err
	}
	return extValue(res), res.Applied, nil
}

func (r *remoteCache) len(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, r.c.rc.cfg.Timeout)
	defer cancel()
	res, err := r.call(ctx, "cache.len")
	if err != nil {
		return -1
	}
	return int(res.Result.LastInsertID)
}

// remoteLease is a remote client's lease, held by a member for the
// session conn. mu serialises the use of conn.
type remoteLease struct {
	name  string
	token uint64
	ttl   time.Duration
	lost  chan struct{}

	mu       sync.Mutex
	conn     *remoteConn
	timer    *time.Timer
	lostOnce sync.Once
}

// arm (re)starts the client's deadline of the lease: ttl after sent.
func (l *remoteLease) arm(sent time.Time) {
	d := time.Until(sent.Add(l.ttl))
	if l.timer == nil {
		l.timer = time.AfterFunc(d, l.lose)
	} else {
		l.timer.Reset(d)
	}
}

func (l *remoteLease) lose() { l.lostOnce.Do(func() { close(l.lost) }) }

func (l *remoteLease) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

func (l *remoteLease) renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isLost() || l.conn == nil {
		return fmt.Errorf("hiqlite: renew lock %q: %w", l.name, ErrLockLost)
	}
	sent := time.Now()
	if _, err := l.conn.ext(ctx, "lock.renew"); err != nil {
		if errors.Is(err, ErrLockLost) {
			l.lose()
		}
		return err
	}
	l.arm(sent)
	if l.isLost() {
		return fmt.Errorf("hiqlite: renew lock %q: %w", l.name, ErrLockLost)
	}
	return nil
}

func (l *remoteLease) unlock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
	lost := l.isLost()
	defer l.lose()
	if l.conn == nil {
		return fmt.Errorf("hiqlite: unlock %q: %w", l.name, ErrLockLost)
	}
	_, err := l.conn.ext(ctx, "lock.unlock")
	l.conn.Close()
	l.conn = nil
	if err == nil && lost {
		err = fmt.Errorf("hiqlite: unlock %q: %w", l.name, ErrLockLost)
	}
	return err
}

// remoteListener is a remote client's listener: a listener of a member,
// read over the session conn. mu serialises the use of conn; ctx, cancelled
// by close, ends a Next in flight.
type remoteListener struct {
	channel string
	stop    func() bool
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once

	mu   sync.Mutex
	conn *remoteConn
}

func (l *remoteListener) next(ctx context.Context) (Notification, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return Notification{}, fmt.Errorf("hiqlite: listener of %q: %w", l.channel, ErrListenerClosed)
	}
	res, err := l.conn.ext(ctx, "listen.next")
	if err != nil {
		if l.ctx.Err() != nil {
			return Notification{}, fmt.Errorf("hiqlite: listener of %q: %w", l.channel, ErrListenerClosed)
		}
		return Notification{}, err
	}
	if len(res.Result.Rows) == 0 || len(res.Result.Rows[0]) != 4 {
		return Notification{}, errors.New("hiqlite: remote listener: malformed notification")
	}
	row := res.Result.Rows[0]
	ch, _ := row[0].(string)
	payload, _ := row[1].(string)
	idx, _ := row[2].(int64)
	missed, _ := row[3].(int64)
	return Notification{Channel: ch, Payload: payload, Index: uint64(idx), Missed: uint64(missed)}, nil
}

// close ends the listener: a Next in flight returns, and the session
// closes, which closes the member's listener.
func (l *remoteListener) close() error {
	l.once.Do(func() {
		l.cancel()
		if l.stop != nil {
			l.stop()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.conn.Close()
		l.conn = nil
	})
	return nil
}

// ext runs an extension call of a remote client on the member's node.
func (s *clientSession) ext(ctx context.Context, req *wire.ClientRequest) (*wire.ClientResult, error) {
	a := extArgs(req.Stmt.Args)
	out := &wire.ClientResult{}
	n := s.n
	var err error
	switch op := req.Stmt.SQL; op {
	case "cache.get":
		v, ok := n.Cache(a.str(0)).Get(a.str(1))
		out.Applied, out.Result.Rows = ok, [][]any{{v}}
	case "cache.len":
		out.Result.LastInsertID = int64(n.Cache(a.str(0)).Len())
	case "cache.set":
		err = n.Cache(a.str(0)).Set(ctx, a.str(1), a.bytes(2), time.Duration(a.int(3)))
	case "cache.delete":
		out.Applied, err = n.Cache(a.str(0)).Delete(ctx, a.str(1))
	case "cache.cas":
		out.Applied, err = n.Cache(a.str(0)).CompareAndSet(ctx, a.str(1), a.bytes(2), a.bytes(3), time.Duration(a.int(4)))
	case "cache.getdel":
		var v []byte
		v, out.Applied, err = n.Cache(a.str(0)).GetAndDelete(ctx, a.str(1))
		out.Result.Rows = [][]any{{v}}
	case "cache.clear":
		err = n.Cache(a.str(0)).Clear(ctx)
	case "notify":
		err = n.Notify(ctx, a.str(0), a.str(1))
	case "lock", "lock.try":
		if s.lease != nil {
			return nil, errors.New("hiqlite: the session already holds a lease")
		}
		var l *Lease
		if op == "lock" {
			l, err = n.Lock(ctx, a.str(0), time.Duration(a.int(1)))
		} else {
			l, err = n.TryLock(ctx, a.str(0), time.Duration(a.int(1)))
		}
		if err == nil {
			s.lease = l
			out.Result.LastInsertID = int64(l.Token())
		}
	case "lock.renew", "lock.unlock":
		if s.lease == nil {
			return nil, fmt.Errorf("hiqlite: the session holds no lease: %w", ErrLockLost)
		}
		if op == "lock.renew" {
			err = s.lease.Renew(ctx)
		} else {
			err = s.lease.Unlock(ctx)
			s.lease = nil
		}
	case "listen":
		if s.listener != nil {
			return nil, errors.New("hiqlite: the session already has a listener")
		}
		var opts []ListenOption
		if b := a.int(1); b > 0 {
			opts = append(opts, ListenBuffer(int(b)))
		}
		s.listener, err = n.Listen(s.ctx, a.str(0), opts...)
	case "listen.next":
		if s.listener == nil {
			return nil, fmt.Errorf("hiqlite: the session has no listener: %w", ErrListenerClosed)
		}
		var m Notification
		if m, err = s.listener.Next(ctx); err == nil {
			out.Result.Rows = [][]any{{m.Channel, m.Payload, int64(m.Index), int64(m.Missed)}}
		}
	default:
		return nil, fmt.Errorf("hiqlite: unknown extension call %q", op)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// extArgs reads the arguments of an extension call by position.
type extArgs []replication.Arg

func (a extArgs) value(i int) any {
	if i < len(a) {
		return a[i].Value
	}
	return nil
}

func (a extArgs) str(i int) string { s, _ := a.value(i).(string); return s }

func (a extArgs) bytes(i int) []byte { b, _ := a.value(i).([]byte); return b }

func (a extArgs) int(i int) int64 { n, _ := a.value(i).(int64); return n }
