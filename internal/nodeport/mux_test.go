package nodeport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
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
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

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
				if !errors.Is(err, nodeerr.ErrClosed) {
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
