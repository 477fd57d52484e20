package nodeport

import (
	"net"
	"sync"
	"sync/atomic"
)

// freezer lets a test stop a mux's connections from moving any bytes, the
// way a stopped process (SIGSTOP) looks to its peers: their connections
// stay open and their requests are never answered, while this node's own
// goroutines run on. Production code never freezes; the cost is one atomic
// load per read and write.
type freezer struct {
	gate atomic.Pointer[chan struct{}] // non-nil while frozen; closed by thaw
}

// freeze stops the connections' reads and writes until thaw.
func (f *freezer) freeze() {
	ch := make(chan struct{})
	f.gate.CompareAndSwap(nil, &ch)
}

// thaw lets the connections move bytes again.
func (f *freezer) thaw() {
	if ch := f.gate.Swap(nil); ch != nil {
		close(*ch)
	}
}

// wrap returns c, reading and writing only while f is not frozen.
func (f *freezer) wrap(c net.Conn) net.Conn {
	return &frozenConn{Conn: c, f: f, closed: make(chan struct{})}
}

// frozenConn is a connection of a mux that may be frozen.
type frozenConn struct {
	net.Conn
	f      *freezer
	once   sync.Once
	closed chan struct{}
}

// wait blocks while the mux is frozen, until it thaws or c closes.
func (c *frozenConn) wait() {
	if ch := c.f.gate.Load(); ch != nil {
		select {
		case <-*ch:
		case <-c.closed:
		}
	}
}

func (c *frozenConn) Read(b []byte) (int, error) {
	c.wait()
	n, err := c.Conn.Read(b)
	c.wait() // what arrived while frozen is not seen before the thaw
	return n, err
}

func (c *frozenConn) Write(b []byte) (int, error) {
	c.wait()
	return c.Conn.Write(b)
}

func (c *frozenConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Freeze stops (frozen) or resumes every connection of m from moving
// bytes, for tests: to its peers the node looks stopped (SIGSTOP) while
// its connections stay open.
func (m *Mux) Freeze(frozen bool) {
	if frozen {
		m.freeze.freeze()
	} else {
		m.freeze.thaw()
	}
}
