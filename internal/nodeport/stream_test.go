package nodeport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

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
		if _, err := srv.RaftLayer().Accept(); !errors.Is(err, nodeerr.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	}
	if _, err := srv.RaftLayer().Dial(raft.ServerAddress(peer.Addr().String()), time.Second); !errors.Is(err, nodeerr.ErrClosed) {
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

// muxNopFSM counts applied commands.
type muxNopFSM struct{ applied atomic.Int64 }

type muxNopSnapshot struct{}

func (f *muxNopFSM) Apply(*raft.Log) any { f.applied.Add(1); return nil }

func (f *muxNopFSM) Snapshot() (raft.FSMSnapshot, error) { return muxNopSnapshot{}, nil }

func (f *muxNopFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

func (muxNopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }

func (muxNopSnapshot) Release() {}
