package cluster

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Raft assumes a voter never forgets its log. A node whose raft directory
// was lost (a wiped volume, a restore of the database alone) comes back as
// itself with an empty log, and raft grants an empty node's vote to any
// candidate: its log is never "more up to date". That vote can elect a
// candidate that lacks entries the node had acknowledged before it lost
// them, and the new leader then overwrites them on the one node that still
// holds them: committed writes lost.
//
// voteGuard closes that hole. It sits between the transport and raft on a
// node that starts without Raft state and refuses (pre-)votes to a
// candidate whose log goes past the bootstrap entry (index 1) for as long
// as the node's log (or snapshot) does not reach the highest commit index
// a leader has told it of: a log a leader has sent only in part may still
// lack entries the node had acknowledged. A cluster that is being
// bootstrapped still elects its first leader: that candidate holds the
// bootstrap configuration alone. Once the node has caught up, it votes by
// raft's rules again.
//
// The cost of the rule: a voter without state cannot help elect anyone
// past the bootstrap. So new voters join as non-voters and are promoted
// once they have caught up (reconcile), and the nodes of a new cluster
// lift their guard (trustFreshCluster).
type voteGuard struct {
	raft.Transport
	lastIndex func() uint64 // the last index of the node's log or snapshot
	// seen is the highest commit index a leader sent this node, in an
	// AppendEntries or (as the snapshot's index) an InstallSnapshot.
	seen    atomic.Uint64
	stop    <-chan struct{}
	out     chan raft.RPC
	armed   atomic.Bool // false once the node had state: the guard only forwards
	warned  atomic.Bool
	refused atomic.Int64 // votes and pre-votes refused
	warn    func(candidate []byte, lastIndex uint64)
}

// guardVotes wraps trans for a node that starts without Raft state. The
// guard's goroutine forwards RPCs until stop closes.
func guardVotes(trans raft.Transport, lastIndex func() uint64, stop <-chan struct{}, warn func(candidate []byte, lastIndex uint64)) *voteGuard {
	g := &voteGuard{Transport: trans, lastIndex: lastIndex, stop: stop, out: make(chan raft.RPC), warn: warn}
	g.armed.Store(true)
	return g
}

// Consumer is the channel raft reads its RPCs from.
func (g *voteGuard) Consumer() <-chan raft.RPC { return g.out }

// run forwards the transport's RPCs to raft, answering refused votes
// itself. It is the guard's one goroutine.
func (g *voteGuard) run() {
	in := g.Transport.Consumer()
	for {
		select {
		case <-g.stop:
			return
		case rpc := <-in:
			g.note(rpc)
			if g.refuse(rpc) {
				continue
			}
			select {
			case g.out <- rpc:
			case <-g.stop:
				return
			}
		}
	}
}

// note records the commit index a leader's request tells of.
func (g *voteGuard) note(rpc raft.RPC) {
	if !g.armed.Load() {
		return
	}
	var idx uint64
	switch req := rpc.Command.(type) {
	case *raft.AppendEntriesRequest:
		idx = req.LeaderCommitIndex
	case *raft.InstallSnapshotRequest:
		idx = req.LastLogIndex
	default:
		return
	}
	for {
		cur := g.seen.Load()
		if idx <= cur || g.seen.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// refuse answers rpc with a refusal when it asks this stateless node for
// a vote that could elect a leader missing committed entries, and reports
// whether it did.
func (g *voteGuard) refuse(rpc raft.RPC) bool {
	if !g.armed.Load() {
		return false
	}
	var last uint64
	var candidate []byte
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		last, candidate = req.LastLogIndex, req.ID
	case *raft.RequestPreVoteRequest:
		last, candidate = req.LastLogIndex, req.ID
	default:
		return false
	}
	if last <= 1 {
		return false // the first election of a new cluster
	}
	if last := g.lastIndex(); last > 0 && last >= g.seen.Load() {
		g.armed.Store(false)
		return false
	}
	g.refused.Add(1)
	if g.warn != nil && !g.warned.Swap(true) {
		g.warn(candidate, last)
	}
	switch rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		rpc.Respond(&raft.RequestVoteResponse{Granted: false}, nil)
	default:
		rpc.Respond(&raft.RequestPreVoteResponse{Granted: false}, nil)
	}
	return true
}

// Close closes the wrapped transport (raft closes its transport when it
// shuts down).
func (g *voteGuard) Close() error {
	return closeTransport(g.Transport)
}

// RequestPreVote lets raft use pre-vote through the guard, as it does
// through the network transport.
func (g *voteGuard) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return g.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

var (
	_ raft.WithClose   = (*voteGuard)(nil)
	_ raft.WithPreVote = (*voteGuard)(nil)
)

// lastLogOrSnapshot is the last index of the node's Raft log, or of its
// newest snapshot when that is later (after a snapshot install the log
// may be empty); 0 for a node without state.
func (n *Node) lastLogOrSnapshot() uint64 {
	var last uint64
	if l, err := n.rawLog().LastIndex(); err == nil {
		last = l
	}
	if metas, err := n.snaps.List(); err == nil && len(metas) > 0 {
		last = max(last, metas[0].Index)
	}
	return last
}
