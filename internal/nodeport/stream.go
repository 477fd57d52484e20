package nodeport

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Streams: each kind of connection the port carries (Raft, RPC, the cache
// group's Raft) has its own hand-off of authenticated connections to
// Accept, and tracks them until they close so that Close reaches them all;
// raftLayer is raft's view of one.

// muxStream is one side of the mux: the authenticated connections of one
// StreamType, accepted or dialed.
//
// Lock protocol: mu guards closed and conns. A connection is tracked in
// conns from the end of its handshake until its Close, so that close can
// close all of them (raft's NetworkTransport does not close the connections
// it accepted). done is closed, once, under mu.
type muxStream struct {
	m    *Mux
	st   StreamType
	ch   chan net.Conn // unbuffered: hands an accepted connection to accept
	done chan struct{}

	mu     sync.Mutex
	closed bool
	conns  map[*muxConn]struct{}
}

func newMuxStream(m *Mux, st StreamType) *muxStream {
	return &muxStream{m: m, st: st, ch: make(chan net.Conn), done: make(chan struct{}), conns: map[*muxConn]struct{}{}}
}

// muxConn is an authenticated connection; closing it untracks it.
type muxConn struct {
	net.Conn
	s *muxStream
}

func (c *muxConn) Close() error {
	c.s.untrack(c)
	return c.Conn.Close()
}

func (s *muxStream) track(c net.Conn) (*muxConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	mc := &muxConn{Conn: c, s: s}
	s.conns[mc] = struct{}{}
	return mc, true
}

func (s *muxStream) untrack(c *muxConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *muxStream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// deliver hands an authenticated connection to accept, waiting at most the
// handshake timeout for one.
func (s *muxStream) deliver(c net.Conn) {
	mc, ok := s.track(c)
	if !ok {
		c.Close()
		return
	}
	t := time.NewTimer(s.m.opts.handshakeTimeout)
	defer t.Stop()
	select {
	case s.ch <- mc:
	case <-s.done:
		mc.Close()
	case <-t.C:
		s.m.logger.Warn("no one accepted an authenticated connection; closing it", "stream", s.st, "remote", c.RemoteAddr())
		mc.Close()
	}
}

// accept returns the next authenticated connection, or ErrClosed.
func (s *muxStream) accept() (net.Conn, error) {
	select {
	case c := <-s.ch:
		select {
		case <-s.done:
			c.Close()
			return nil, nodeerr.ErrClosed
		default:
			return c, nil
		}
	case <-s.done:
		return nil, nodeerr.ErrClosed
	}
}

// close stops accepting and dialing and closes every tracked connection.
func (s *muxStream) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// raftLayer is the raft.StreamLayer of a mux.
//
// raft's NetworkTransport calls Accept from its listen goroutine; after
// Close, Accept returns ErrClosed at once and the transport, which is then
// shutting down, stops (it backs off between failed accepts, so it never
// spins).
type raftLayer struct{ s *muxStream }

var _ raft.StreamLayer = raftLayer{}

func (l raftLayer) Accept() (net.Conn, error) { return l.s.accept() }

// Close closes the Raft side: raft connections, accepted and dialed, and
// further raft dials and accepts. The listener stays open for RPC.
func (l raftLayer) Close() error {
	l.s.close()
	return nil
}

func (l raftLayer) Addr() net.Addr { return l.s.m.addr }

// Dial connects to a peer's mux and authenticates a Raft connection. It is
// the one place raft's timeout becomes a context.
func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return l.s.m.dial(ctx, string(address), l.s)
}
