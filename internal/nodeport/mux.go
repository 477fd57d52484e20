package nodeport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Defaults of a Mux.
const (
	// HandshakeTimeout bounds a whole handshake, from accept to the
	// verdict, and how long an authenticated connection waits for its
	// stream's Accept. A member completes the handshake in one round trip
	// (well under a millisecond on a LAN); a stranger holds its place for
	// this long at most.
	HandshakeTimeout = 2 * time.Second
	// defaultMaxHandshakes bounds the handshakes in flight, and
	// defaultMaxPerSource those from one source (an IPv4 address or an
	// IPv6 /64). Authenticated connections are never counted. A connection
	// beyond either bound displaces the oldest handshake of its source (or,
	// for the overall bound, of the source with the most), which is closed
	// at once: strangers that hold their places cannot lock out a member's
	// dial, whose handshake ends within a round trip of its arrival.
	// Members dial in bursts from one address too (the forwarding pool
	// opens up to 128 sessions, raft and the cache group their own), and a
	// handshake on a loaded machine takes milliseconds, not microseconds:
	// with 16 per source, garbage sent from a member's own address while it
	// dialled displaced its handshakes (TestClusterRejectsGarbage under
	// -race). 64 per source and 256 in all keep a member's burst whole and
	// still bound a stranger to a few hundred idle goroutines.
	defaultMaxHandshakes = 256
	defaultMaxPerSource  = 64
	// dropLogEvery is the least time between two log lines about the
	// unauthenticated connections the mux closed.
	dropLogEvery = 10 * time.Second
)

// muxOptions are the knobs of a Mux; tests shrink them.
type muxOptions struct {
	handshakeTimeout time.Duration
	maxHandshakes    int
	maxPerSource     int  // 0: min(defaultMaxPerSource, maxHandshakes)
	tls              *TLS // nil: clear text (tls.go)
}

// Mux owns a node's one TCP listener, which carries Raft and RPC.
// It authenticates each accepted connection (auth.go) on a goroutine of its
// own, under a deadline, so a slow or hostile client never blocks the
// accept loop, then hands it to the Accept of the stream named by its first
// byte. Its dial side runs the client handshake. Every connection it returns
// is authenticated and without deadline.
//
// With TLS (tls.go), every connection, accepted or dialed, runs the TLS
// 1.3 handshake first, certificates verified both ways; the stream byte
// and the HMAC handshake then travel inside TLS. The TLS handshake counts
// as part of the handshake: same deadline, same bounded place.
//
// # Strangers
//
// An unauthenticated connection holds a goroutine and a place among the
// handshakes in flight for handshakeTimeout at most. The places are
// bounded per source and overall (see defaultMaxHandshakes); a newcomer
// beyond a bound displaces the oldest handshake of the busiest source,
// never waits, and is never refused, so strangers cannot starve the dials
// of members. Dropped strangers are counted and logged at most once per
// dropLogEvery (dropLog).
//
// # Goroutines
//
// The accept loop and one goroutine per connection, from accept until the
// end of the handshake and the hand-off to Accept (at most
// handshakeTimeout each, less for a displaced one, which its closed
// connection ends at once). All start through goFunc and are joined by
// Close.
//
// # Lock protocol
//
// mu guards closed, pending and sources; it is held only to read or update
// them, never across I/O. Each stream has its own lock (see muxStream), and
// drops its own (see dropLog).
type Mux struct {
	ln     net.Listener
	addr   net.Addr // advertised
	key    []byte
	logger hclog.Logger
	opts   muxOptions

	raft, rpc *muxStream
	cache     *muxStream      // the cache group's Raft (package extensions)
	client    *muxStream      // sessions of remote clients (not members)
	ctx       context.Context // cancelled by Close; aborts dials in flight
	cancel    context.CancelFunc
	wg        sync.WaitGroup // every goroutine started by goFunc

	drops  dropLog
	freeze freezer // tests only: see freeze.go

	mu      sync.Mutex
	closed  bool
	seq     uint64                        // numbers the handshakes, in order of arrival
	pending map[net.Conn]*handshake       // accepted, handshake in flight
	sources map[netip.Prefix][]*handshake // the same by source, oldest first
}

// Listen binds addr and starts accepting. advertise is the address peers
// dial; "" means the bound address (with the real port when addr asks for
// port 0), which must then not be a wildcard. secret is the cluster secret;
// the caller allows an empty one only on loopback. A nil logger discards.
func Listen(addr, advertise string, secret []byte, logger hclog.Logger) (*Mux, error) {
	return listenMux(addr, advertise, secret, logger, defaultMuxOptions(nil))
}

// ListenTLS is Listen with every connection wrapped in mutual TLS, t from
// NewTLS; a nil t is clear text, as Listen.
func ListenTLS(addr, advertise string, secret []byte, logger hclog.Logger, t *TLS) (*Mux, error) {
	return listenMux(addr, advertise, secret, logger, defaultMuxOptions(t))
}

func defaultMuxOptions(t *TLS) muxOptions {
	return muxOptions{
		handshakeTimeout: HandshakeTimeout,
		maxHandshakes:    defaultMaxHandshakes,
		maxPerSource:     defaultMaxPerSource,
		tls:              t,
	}
}

func listenMux(addr, advertise string, secret []byte, logger hclog.Logger, opts muxOptions) (*Mux, error) {
	if opts.maxPerSource == 0 {
		opts.maxPerSource = min(defaultMaxPerSource, opts.maxHandshakes)
	}
	if opts.handshakeTimeout <= 0 || opts.maxHandshakes <= 0 || opts.maxPerSource <= 0 {
		return nil, fmt.Errorf("hiqlite: mux: handshake timeout %v and limits %d (overall) and %d (per source) must be positive",
			opts.handshakeTimeout, opts.maxHandshakes, opts.maxPerSource)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: listen: %w", err)
	}
	adv, err := advertiseAddr(ln.Addr(), advertise)
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mux{
		ln:      ln,
		addr:    adv,
		key:     authKey(secret),
		logger:  logger,
		opts:    opts,
		drops:   dropLog{logger: logger, every: dropLogEvery},
		ctx:     ctx,
		cancel:  cancel,
		pending: map[net.Conn]*handshake{},
		sources: map[netip.Prefix][]*handshake{},
	}
	m.raft = newMuxStream(m, StreamRaft)
	m.rpc = newMuxStream(m, StreamRPC)
	m.cache = newMuxStream(m, StreamCache)
	m.client = newMuxStream(m, StreamClient)
	m.goFunc(m.acceptLoop)
	return m, nil
}

// advertiseAddr is the address peers dial: advertise, or else bound.
func advertiseAddr(bound net.Addr, advertise string) (net.Addr, error) {
	if advertise == "" {
		if a, ok := bound.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
			return nil, fmt.Errorf("hiqlite: listen address %s is a wildcard; set an advertise address", bound)
		}
		return bound, nil
	}
	host, port, err := net.SplitHostPort(advertise)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: advertise address %q: %w", advertise, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil, fmt.Errorf("hiqlite: advertise address %q: port must be 1-65535", advertise)
	}
	if ap, err := netip.ParseAddrPort(advertise); err == nil {
		if ap.Addr().IsUnspecified() {
			return nil, fmt.Errorf("hiqlite: advertise address %q is a wildcard", advertise)
		}
		return net.TCPAddrFromAddrPort(ap), nil
	}
	if host == "" {
		return nil, fmt.Errorf("hiqlite: advertise address %q has no host", advertise)
	}
	return advertisedHost(advertise), nil
}

// advertisedHost is an advertised host:port with a DNS name, kept as
// written so that peers resolve it when they dial.
type advertisedHost string

func (a advertisedHost) Network() string { return "tcp" }
func (a advertisedHost) String() string  { return string(a) }

// Addr is the advertised address.
func (m *Mux) Addr() net.Addr { return m.addr }

// RaftLayer is the Raft side of the mux, for
// raft.NewNetworkTransportWithConfig. Its Close closes only the Raft side.
func (m *Mux) RaftLayer() raft.StreamLayer { return raftLayer{m.raft} }

// CacheLayer is the side of the mux that carries the cache group's Raft
// (package extensions), for raft.NewNetworkTransportWithConfig. Its Close
// closes only that side.
func (m *Mux) CacheLayer() raft.StreamLayer { return raftLayer{m.cache} }

// PendingHandshakes is the number of accepted connections whose handshake
// is in flight: strangers, and members not yet through.
func (m *Mux) PendingHandshakes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// AcceptRPC blocks until the next authenticated RPC connection; after Close
// it returns ErrClosed. The caller owns the connection.
func (m *Mux) AcceptRPC() (net.Conn, error) { return m.rpc.accept() }

// AcceptClient blocks until the next authenticated session of a remote
// client (a process that holds the cluster secret, and a certificate under
// TLS, but is no member); after Close it returns ErrClosed. The caller owns
// the connection.
func (m *Mux) AcceptClient() (net.Conn, error) { return m.client.accept() }

// DialRPC dials addr and authenticates an RPC connection. ctx bounds the
// dial and the handshake; Close aborts it with ErrClosed. An error means no
// byte beyond the handshake was sent.
func (m *Mux) DialRPC(ctx context.Context, addr string) (net.Conn, error) {
	return m.dial(ctx, addr, m.rpc)
}

// Close stops accepting, closes the connections in handshake and every
// connection the mux handed out, and joins its goroutines. Accept and dial
// return ErrClosed afterwards. It is idempotent.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	pending := m.pending
	m.pending, m.sources = nil, nil
	m.mu.Unlock()

	m.cancel()
	err := m.ln.Close()
	for c := range pending {
		c.Close()
	}
	m.raft.close()
	m.rpc.close()
	m.cache.close()
	m.client.close()
	m.wg.Wait()
	m.drops.flush()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// goFunc runs f on a goroutine that Close joins.
func (m *Mux) goFunc(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// acceptLoop accepts until the listener closes. It never does I/O on a
// connection: each gets a place among the handshakes and a goroutine,
// displacing an older handshake when the places are taken.
func (m *Mux) acceptLoop() {
	const minDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		c, err := m.ln.Accept()
		if err == nil {
			c = m.freeze.wrap(c)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || m.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: back off, as
			// net/http does, rather than spin.
			delay = min(max(2*delay, minDelay), maxDelay)
			m.logger.Warn("accept failed", "error", err, "retry-in", delay)
			t := time.NewTimer(delay)
			select {
			case <-m.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		victim, why, ok := m.admit(c)
		if !ok {
			c.Close()
			return
		}
		if victim != nil {
			m.logger.Debug("too many handshakes in flight; closing the oldest", "remote", victim.RemoteAddr(), "reason", why)
			victim.Close()
			m.drops.add(why, victim.RemoteAddr())
		}
		m.goFunc(func() { m.serve(c) })
	}
}

// serve authenticates an accepted connection and hands it to its stream.
func (m *Mux) serve(c net.Conn) {
	conn, st, err := m.serverHandshake(c)
	m.mu.Lock()
	mine := m.forgetLocked(c)
	m.mu.Unlock()
	if !mine {
		// Displaced, or the mux is closing: whoever took it from pending
		// closed it (and counted it).
		c.Close()
		return
	}
	if err != nil {
		m.logger.Debug("handshake failed; closing connection", "remote", c.RemoteAddr(), "error", err)
		c.Close()
		why := dropFailed
		if r, ok := tlsRefusal(err); ok {
			why = r
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			why = dropTimedOut
		}
		m.drops.add(why, c.RemoteAddr())
		return
	}
	m.streamOf(st).deliver(conn)
}

// serverHandshake runs the TLS handshake, if any, then the HMAC one, all
// under one deadline, and returns the connection to hand out: c, or the
// TLS connection over it.
func (m *Mux) serverHandshake(c net.Conn) (net.Conn, StreamType, error) {
	if err := c.SetDeadline(time.Now().Add(m.opts.handshakeTimeout)); err != nil {
		return nil, 0, err
	}
	conn := c
	if m.opts.tls != nil {
		tc := tls.Server(c, m.opts.tls.server)
		if err := tc.Handshake(); err != nil {
			return nil, 0, err
		}
		conn = tc
	}
	st, err := serverHandshake(conn, m.key, func(st StreamType) bool { return !m.streamOf(st).isClosed() })
	if err != nil {
		return nil, 0, err
	}
	return conn, st, c.SetDeadline(time.Time{})
}

func (m *Mux) streamOf(st StreamType) *muxStream {
	switch st {
	case StreamRaft:
		return m.raft
	case StreamCache:
		return m.cache
	case StreamClient:
		return m.client
	}
	return m.rpc
}

// dial connects to addr and runs the client handshake for stream s.
func (m *Mux) dial(ctx context.Context, addr string, s *muxStream) (net.Conn, error) {
	if s.isClosed() {
		return nil, nodeerr.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()

	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c = m.freeze.wrap(c)
		var hc net.Conn
		if hc, err = m.clientHandshake(ctx, c, addr, s.st); err != nil {
			c.Close()
		} else {
			c = hc
		}
	}
	if err != nil {
		if m.ctx.Err() != nil {
			return nil, nodeerr.ErrClosed
		}
		if cerr := dialCtxErr(ctx); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return nil, fmt.Errorf("hiqlite: dial %s %s: %w", s.st, addr, err)
	}
	mc, ok := s.track(c)
	if !ok {
		c.Close()
		return nil, nodeerr.ErrClosed
	}
	return mc, nil
}

// dialCtxErr is ctx.Err(), or DeadlineExceeded once the deadline has passed:
// a connection deadline set from ctx can fire just before ctx's own timer.
func dialCtxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// clientHandshake runs the client handshakes for stream st on c, a
// connection dialed to addr (see dialHandshake).
func (m *Mux) clientHandshake(ctx context.Context, c net.Conn, addr string, st StreamType) (net.Conn, error) {
	return dialHandshake(ctx, c, addr, st, m.key, m.opts.tls, m.opts.handshakeTimeout, "this node's")
}
