package cluster

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// A leader that stops answering (its process paused, its host cut off)
// keeps its connections open: the kernel still accepts and acknowledges.
// A request sent to it, or the handshake of a new session, would wait
// until its deadline. Each rpcClient follows the leader of its group, and
// a call or dial waiting on an address that no longer leads is cut as soon
// as this node learns of another leader (errLeaderMoved).

// leaderAddr is the address of the leader cl sends to, "" when unknown.
func (cl *rpcClient) leaderAddr() string {
	if cl.leader != nil {
		return cl.leader()
	}
	_, addr := cl.n.Leader()
	return addr
}

// leaderWatch is a wait on the leader at addr: fire runs, once, when this
// node learns that another node leads.
type leaderWatch struct {
	addr  string
	fire  func()
	fired atomic.Bool
}

// watch calls fire once another node than addr leads (now, or when this
// node learns of a new leader), until stop.
func (cl *rpcClient) watch(addr string, fire func()) (w *leaderWatch, stop func()) {
	w = &leaderWatch{addr: addr, fire: fire}
	cl.mu.Lock()
	if cl.watches == nil {
		cl.watches = map[*leaderWatch]struct{}{}
	}
	cl.watches[w] = struct{}{}
	cl.mu.Unlock()
	// The leader may have changed since addr was looked up.
	if now := cl.leaderAddr(); now != "" && now != addr && w.fired.CompareAndSwap(false, true) {
		fire()
	}
	return w, func() {
		cl.mu.Lock()
		delete(cl.watches, w)
		cl.mu.Unlock()
	}
}

// leaderChanged fires the watches on any other leader than the current
// one. While no leader is known (an election) nothing fires: the old one
// may still win.
func (cl *rpcClient) leaderChanged() {
	addr := cl.leaderAddr()
	if addr == "" {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for w := range cl.watches {
		if w.addr != addr && w.fired.CompareAndSwap(false, true) {
			w.fire()
		}
	}
}

// followLeader calls leaderChanged whenever r reports a change of leader,
// until done closes. Observations that do not fit in the channel are
// dropped, which loses nothing: each looks up the leader afresh.
func (cl *rpcClient) followLeader(r *raft.Raft, done <-chan struct{}) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	for {
		select {
		case <-ch:
			cl.leaderChanged()
		case <-done:
			return
		}
	}
}

// freezeTransport freezes (or thaws) every connection of this node's
// transport, for tests: to its peers the node looks stopped.
func (n *Node) freezeTransport(frozen bool) {
	if n.mux != nil {
		n.mux.Freeze(frozen)
	}
}
