package discovery

import (
	"bytes"
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
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

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
	if err := n2.Update(p2); !errors.Is(err, nodeerr.ErrClosed) {
		t.Errorf("Update after Close = %v, want wire.ErrClosed", err)
	}
	if err := n2.Leave(time.Second); !errors.Is(err, nodeerr.ErrClosed) {
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

func (r rawMetaDelegate) NodeMeta(int) []byte { return r }

func (rawMetaDelegate) NotifyMsg([]byte) {}

func (rawMetaDelegate) GetBroadcasts(_, _ int) [][]byte { return nil }

func (rawMetaDelegate) LocalState(bool) []byte { return nil }

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
