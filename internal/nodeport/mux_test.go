package nodeport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The helpers of this file are prefixed mux so as not to collide with the
// other tests of the package.

const muxTestSecret = "mux-test-secret-7b1f2c9e"

// muxLog collects a mux's log lines, to check what they (do not) say.
type muxLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *muxLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *muxLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkNoSecret fails if the log shows the secret.
func (l *muxLog) checkNoSecret(t *testing.T) {
	t.Helper()
	if s := l.String(); strings.Contains(s, muxTestSecret) {
		t.Errorf("log shows the secret:\n%s", s)
	}
}

var muxFastOpts = muxOptions{handshakeTimeout: 300 * time.Millisecond, maxHandshakes: 64}

// muxTestListen starts a mux on loopback, closed when the test ends.
func muxTestListen(t *testing.T, secret string, opts muxOptions, log *muxLog) *Mux {
	t.Helper()
	var logger hclog.Logger
	if log != nil {
		logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: log})
	}
	m, err := listenMux("127.0.0.1:0", "", []byte(secret), logger, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// muxWaitFor polls cond until it holds or timeout passes.
func muxWaitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// muxNoLeak waits until no more goroutines run than before.
func muxNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf)
		}
		<-tick.C
	}
}

// muxEcho serves m's RPC side: every accepted connection echoes what it
// reads. It returns the number of connections accepted so far. It stops
// when m closes; the test waits for it.
func muxEcho(t *testing.T, m *Mux) *atomic.Int64 {
	t.Helper()
	var accepted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := m.AcceptRPC()
			if err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("AcceptRPC: %v", err)
				}
				return
			}
			accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	// Runs before the cleanup of muxTestListen, which closes m; wait for it.
	t.Cleanup(func() {
		m.Close()
		wg.Wait()
	})
	return &accepted
}

// muxRoundTrip sends a message over c and checks the echo.
func muxRoundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := []byte(rand.Text())
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// muxDialRoundTrip dials addr's RPC side from m and round-trips a message.
func muxDialRoundTrip(t *testing.T, m *Mux, addr net.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.DialRPC(ctx, addr.String())
	if err != nil {
		t.Fatalf("DialRPC %s: %v", addr, err)
	}
	defer c.Close()
	muxRoundTrip(t, c)
}

func TestMuxRPCRoundTrip(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("", func(t *testing.T) {
		var log muxLog
		a := muxTestListen(t, muxTestSecret, muxFastOpts, &log)
		b := muxTestListen(t, muxTestSecret, muxFastOpts, &log)
		na, nb := muxEcho(t, a), muxEcho(t, b)
		for _, m := range []*Mux{a, b} {
			if ta, ok := m.Addr().(*net.TCPAddr); !ok || ta.Port == 0 || !ta.IP.IsLoopback() {
				t.Fatalf("Addr() = %v, want loopback with a real port", m.Addr())
			}
		}
		muxDialRoundTrip(t, a, b.Addr())
		muxDialRoundTrip(t, b, a.Addr())

		// Many at once, both ways, on long-lived connections.
		var wg sync.WaitGroup
		for i := range 16 {
			from, to := a, b
			if i%2 == 1 {
				from, to = b, a
			}
			wg.Go(func() {
				c, err := from.DialRPC(context.Background(), to.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				for range 5 {
					muxRoundTrip(t, c)
				}
			})
		}
		wg.Wait()
		if got := na.Load() + nb.Load(); got != 18 {
			t.Errorf("accepted %d connections, want 18", got)
		}
		log.checkNoSecret(t)
	})
	muxNoLeak(t, before)
}

func TestMuxAdvertise(t *testing.T) {
	tests := []struct {
		listen, advertise string
		want              string // "" = the bound address; "error" = fails
	}{
		{"127.0.0.1:0", "", ""},
		{"127.0.0.1:0", "node1.example:7000", "node1.example:7000"},
		{"127.0.0.1:0", "10.1.2.3:7000", "10.1.2.3:7000"},
		{"127.0.0.1:0", "[::1]:7001", "[::1]:7001"},
		{"127.0.0.1:0", "0.0.0.0:7000", "error"},
		{"127.0.0.1:0", "[::]:7000", "error"},
		{"127.0.0.1:0", "node1.example:0", "error"},
		{"127.0.0.1:0", "node1.example", "error"},
		{"127.0.0.1:0", ":7000", "error"},
		{"0.0.0.0:0", "", "error"},
		{"0.0.0.0:0", "127.0.0.1:7000", "127.0.0.1:7000"},
	}
	for _, tt := range tests {
		t.Run(tt.listen+"/"+tt.advertise, func(t *testing.T) {
			m, err := Listen(tt.listen, tt.advertise, nil, nil)
			if tt.want == "error" {
				if err == nil {
					m.Close()
					t.Fatalf("Listen succeeded with %s", m.Addr())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			want := tt.want
			if want == "" {
				want = m.ln.Addr().String()
			}
			if got := m.Addr().String(); got != want {
				t.Errorf("Addr() = %s, want %s", got, want)
			}
			if got := m.RaftLayer().Addr().String(); got != want {
				t.Errorf("RaftLayer().Addr() = %s, want %s", got, want)
			}
		})
	}
}

func TestMuxWrongSecret(t *testing.T) {
	var log muxLog
	good := muxTestListen(t, muxTestSecret, muxFastOpts, &log)
	bad := muxTestListen(t, "some-other-secret", muxFastOpts, nil)
	none := muxTestListen(t, "", muxFastOpts, nil)
	accepted := muxEcho(t, good)
	muxEcho(t, bad)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tt := range []struct {
		name     string
		from, to *Mux
	}{
		{"client with another secret", bad, good},
		{"server with another secret", good, bad},
		{"client without secret", none, good},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := tt.from.DialRPC(ctx, tt.to.Addr().String()); !errors.Is(err, ErrAuth) {
				if c != nil {
					c.Close()
				}
				t.Errorf("DialRPC: %v, want ErrAuth", err)
			}
			if c, err := tt.from.RaftLayer().Dial(raft.ServerAddress(tt.to.Addr().String()), 10*time.Second); !errors.Is(err, ErrAuth) {
				if c != nil {
					c.Close()
				}
				t.Errorf("raft Dial: %v, want ErrAuth", err)
			}
			// The server goes on serving the good client.
			muxDialRoundTrip(t, muxTestListen(t, muxTestSecret, muxFastOpts, nil), good.Addr())
		})
	}
	// Only the good clients got through: one per case.
	if got := accepted.Load(); got != 3 {
		t.Errorf("accepted %d connections, want 3", got)
	}
	muxWaitFor(t, "handshakes to end", 10*time.Second, func() bool { return good.PendingHandshakes() == 0 })
	if !strings.Contains(log.String(), "handshake failed") {
		t.Errorf("no debug line for the failed handshakes:\n%s", log.String())
	}
	log.checkNoSecret(t)
}

// muxHello is a client hello for stream st with nonce nc.
func muxHello(st StreamType, version byte, nc []byte) []byte {
	return append([]byte{byte(st), version}, nc...)
}

func muxNonce() []byte {
	nc := make([]byte, nonceSize)
	rand.Read(nc)
	return nc
}

// muxReadProof reads the server's nonce and proof.
func muxReadProof(t *testing.T, c net.Conn) (ns, proof []byte) {
	t.Helper()
	reply := make([]byte, nonceSize+macSize)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("read server proof: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	return reply[:nonceSize], reply[nonceSize:]
}

// TestMuxGarbage sends malformed or unauthenticated handshakes. Each must
// close only its own connection, by rejection (under a server that would
// wait a minute) or by the handshake deadline (under a fast server), while
// a good client keeps working.
func TestMuxGarbage(t *testing.T) {
	key := []byte(muxTestSecret)
	write := func(b []byte) func(*testing.T, net.Conn) {
		return func(t *testing.T, c net.Conn) { c.Write(b) }
	}
	tests := []struct {
		name string
		run  func(*testing.T, net.Conn)
		// stall: the client goes silent, and the deadline must close it.
		// hangUp: the client closes the connection itself.
		stall, hangUp bool
	}{
		{name: "random bytes", run: func(t *testing.T, c net.Conn) {
			b := make([]byte, 512)
			rand.Read(b)
			b[0] = 0xfe // never a stream byte; the others are random
			c.Write(b)
		}},
		{name: "unknown stream byte", run: write(muxHello('X', ProtoVersion, muxNonce()))},
		{name: "zero stream byte", run: write(muxHello(0, ProtoVersion, muxNonce()))},
		{name: "wrong version", run: write(muxHello(StreamRPC, ProtoVersion+1, muxNonce()))},
		{name: "http", run: write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))},
		{name: "1 byte then stall", run: write([]byte{byte(StreamRaft)}), stall: true},
		{name: "10 bytes then stall", run: write(muxHello(StreamRPC, ProtoVersion, muxNonce())[:10]), stall: true},
		{name: "hello then stall", stall: true, run: func(t *testing.T, c net.Conn) {
			c.Write(muxHello(StreamRPC, ProtoVersion, muxNonce()))
			muxReadProof(t, c)
		}},
		{name: "close mid-hello", hangUp: true, run: func(t *testing.T, c net.Conn) {
			c.Write(muxHello(StreamRPC, ProtoVersion, muxNonce())[:5])
			c.Close()
		}},
		{name: "close after server proof", hangUp: true, run: func(t *testing.T, c net.Conn) {
			c.Write(muxHello(StreamRaft, ProtoVersion, muxNonce()))
			muxReadProof(t, c)
			c.Close()
		}},
		{name: "zero proof", run: func(t *testing.T, c net.Conn) {
			c.Write(muxHello(StreamRPC, ProtoVersion, muxNonce()))
			muxReadProof(t, c)
			c.Write(make([]byte, macSize))
		}},
		{name: "reflected server proof", run: func(t *testing.T, c net.Conn) {
			c.Write(muxHello(StreamRPC, ProtoVersion, muxNonce()))
			_, proof := muxReadProof(t, c)
			c.Write(proof)
		}},
		{name: "proof for the other stream", run: func(t *testing.T, c net.Conn) {
			nc := muxNonce()
			c.Write(muxHello(StreamRPC, ProtoVersion, nc))
			ns, _ := muxReadProof(t, c)
			c.Write(handshakeMAC(key, labelClient, StreamRaft, nc, ns))
		}},
		{name: "proof with the server label", run: func(t *testing.T, c net.Conn) {
			nc := muxNonce()
			c.Write(muxHello(StreamRPC, ProtoVersion, nc))
			ns, _ := muxReadProof(t, c)
			c.Write(handshakeMAC(key, labelServer, StreamRPC, nc, ns))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log muxLog
			opts := muxOptions{handshakeTimeout: time.Minute, maxHandshakes: 64}
			if tt.stall {
				opts = muxFastOpts
			}
			srv := muxTestListen(t, muxTestSecret, opts, &log)
			accepted := muxEcho(t, srv)
			client := muxTestListen(t, muxTestSecret, muxFastOpts, nil)
			// A good connection made before, and one made while the
			// garbage is in flight.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			early, err := client.DialRPC(ctx, srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer early.Close()

			c, err := net.DialTimeout("tcp", srv.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			tt.run(t, c)
			muxDialRoundTrip(t, client, srv.Addr())

			if tt.hangUp {
				muxWaitFor(t, "the server to drop the connection", 10*time.Second,
					func() bool { return srv.PendingHandshakes() == 0 })
			} else {
				// The server closes the connection: EOF or reset, not
				// our read deadline.
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := io.Copy(io.Discard, c)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("the server did not close the connection")
				}
				if elapsed := time.Since(start); tt.stall && elapsed > opts.handshakeTimeout+5*time.Second {
					t.Errorf("closed after %v, handshake timeout %v", elapsed, opts.handshakeTimeout)
				}
			}
			muxRoundTrip(t, early)
			muxDialRoundTrip(t, client, srv.Addr())
			if got := accepted.Load(); got != 3 {
				t.Errorf("accepted %d connections, want the 3 good ones", got)
			}
			if !tt.hangUp && !strings.Contains(log.String(), "handshake failed") {
				t.Errorf("no debug line for the failed handshake:\n%s", log.String())
			}
			log.checkNoSecret(t)
		})
	}
}

// TestMuxReplay replays a recorded genuine handshake: the server's fresh
// nonce makes the recorded proof worthless.
func TestMuxReplay(t *testing.T) {
	srv := muxTestListen(t, muxTestSecret, muxOptions{handshakeTimeout: time.Minute, maxHandshakes: 64}, nil)
	accepted := muxEcho(t, srv)
	key := []byte(muxTestSecret)

	// A genuine handshake, recorded.
	c1, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	nc := muxNonce()
	hello := muxHello(StreamRPC, ProtoVersion, nc)
	c1.Write(hello)
	ns, _ := muxReadProof(t, c1)
	proof := handshakeMAC(key, labelClient, StreamRPC, nc, ns)
	c1.Write(proof)
	ok := make([]byte, 1)
	if _, err := io.ReadFull(c1, ok); err != nil || ok[0] != handshakeOK {
		t.Fatalf("genuine handshake: %v %x", err, ok)
	}
	muxRoundTrip(t, c1)

	// The same bytes again.
	c2, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write(hello)
	muxReadProof(t, c2)
	c2.Write(proof)
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, c2); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("replay: read %d bytes, %v; want the connection closed", n, err)
	}
	if got := accepted.Load(); got != 1 {
		t.Errorf("accepted %d connections, want 1", got)
	}
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
		if !errors.Is(err, ErrClosed) {
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
	if _, err := m.AcceptRPC(); !errors.Is(err, ErrClosed) {
		t.Errorf("AcceptRPC after Close: %v", err)
	}
	if _, err := m.DialRPC(context.Background(), mute.Addr().String()); !errors.Is(err, ErrClosed) {
		t.Errorf("DialRPC after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	mute.Close()
	muxNoLeak(t, before)
}

// TestMuxDialContext: the caller's context bounds the dial and the
// handshake against a peer that never answers.
func TestMuxDialContext(t *testing.T) {
	m := muxTestListen(t, muxTestSecret, muxOptions{handshakeTimeout: time.Minute, maxHandshakes: 64}, nil)
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := m.DialRPC(ctx, mute.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DialRPC past its deadline: %v, want DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := m.DialRPC(ctx, mute.Addr().String()); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled DialRPC: %v, want Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled DialRPC did not return")
	}

	if _, err := m.RaftLayer().Dial(raft.ServerAddress(mute.Addr().String()), 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("raft Dial past its timeout: %v, want DeadlineExceeded", err)
	}
}

// TestTransportRaftLayerClose: closing the Raft side (as NetworkTransport
// does) ends raft accepts, dials and connections, and leaves RPC serving.
func TestTransportRaftLayerClose(t *testing.T) {
	srv := muxTestListen(t, muxTestSecret, muxFastOpts, nil)
	muxEcho(t, srv)
	peer := muxTestListen(t, muxTestSecret, muxFastOpts, nil)
	addr := raft.ServerAddress(srv.Addr().String())

	// An accepted and a dialed raft connection.
	dialed, err := peer.RaftLayer().Dial(addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	accepted, err := srv.RaftLayer().Accept()
	if err != nil {
		t.Fatal(err)
	}
	out, err := srv.RaftLayer().Dial(raft.ServerAddress(peer.Addr().String()), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.RaftLayer().Accept(); err != nil {
		t.Fatal(err)
	}

	if err := srv.RaftLayer().Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 { // at once, every time: raft's listen loop must not block
		if _, err := srv.RaftLayer().Accept(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	}
	if _, err := srv.RaftLayer().Dial(raft.ServerAddress(peer.Addr().String()), time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	for _, c := range []net.Conn{accepted, out} {
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("raft connection still open after Close: %v", err)
		}
	}
	// The peer is refused the raft stream, not handed a dead one.
	if c, err := peer.RaftLayer().Dial(addr, 10*time.Second); err == nil {
		c.Close()
		t.Error("raft Dial to a closed raft side succeeded")
	}
	muxDialRoundTrip(t, peer, srv.Addr())
}

// muxNopFSM counts applied commands.
type muxNopFSM struct{ applied atomic.Int64 }

func (f *muxNopFSM) Apply(*raft.Log) any                 { f.applied.Add(1); return nil }
func (f *muxNopFSM) Snapshot() (raft.FSMSnapshot, error) { return muxNopSnapshot{}, nil }
func (f *muxNopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type muxNopSnapshot struct{}

func (muxNopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (muxNopSnapshot) Release()                          {}

// TestTransportRaftCluster runs three raft nodes over three muxes, each with
// raft's own NetworkTransport: a leader is elected and commands commit on
// every node. Shutting down leaves no goroutine behind.
func TestTransportRaftCluster(t *testing.T) {
	before := runtime.NumGoroutine()
	const n = 3
	var (
		muxes   []*Mux
		rafts   []*raft.Raft
		fsms    []*muxNopFSM
		servers []raft.Server
	)
	shutdown := func() {
		for _, r := range rafts {
			if err := r.Shutdown().Error(); err != nil {
				t.Error(err)
			}
		}
		for _, m := range muxes {
			if err := m.Close(); err != nil {
				t.Error(err)
			}
		}
		rafts, muxes = nil, nil
	}
	defer shutdown()
	for i := range n {
		m, err := listenMux("127.0.0.1:0", "", []byte(muxTestSecret), nil, muxFastOpts)
		if err != nil {
			t.Fatal(err)
		}
		muxes = append(muxes, m)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprint("n", i)), Address: raft.ServerAddress(m.Addr().String())})
	}
	for i, m := range muxes {
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  m.RaftLayer(),
			MaxPool: 2,
			Timeout: 10 * time.Second,
			Logger:  hclog.NewNullLogger(),
		})
		if got := trans.LocalAddr(); got != servers[i].Address {
			t.Fatalf("LocalAddr %s, want %s", got, servers[i].Address)
		}
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.HeartbeatTimeout = 100 * time.Millisecond
		conf.ElectionTimeout = 100 * time.Millisecond
		conf.LeaderLeaseTimeout = 50 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.Logger = hclog.NewNullLogger()
		store := raft.NewInmemStore()
		fsm := &muxNopFSM{}
		r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			trans.Close()
			t.Fatal(err)
		}
		rafts = append(rafts, r)
		fsms = append(fsms, fsm)
	}
	if err := rafts[0].BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}

	var leader *raft.Raft
	muxWaitFor(t, "a leader that every node knows", 20*time.Second, func() bool {
		leader = nil
		for _, r := range rafts {
			if r.State() == raft.Leader {
				leader = r
			}
		}
		if leader == nil {
			return false
		}
		addr, _ := leader.LeaderWithID()
		for _, r := range rafts {
			if a, _ := r.LeaderWithID(); a != addr {
				return false
			}
		}
		return true
	})
	const cmds = 10
	for i := range cmds {
		if err := leader.Apply(fmt.Appendf(nil, "cmd %d", i), 10*time.Second).Error(); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	muxWaitFor(t, "every node to apply the commands", 20*time.Second, func() bool {
		for _, f := range fsms {
			if f.applied.Load() != cmds {
				return false
			}
		}
		return true
	})

	shutdown()
	muxNoLeak(t, before)
}
