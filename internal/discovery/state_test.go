package discovery

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestDiscoveryState: a node's state reaches its peers, changes are
// gossiped again, and an Update keeps the state in the metadata.
func TestDiscoveryState(t *testing.T) {
	t.Parallel()
	var applied atomic.Uint64
	applied.Store(10)
	a, err := Start(Config{
		Bind:   "127.0.0.1:0",
		Self:   Peer{ID: "a", RaftAddr: "127.0.0.1:1000", Voter: true},
		Logger: discoveryTestLogger(),
		State: func() NodeState {
			return NodeState{AppliedIndex: applied.Load(), Term: 3, Role: "follower", LastContact: 5 * time.Millisecond}
		},
		Fast: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := startDiscoveryNode(t, "node-2", discoveryOpts{join: []string{a.Addr()}})

	stateOf := func(want uint64) func() bool {
		return func() bool {
			p, ok := discoveryPeer(b.Discovery, "a")
			return ok && !p.StateAt.IsZero() && p.State.AppliedIndex == want
		}
	}
	waitDiscovery(t, "a's state at b", discoveryWait, stateOf(10))
	p, _ := discoveryPeer(b.Discovery, "a")
	if p.State.Term != 3 || p.State.Role != "follower" || p.State.LastContact != 5*time.Millisecond {
		t.Errorf("a's state at b: %+v", p.State)
	}
	if q, _ := discoveryPeer(a, "node-2"); !q.StateAt.IsZero() {
		t.Errorf("node-2 gossips no state, a has %+v", q)
	}

	waitDiscovery(t, "b seen by a", discoveryWait, func() bool {
		q, ok := discoveryPeer(a, "node-2")
		return ok && q.Status == StatusAlive
	})
	applied.Store(20)
	waitDiscovery(t, "a's new state at b", discoveryWait, stateOf(20))
	if err := a.Update(Peer{ID: "a", RaftAddr: "127.0.0.1:1000", Voter: true, InCluster: true}); err != nil {
		t.Fatal(err)
	}
	waitDiscovery(t, "a's update at b", discoveryWait, func() bool {
		p, ok := discoveryPeer(b.Discovery, "a")
		return ok && p.InCluster && p.State.AppliedIndex == 20
	})
}

// TestDiscoveryCloseDuringState: Close, which holds opMu while it joins
// stateLoop, returns while stateLoop is about to announce a state.
func TestDiscoveryCloseDuringState(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	var once atomic.Bool
	d, err := Start(Config{
		Bind:   "127.0.0.1:0",
		Self:   Peer{ID: "a", RaftAddr: "127.0.0.1:1000"},
		Logger: discoveryTestLogger(),
		State: func() NodeState {
			if once.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
			return NodeState{Role: "follower"}
		},
		Fast: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	<-d.stopCh // Close holds opMu now
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(discoveryWait):
		t.Fatal("Close did not return while stateLoop announced a state")
	}
}
