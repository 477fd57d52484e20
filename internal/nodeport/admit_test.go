package nodeport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// inHandshake reports whether the connection from remote is in handshake.
func (m *Mux) inHandshake(remote net.Addr) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.pending {
		if c.RemoteAddr().String() == remote.String() {
			return true
		}
	}
	return false
}

// muxStranger connects to m from source IP src and sends hello: a client
// that never finishes the handshake. It waits until m counts it in
// handshake.
func muxStranger(t *testing.T, m *Mux, src string, hello []byte) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	muxWaitFor(t, "the stranger's handshake to start", 10*time.Second, func() bool { return m.inHandshake(c.LocalAddr()) })
	return c
}

// muxClosedByPeer reports whether the peer closed c: a read ends in EOF or
// a reset before a generous deadline (far below any handshake timeout the
// caller set).
func muxClosedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestMuxHandshakeLimit fills the places of a mux, per source and overall,
// with strangers that never finish a handshake (under a timeout of a
// minute). Each newcomer beyond a bound takes the place of the oldest
// stranger of its source, or of the busiest source, which is closed at
// once; members' dials, from a quiet source and from the strangers' own,
// still get through; the drops are logged at WARN without the secret; and
// no goroutine is left.
func TestMuxHandshakeLimit(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("", func(t *testing.T) {
		const perSource, overall = 3, 7
		var log muxLog
		srv := muxTestListen(t, muxTestSecret, muxOptions{handshakeTimeout: time.Minute, maxHandshakes: overall, maxPerSource: perSource}, &log)
		muxEcho(t, srv)
		client := muxTestListen(t, muxTestSecret, muxFastOpts, nil)
		halfOpen := []byte{byte(StreamRaft), ProtoVersion}

		// One source: the fourth displaces the first.
		var a []net.Conn
		for range perSource + 1 {
			a = append(a, muxStranger(t, srv, "127.0.0.2", halfOpen))
		}
		if !muxClosedByPeer(a[0]) {
			t.Fatal("the oldest stranger of a full source stayed open")
		}
		for _, c := range a[1:] {
			if !srv.inHandshake(c.LocalAddr()) {
				t.Errorf("stranger %s was dropped, want only the oldest", c.LocalAddr())
			}
		}
		if got := srv.PendingHandshakes(); got != perSource {
			t.Errorf("%d handshakes in flight, want %d", got, perSource)
		}

		// A member from another source gets through.
		muxDialRoundTrip(t, client, srv.Addr())

		// Every place taken, by three sources of 3, 3 and 1: a fourth
		// source takes the place of the oldest of the busiest, a[1].
		var b []net.Conn
		for range perSource {
			b = append(b, muxStranger(t, srv, "127.0.0.3", nil))
		}
		c := muxStranger(t, srv, "127.0.0.4", []byte{byte(StreamRPC)})
		if got := srv.PendingHandshakes(); got != overall {
			t.Fatalf("%d handshakes in flight, want %d", got, overall)
		}
		d := muxStranger(t, srv, "127.0.0.5", halfOpen)
		if !muxClosedByPeer(a[1]) {
			t.Fatal("the oldest stranger of the busiest source stayed open with every place taken")
		}
		for _, x := range append(append(a[2:], b...), c, d) {
			if !srv.inHandshake(x.LocalAddr()) {
				t.Errorf("stranger %s was dropped, want only the oldest of the busiest source", x.LocalAddr())
			}
		}
		if got := srv.PendingHandshakes(); got != overall {
			t.Errorf("%d handshakes in flight, want %d", got, overall)
		}

		// Every place taken, and the members' own source full of
		// strangers: members still get through, again and again.
		for range perSource {
			muxStranger(t, srv, "127.0.0.1", halfOpen)
		}
		for range 2 * perSource {
			muxDialRoundTrip(t, client, srv.Addr())
		}

		for _, x := range append(append(a, b...), c, d) {
			x.Close()
		}
		muxWaitFor(t, "the strangers' places to free", 10*time.Second, func() bool { return srv.PendingHandshakes() <= perSource })
		srv.Close()
		if got := log.String(); !strings.Contains(got, "[WARN]") || !strings.Contains(got, "closed unauthenticated connections") ||
			!strings.Contains(got, "displaced-source-full") {
			t.Errorf("no warning about the dropped strangers:\n%s", got)
		}
		log.checkNoSecret(t)
	})
	muxNoLeak(t, before)
}

// TestMuxStrangerDeadline: with the defaults of Listen, a stranger that
// stops mid-handshake (at any step) is closed by the handshake deadline,
// which is short: members finish in a round trip.
func TestMuxStrangerDeadline(t *testing.T) {
	if HandshakeTimeout > 2*time.Second {
		t.Fatalf("handshake timeout %v: a stranger may hold a place that long", HandshakeTimeout)
	}
	var log muxLog
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &log})
	m, err := Listen("127.0.0.1:0", "", []byte(muxTestSecret), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	muxEcho(t, m)
	client := muxTestListen(t, muxTestSecret, muxFastOpts, nil)

	hellos := map[string][]byte{
		"silent":      nil,
		"stream byte": {byte(StreamRPC)},
		"half-open":   {byte(StreamRaft), ProtoVersion},
		"full hello":  muxHello(StreamCache, ProtoVersion, muxNonce()),
	}
	var wg sync.WaitGroup
	for name, hello := range hellos {
		c := muxStranger(t, m, "127.0.0.1", hello)
		start := time.Now()
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(HandshakeTimeout + 10*time.Second))
			_, err := io.Copy(io.Discard, c)
			switch elapsed := time.Since(start); {
			case errors.Is(err, os.ErrDeadlineExceeded):
				t.Errorf("%s: the stranger was not closed", name)
			case elapsed < HandshakeTimeout/2:
				t.Errorf("%s: closed after %v, before the handshake deadline (%v)", name, elapsed, HandshakeTimeout)
			default:
				t.Logf("%s: closed after %v", name, elapsed.Round(time.Millisecond))
			}
		})
	}
	// Members are not kept waiting meanwhile.
	muxDialRoundTrip(t, client, m.Addr())
	wg.Wait()
	muxWaitFor(t, "no handshake in flight", 10*time.Second, func() bool { return m.PendingHandshakes() == 0 })
	if got := log.String(); !strings.Contains(got, "timed-out") {
		t.Errorf("no warning about the strangers:\n%s", got)
	}
	log.checkNoSecret(t)
}

// TestMuxCloseMidHandshake closes a mux with handshakes in flight both ways
// and blocked accepts: Close returns promptly, everything blocked returns
// ErrClosed, and no goroutine is left.
func TestMuxCloseMidHandshake(t *testing.T) {
	before := runtime.NumGoroutine()
	m, err := listenMux("127.0.0.1:0", "", []byte(muxTestSecret), nil, muxOptions{handshakeTimeout: time.Minute, maxHandshakes: 64})
	if err != nil {
		t.Fatal(err)
	}
	// A server that accepts TCP (in the kernel backlog) and never speaks.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	var raw []net.Conn
	for i := range 8 {
		c, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, c)
		switch i % 3 {
		case 0: // nothing
		case 1:
			c.Write([]byte{byte(StreamRaft), ProtoVersion})
		case 2:
			c.Write(muxHello(StreamRPC, ProtoVersion, muxNonce()))
		}
	}
	muxWaitFor(t, "the handshakes to start", 10*time.Second, func() bool { return m.PendingHandshakes() == 8 })

	errs := make(chan error, 4)
	var wg sync.WaitGroup
	wg.Go(func() { _, err := m.AcceptRPC(); errs <- err })
	wg.Go(func() { _, err := m.RaftLayer().Accept(); errs <- err })
	wg.Go(func() { _, err := m.DialRPC(context.Background(), mute.Addr().String()); errs <- err })
	wg.Go(func() {
		_, err := m.RaftLayer().Dial(raft.ServerAddress(mute.Addr().String()), time.Minute)
		errs <- err
	})

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, nodeerr.ErrClosed) {
			t.Errorf("blocked call returned %v, want ErrClosed", err)
		}
	}
	for _, c := range raw {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Error("a connection in handshake stayed open after Close")
		}
		c.Close()
	}
	if _, err := m.AcceptRPC(); !errors.Is(err, nodeerr.ErrClosed) {
		t.Errorf("AcceptRPC after Close: %v", err)
	}
	if _, err := m.DialRPC(context.Background(), mute.Addr().String()); !errors.Is(err, nodeerr.ErrClosed) {
		t.Errorf("DialRPC after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	mute.Close()
	muxNoLeak(t, before)
}
