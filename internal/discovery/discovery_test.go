package discovery

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/hiqlite/hiqlite/internal/wire"
)

// Gossip tests run real memberlist nodes on 127.0.0.1 with the fast timings.
// Set HIQLITE_GOSSIP_LOG=1 to see their logs.

const discoveryWait = 15 * time.Second

var discoverySecret = []byte("discovery-test-secret-0123456789")

type discoveryNode struct {
	*Discovery
	changes atomic.Int64 // OnChange calls
}

type discoveryOpts struct {
	join   []string
	secret []byte
	bind   string       // "" = 127.0.0.1:0
	logger hclog.Logger // nil = discoveryTestLogger
}

func discoveryTestLogger() hclog.Logger {
	if os.Getenv("HIQLITE_GOSSIP_LOG") == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: os.Stderr})
}

// startDiscoveryNode starts node id (raft address 127.0.0.1:<n>) and closes
// it when the test ends.
func startDiscoveryNode(t *testing.T, id string, o discoveryOpts) *discoveryNode {
	t.Helper()
	if o.bind == "" {
		o.bind = "127.0.0.1:0"
	}
	if o.logger == nil {
		o.logger = discoveryTestLogger()
	}
	n := &discoveryNode{}
	d, err := Start(Config{
		Bind:     o.bind,
		Join:     o.join,
		Secret:   o.secret,
		Self:     Peer{ID: id, RaftAddr: "127.0.0.1:" + id[len(id)-1:] + "000", Voter: true},
		Logger:   o.logger.Named(id),
		OnChange: func() { n.changes.Add(1) },
		Fast:     true,
	})
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	n.Discovery = d
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close %s: %v", id, err)
		}
	})
	return n
}

// waitDiscovery polls cond until it holds; after timeout the test fails
// naming what it waited for.
func waitDiscovery(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func discoveryPeer(d *Discovery, id string) (PeerState, bool) {
	for _, p := range d.Peers() {
		if p.ID == id {
			return p, true
		}
	}
	return PeerState{}, false
}

// discoverySees reports whether d sees every node of want with status and the
// metadata and address that node announces.
func discoverySees(d *Discovery, status string, want ...*discoveryNode) bool {
	for _, w := range want {
		p, ok := discoveryPeer(d, w.id)
		if !ok || p.Status != status || p.GossipAddr != w.Addr() {
			return false
		}
		w.mu.Lock()
		self := w.self
		w.mu.Unlock()
		if p.Peer != self {
			return false
		}
	}
	return true
}

func discoveryIDs(ps []PeerState) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.ID+"="+p.Status)
	}
	return s
}

// TestDiscoveryCluster walks three nodes through join, update, leave, crash
// and forget.
func TestDiscoveryCluster(t *testing.T) {
	n1 := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret})
	seed := []string{n1.Addr()}
	n2 := startDiscoveryNode(t, "node-2", discoveryOpts{secret: discoverySecret, join: seed})
	n3 := startDiscoveryNode(t, "node-3", discoveryOpts{secret: discoverySecret, join: seed})
	all := []*discoveryNode{n1, n2, n3}

	for _, n := range all {
		waitDiscovery(t, n.id+" to see all three alive", discoveryWait, func() bool { return discoverySees(n.Discovery, StatusAlive, all...) })
		if got := discoveryIDs(n.Peers()); strings.Join(got, " ") != "node-1=alive node-2=alive node-3=alive" {
			t.Errorf("%s: Peers = %v, want the three sorted by id", n.id, got)
		}
		waitDiscovery(t, n.id+" OnChange", discoveryWait, func() bool { return n.changes.Load() > 0 })
	}

	// Update propagates.
	before := n1.changes.Load()
	p2 := Peer{ID: "node-2", RaftAddr: "127.0.0.1:2001", Voter: false, InCluster: true}
	if err := n2.Update(p2); err != nil {
		t.Fatalf("update: %v", err)
	}
	for _, n := range all {
		waitDiscovery(t, n.id+" to see node-2's update", discoveryWait, func() bool {
			p, _ := discoveryPeer(n.Discovery, "node-2")
			return p.Peer == p2 && p.Status == StatusAlive
		})
	}
	waitDiscovery(t, "OnChange after the update", discoveryWait, func() bool { return n1.changes.Load() > before })
	if err := n2.Update(Peer{ID: "node-9", RaftAddr: "127.0.0.1:2001"}); err == nil {
		t.Error("Update changed the node id")
	}
	if err := n2.Update(Peer{ID: "node-2", RaftAddr: "nowhere"}); err == nil {
		t.Error("Update accepted a raft address without a port")
	}

	// A graceful leave shows as left everywhere, this node included.
	if err := n3.Leave(5 * time.Second); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := n3.Leave(5 * time.Second); err != nil {
		t.Fatalf("second leave: %v", err)
	}
	if err := n3.Update(Peer{ID: "node-3", RaftAddr: "127.0.0.1:3000"}); err == nil {
		t.Error("Update after Leave succeeded")
	}
	for _, n := range all {
		waitDiscovery(t, n.id+" to see node-3 left", discoveryWait, func() bool {
			p, _ := discoveryPeer(n.Discovery, "node-3")
			return p.Status == StatusLeft
		})
	}
	if err := n3.Close(); err != nil {
		t.Fatalf("close node-3: %v", err)
	}

	// A crash (Close without Leave) shows as dead.
	closed := time.Now()
	if err := n2.Close(); err != nil {
		t.Fatalf("close node-2: %v", err)
	}
	if err := n2.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	waitDiscovery(t, "node-1 to see node-2 dead", discoveryWait, func() bool {
		p, _ := discoveryPeer(n1.Discovery, "node-2")
		return p.Status == StatusDead
	})
	p, _ := discoveryPeer(n1.Discovery, "node-2")
	if p.Since.Before(closed) || p.Peer != p2 {
		t.Errorf("dead node-2 = %+v, want its last metadata and Since after %v", p, closed)
	}
	if p, _ := discoveryPeer(n1.Discovery, "node-3"); p.Status != StatusLeft {
		t.Errorf("node-3 = %+v after node-2 died, want left", p)
	}

	// Forget drops dead and left nodes only.
	n1.Forget("node-1")
	n1.Forget("node-2")
	n1.Forget("node-3")
	n1.Forget("node-404")
	if got := discoveryIDs(n1.Peers()); strings.Join(got, " ") != "node-1=alive" {
		t.Errorf("after Forget: Peers = %v, want only node-1", got)
	}
	if err := n2.Update(p2); !errors.Is(err, wire.ErrClosed) {
		t.Errorf("Update after Close = %v, want wire.ErrClosed", err)
	}
	if err := n2.Leave(time.Second); !errors.Is(err, wire.ErrClosed) {
		t.Errorf("Leave after Close = %v, want wire.ErrClosed", err)
	}
}

// discoveryLogBuffer is a bytes.Buffer for loggers on several goroutines.
type discoveryLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *discoveryLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *discoveryLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDiscoveryWrongSecret: a node with another secret, or none, never gets
// in, and the cluster does not notice it. Nothing logs the secret or key.
func TestDiscoveryWrongSecret(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
	}{
		{"other secret", []byte("another-secret-for-the-outsider")},
		{"no secret", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &discoveryLogBuffer{}
			logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})
			n1 := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, logger: logger})
			n2 := startDiscoveryNode(t, "node-2", discoveryOpts{secret: discoverySecret, logger: logger, join: []string{n1.Addr()}})
			waitDiscovery(t, "node-1 and node-2 to meet", discoveryWait, func() bool {
				return discoverySees(n1.Discovery, StatusAlive, n1, n2) && discoverySees(n2.Discovery, StatusAlive, n1, n2)
			})

			out := startDiscoveryNode(t, "node-3", discoveryOpts{secret: tc.secret, logger: logger, join: []string{n1.Addr(), n2.Addr()}})
			waitDiscovery(t, "node-3 to try joining five times", discoveryWait, func() bool { return out.joinAttempts.Load() >= 5 })
			if got := discoveryIDs(out.Peers()); strings.Join(got, " ") != "node-3=alive" {
				t.Errorf("outsider sees %v, want only itself", got)
			}
			for _, n := range []*discoveryNode{n1, n2} {
				if got := discoveryIDs(n.Peers()); strings.Join(got, " ") != "node-1=alive node-2=alive" {
					t.Errorf("%s sees %v, want node-1 and node-2 alive", n.id, got)
				}
			}
			n1.Close()
			n2.Close()
			out.Close()

			key, err := gossipKey(discoverySecret)
			if err != nil {
				t.Fatal(err)
			}
			text := logs.String()
			for _, s := range [][]byte{discoverySecret, tc.secret, key} {
				if len(s) == 0 {
					continue
				}
				for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s)} {
					if strings.Contains(text, form) {
						t.Errorf("logs contain a secret or key: %q", form)
					}
				}
			}
		})
	}
}

// freeDiscoveryAddr returns a loopback address whose TCP and UDP port were
// free a moment ago.
func freeDiscoveryAddr(t *testing.T) string {
	t.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// TestDiscoveryLateSeed: the joiner starts first and keeps trying; the seed,
// which lists itself, starts later.
func TestDiscoveryLateSeed(t *testing.T) {
	t.Parallel()
	seedAddr := freeDiscoveryAddr(t)
	joiner := startDiscoveryNode(t, "node-2", discoveryOpts{secret: discoverySecret, join: []string{seedAddr}})
	waitDiscovery(t, "failed join attempts", discoveryWait, func() bool { return joiner.joinAttempts.Load() >= 3 })

	seed := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, join: []string{seedAddr}, bind: seedAddr})
	if seed.Addr() != seedAddr {
		t.Fatalf("seed address %s, want %s", seed.Addr(), seedAddr)
	}
	if len(seed.seeds) != 0 {
		t.Errorf("the seed would join itself: seeds %v", seed.seeds)
	}
	for _, n := range []*discoveryNode{seed, joiner} {
		waitDiscovery(t, n.id+" to see both", discoveryWait, func() bool { return discoverySees(n.Discovery, StatusAlive, seed, joiner) })
	}
}

// TestDiscoveryRejoinWhenAlone: a node whose only peer crashed and came back
// at its address finds it again through the seeds.
func TestDiscoveryRejoinWhenAlone(t *testing.T) {
	t.Parallel()
	seedAddr := freeDiscoveryAddr(t)
	seed := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, bind: seedAddr})
	n2 := startDiscoveryNode(t, "node-2", discoveryOpts{secret: discoverySecret, join: []string{seedAddr}})
	waitDiscovery(t, "node-2 to see the seed", discoveryWait, func() bool { return discoverySees(n2.Discovery, StatusAlive, seed, n2) })
	seed.Close()
	waitDiscovery(t, "node-2 to see the seed dead", discoveryWait, func() bool {
		p, _ := discoveryPeer(n2.Discovery, "node-1")
		return p.Status == StatusDead
	})
	attempts := n2.joinAttempts.Load()
	// The new seed process knows nothing of node-2: only node-2's retry can
	// bring them together.
	seed2 := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, bind: seedAddr})
	waitDiscovery(t, "node-2 and the restarted seed to meet", discoveryWait, func() bool {
		return discoverySees(n2.Discovery, StatusAlive, seed2, n2) && discoverySees(seed2.Discovery, StatusAlive, seed2, n2)
	})
	if n2.joinAttempts.Load() == attempts {
		t.Error("they met without a join attempt")
	}
}

// TestDiscoveryOnChange: OnChange follows joins and updates and never runs
// concurrently with itself.
func TestDiscoveryOnChange(t *testing.T) {
	t.Parallel()
	var calls, inFlight atomic.Int64
	var overlapped atomic.Bool
	d, err := Start(Config{
		Bind:   "127.0.0.1:0",
		Self:   Peer{ID: "watcher", RaftAddr: "127.0.0.1:1000"},
		Logger: discoveryTestLogger(),
		OnChange: func() {
			if inFlight.Add(1) != 1 {
				overlapped.Store(true)
			}
			calls.Add(1)
			inFlight.Add(-1)
		},
		Fast: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	waitDiscovery(t, "OnChange for the node itself", discoveryWait, func() bool { return calls.Load() >= 1 })

	var others []*discoveryNode
	for _, id := range []string{"node-1", "node-2", "node-3"} {
		others = append(others, startDiscoveryNode(t, id, discoveryOpts{join: []string{d.Addr()}}))
	}
	waitDiscovery(t, "the three to join", discoveryWait, func() bool { return discoverySees(d, StatusAlive, others...) })
	waitDiscovery(t, "OnChange after the joins", discoveryWait, func() bool { return calls.Load() >= 2 })

	n := calls.Load()
	if err := d.Update(Peer{ID: "watcher", RaftAddr: "127.0.0.1:1000", InCluster: true}); err != nil {
		t.Fatal(err)
	}
	waitDiscovery(t, "OnChange after Update", discoveryWait, func() bool { return calls.Load() > n })

	n = calls.Load()
	if err := others[0].Update(Peer{ID: "node-1", RaftAddr: "127.0.0.1:1000", InCluster: true}); err != nil {
		t.Fatal(err)
	}
	waitDiscovery(t, "OnChange after a peer's Update", discoveryWait, func() bool { return calls.Load() > n })
	if overlapped.Load() {
		t.Error("OnChange ran concurrently with itself")
	}
}

// TestDiscoveryMalformedPeer: a memberlist node announcing metadata that
// does not decode (with the right key) is ignored.
func TestDiscoveryMalformedPeer(t *testing.T) {
	t.Parallel()
	d := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret})
	for _, tc := range []struct {
		name string
		meta []byte
	}{
		{"garbage", []byte{0xff, 0, 1, 2, 3}},
		{"empty", nil},
		{"truncated", []byte{peerMetaV1, 0, 9, 'x'}},
		{"name mismatch", mustPeerMeta(t, Peer{ID: "someone-else", RaftAddr: "127.0.0.1:1"})},
	} {
		key, err := gossipKey(discoverySecret)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := discoverySettings(true)
		c.Name = "raw-" + strings.ReplaceAll(tc.name, " ", "-")
		c.BindAddr, c.BindPort, c.AdvertisePort = "127.0.0.1", 0, 0
		c.SecretKey = key
		c.LogOutput = io.Discard
		c.Delegate = rawMetaDelegate(tc.meta)
		ml, err := memberlist.Create(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ml.Join([]string{d.Addr()}); err != nil {
			t.Fatalf("%s: join: %v", tc.name, err)
		}
		waitDiscovery(t, "memberlist under node-1 to know "+c.Name, discoveryWait, func() bool {
			return slices.ContainsFunc(d.ml.Members(), func(n *memberlist.Node) bool { return n.Name == c.Name })
		})
		ml.Shutdown()
	}
	if got := discoveryIDs(d.Peers()); strings.Join(got, " ") != "node-1=alive" {
		t.Errorf("Peers = %v, want only node-1", got)
	}
}

type rawMetaDelegate []byte

func (r rawMetaDelegate) NodeMeta(int) []byte             { return r }
func (rawMetaDelegate) NotifyMsg([]byte)                  {}
func (rawMetaDelegate) GetBroadcasts(_, _ int) [][]byte   { return nil }
func (rawMetaDelegate) LocalState(bool) []byte            { return nil }
func (rawMetaDelegate) MergeRemoteState(_ []byte, _ bool) {}

func mustPeerMeta(t testing.TB, p Peer) []byte {
	t.Helper()
	b, err := encodePeerMeta(p, false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDiscoveryNoGoroutineLeak runs a small cluster through its life and
// checks that the goroutine count comes back down after Close. Not parallel:
// it counts every goroutine of the process.
func TestDiscoveryNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		n1, err := Start(Config{Bind: "127.0.0.1:0", Secret: discoverySecret, Self: Peer{ID: "node-1", RaftAddr: "127.0.0.1:1000"}, OnChange: func() {}, Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		defer n1.Close()
		var rest []*Discovery
		for _, id := range []string{"node-2", "node-3"} {
			d, err := Start(Config{Bind: "127.0.0.1:0", Join: []string{n1.Addr(), "127.0.0.1:1"}, Secret: discoverySecret, Self: Peer{ID: id, RaftAddr: "127.0.0.1:1000"}, OnChange: func() {}, Fast: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			rest = append(rest, d)
		}
		waitDiscovery(t, "three alive", discoveryWait, func() bool {
			n := 0
			for _, p := range n1.Peers() {
				if p.Status == StatusAlive {
					n++
				}
			}
			return n == 3
		})
		if err := rest[0].Update(Peer{ID: "node-2", RaftAddr: "127.0.0.1:1000", InCluster: true}); err != nil {
			t.Fatal(err)
		}
		if err := rest[1].Leave(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Log(b.String())
		}
	})
	waitDiscovery(t, "goroutines to end", discoveryWait, func() bool {
		if runtime.NumGoroutine() > before {
			return false
		}
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		return !strings.Contains(b.String(), "hashicorp/memberlist") && !strings.Contains(b.String(), "cluster.(*Discovery)")
	})
}

func TestDiscoveryStartErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no id", Config{Bind: "127.0.0.1:0", Self: Peer{RaftAddr: "127.0.0.1:1"}}},
		{"id with a space", Config{Bind: "127.0.0.1:0", Self: Peer{ID: "a b", RaftAddr: "127.0.0.1:1"}}},
		{"no raft address", Config{Bind: "127.0.0.1:0", Self: Peer{ID: "a"}}},
		{"raft port 0", Config{Bind: "127.0.0.1:0", Self: Peer{ID: "a", RaftAddr: "127.0.0.1:0"}}},
		{"bind without port", Config{Bind: "127.0.0.1", Self: Peer{ID: "a", RaftAddr: "127.0.0.1:1"}}},
		{"bind port too big", Config{Bind: "127.0.0.1:70000", Self: Peer{ID: "a", RaftAddr: "127.0.0.1:1"}}},
	} {
		if d, err := Start(tc.cfg); err == nil {
			d.Close()
			t.Errorf("%s: started", tc.name)
		}
	}
}

func TestDiscoveryGossipKey(t *testing.T) {
	t.Parallel()
	k1, err := gossipKey([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	k1again, _ := gossipKey([]byte("0123456789abcdef"))
	k2, _ := gossipKey([]byte("0123456789abcdeF"))
	if len(k1) != 32 || memberlist.ValidateKey(k1) != nil {
		t.Fatalf("key of %d bytes, want 32 (AES-256)", len(k1))
	}
	if !bytes.Equal(k1, k1again) || bytes.Equal(k1, k2) || bytes.Contains(k1, []byte("0123456789abcdef")) {
		t.Error("the key is not a deterministic function of the secret alone")
	}
}

func TestDiscoveryMemberlistLog(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := memberlistLog{hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &out, DisableTime: true})}
	for _, line := range []string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n",
		"[INFO] memberlist: Marking x as failed\n",
		"[WARN] memberlist: Refuting a suspect message\n",
		"[ERR] memberlist: Push/Pull with x failed\n",
		"no level\n",
	} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	want := "[TRACE] Stream connection from=127.0.0.1:1\n" +
		"[DEBUG] Marking x as failed\n" +
		"[WARN]  Refuting a suspect message\n" +
		"[WARN]  Push/Pull with x failed\n" +
		"[DEBUG] no level\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestDiscoveryOtherSeeds(t *testing.T) {
	t.Parallel()
	got := otherSeeds([]string{"127.0.0.1:7946", "10.0.0.2:7946", "[::1]:7946", "localhost:7946", "127.0.0.1:7947"}, "127.0.0.1:7946", "0:0:0:0:0:0:0:1:7946")
	if strings.Join(got, " ") != "10.0.0.2:7946 [::1]:7946 localhost:7946 127.0.0.1:7947" {
		t.Errorf("otherSeeds = %v", got)
	}
}

// peerMetaCases feeds the round-trip test and the fuzz corpus.
var peerMetaCases = []struct {
	p       Peer
	leaving bool
}{
	{Peer{ID: "node-1", RaftAddr: "127.0.0.1:7000", Voter: true}, false},
	{Peer{ID: "n", RaftAddr: "[::1]:1", InCluster: true}, true},
	{Peer{ID: "node-0123456789abcdef", RaftAddr: "db-1.example.internal:65535", Voter: true, InCluster: true}, false},
	{Peer{ID: strings.Repeat("x", maxPeerIDLen), RaftAddr: strings.Repeat("h", maxRaftAddrLen-6) + ":65535", Voter: true, InCluster: true}, true},
}

func TestPeerMetaRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range peerMetaCases {
		b, err := encodePeerMeta(tc.p, tc.leaving)
		if err != nil {
			t.Fatalf("encode %+v: %v", tc.p, err)
		}
		if len(b) >= memberlist.MetaMaxSize {
			t.Errorf("%+v: %d bytes of metadata", tc.p, len(b))
		}
		p, leaving, err := decodePeerMeta(b)
		if err != nil || p != tc.p || leaving != tc.leaving {
			t.Errorf("decode(encode(%+v, %v)) = %+v, %v, %v", tc.p, tc.leaving, p, leaving, err)
		}
		// Version 1 grows by appending: old decoders ignore the rest.
		b = append(b, 0xff, 0xfe)
		b[1] |= 0x80
		if p, leaving, err := decodePeerMeta(b); err != nil || p != tc.p || leaving != tc.leaving {
			t.Errorf("with an extension: %+v, %v, %v", p, leaving, err)
		}
	}
}

func TestPeerMetaMalformed(t *testing.T) {
	t.Parallel()
	good := mustPeerMeta(t, Peer{ID: "node-1", RaftAddr: "127.0.0.1:7000"})
	for _, b := range [][]byte{
		nil,
		{peerMetaV1},
		{2, 0, 1, 'a', 3, 'a', ':', '1'}, // unknown version
		{peerMetaV1, 0, 0, 10, '1', '2', '7', '.', '0'},      // empty id
		{peerMetaV1, 0, 1, 'a', 2, ':', '1'},                 // no host
		{peerMetaV1, 0, 1, 'a', 3, 'a', ':', 'x'},            // bad port
		{peerMetaV1, 0, 1, 'a', 0},                           // no raft address
		{peerMetaV1, 0, 1, 0x01, 3, 'a', ':', '1'},           // control character in id
		{peerMetaV1, 0, 2, 0xc3, 0xa9, 3, 'a', ':', '1'},     // non-ASCII id
		{peerMetaV1, 0, 1, 'a', 5, 'a', ':', '1', 0xff, ':'}, // not host:port
		good[:len(good)-1],
		good[:3],
	} {
		if p, _, err := decodePeerMeta(b); err == nil {
			t.Errorf("decodePeerMeta(%q) = %+v, want an error", b, p)
		}
	}
}

// FuzzPeerMeta: the decoder never panics, and what it accepts re-encodes to
// metadata that decodes to the same peer and fits memberlist.
func FuzzPeerMeta(f *testing.F) {
	for _, tc := range peerMetaCases {
		b, err := encodePeerMeta(tc.p, tc.leaving)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{peerMetaV1, 0xff, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, leaving, err := decodePeerMeta(b)
		if err != nil {
			return
		}
		again, err := encodePeerMeta(p, leaving)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", p, err)
		}
		if len(again) >= memberlist.MetaMaxSize {
			t.Fatalf("%d bytes of metadata", len(again))
		}
		p2, leaving2, err := decodePeerMeta(again)
		if err != nil || p2 != p || leaving2 != leaving {
			t.Fatalf("round trip of %+v: %+v, %v, %v", p, p2, leaving2, err)
		}
	})
}

func TestDiscoveryResolveBind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bind string
		host string
		port int
	}{
		{"127.0.0.1:7946", "127.0.0.1", 7946},
		{":0", "0.0.0.0", 0},
		{"[::1]:1", "::1", 1},
		{"localhost:2", "127.0.0.1", 2},
	} {
		host, port, err := resolveBind(tc.bind)
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("resolveBind(%q) = %q, %d, %v; want %q, %d", tc.bind, host, port, err, tc.host, tc.port)
		}
	}
}

// TestDiscoveryIDTaken: a node that joins under the id of a live node is
// told so (IDTaken), while the live node, announced in a cluster, is not,
// and the others keep seeing the live node at its own address.
func TestDiscoveryIDTaken(t *testing.T) {
	t.Parallel()
	n1 := startDiscoveryNode(t, "n1", discoveryOpts{secret: discoverySecret})
	n2 := startDiscoveryNode(t, "n2", discoveryOpts{secret: discoverySecret, join: []string{n1.Addr()}})
	for _, n := range []*discoveryNode{n1, n2} {
		n.mu.Lock()
		p := n.self
		n.mu.Unlock()
		p.InCluster = true
		if err := n.Update(p); err != nil {
			t.Fatal(err)
		}
	}
	waitDiscovery(t, "n1 to see n2 in a cluster", discoveryWait, func() bool { return discoverySees(n1.Discovery, StatusAlive, n2) })

	imp := startDiscoveryNode(t, "n2", discoveryOpts{secret: discoverySecret, join: []string{n1.Addr()}})
	waitDiscovery(t, "the impostor to learn its id is taken", discoveryWait, func() bool { return imp.IDTaken() != nil })
	if err := imp.IDTaken(); !errors.Is(err, ErrNodeIDInUse) || !strings.Contains(err.Error(), n2.Addr()) {
		t.Fatalf("IDTaken() = %v; want ErrNodeIDInUse naming the live member's gossip address %s", err, n2.Addr())
	}
	if err := n2.IDTaken(); err != nil {
		t.Fatalf("the live member, in a cluster, got IDTaken() = %v", err)
	}
	if !discoverySees(n1.Discovery, StatusAlive, n2) {
		t.Fatalf("n1 sees n2 as %v, want it alive at %s", discoveryIDs(n1.Peers()), n2.Addr())
	}
}
