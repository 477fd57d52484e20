package cluster

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/discovery"
	"github.com/hiqlite/hiqlite/internal/nodeport"
)

// membershipInterval is how often the membership loop re-checks gossip
// against the Raft configuration even without a gossip event.
const membershipInterval = time.Second

// runMembership is the node's membership goroutine (cluster mode only). It
// wakes on gossip changes and on a timer. Before the node belongs to a
// cluster it decides whether to bootstrap one; afterwards, while
// the node leads, it makes the Raft configuration follow gossip: it adds
// discovered nodes, removes nodes that left gracefully and reaps nodes dead
// for longer than ReapTimeout. Leadership changes hand the duty over by
// themselves: only the current leader acts. A node out of any cluster
// warns why now and then; one that gossip refused stops (identity.go).
func (n *Node) runMembership() {
	t := time.NewTicker(membershipInterval)
	defer t.Stop()
	lastWarn := time.Now()
	for {
		n.noteGone()
		if !n.inCluster.Load() {
			if n.refuse() {
				return
			}
			n.trustFreshCluster()
			n.maybeBootstrap()
			n.warnStray(&lastWarn)
		} else if n.IsLeader() {
			n.reconcile()
		}
		select {
		case <-n.stopCh:
			return
		case <-n.gossipCh:
		case <-t.C:
		}
	}
}

// maybeBootstrap bootstraps the cluster when this node sees Expect voters
// in gossip, none of them belongs to a cluster yet, and this node has the
// lowest id among them: exactly those voters form the first configuration.
// A node that sees a peer in a cluster never bootstraps: it waits for the
// leader to add it (a node whose data was wiped comes back that way, as
// itself). Nor does a node with seeds and no Expect (see bootstrapExpect).
// Raft state on disk also means "in a cluster" (see Open).
func (n *Node) maybeBootstrap() {
	// First: a node added by a leader (or named in the bootstrap
	// configuration) has Raft state while peers are in a cluster, and must
	// learn it is in one too: to reconcile when it leads, and to keep its
	// id when a newcomer claims it (Discovery.conflict).
	if n.raftHasState() {
		n.setInCluster()
		return
	}
	peers := n.disc.Peers()
	var voters []discovery.PeerState
	for _, p := range peers {
		if p.Status != "alive" {
			continue
		}
		if p.InCluster {
			return // a cluster exists: wait to be added
		}
		if p.Voter {
			voters = append(voters, p)
		}
	}
	expect := n.bootstrapExpect()
	if expect == 0 || len(voters) < expect || !n.cfg.Voter {
		return
	}
	slices.SortFunc(voters, func(a, b discovery.PeerState) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	voters = voters[:expect]
	if voters[0].ID != n.id {
		return // the lowest id bootstraps; the others are added by it
	}
	for _, p := range voters[1:] {
		if !n.canAdd(p.ID, p.RaftAddr) {
			return // a voter the port refuses would never vote: wait
		}
	}
	var conf raft.Configuration
	for _, p := range voters {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	n.cfg.logger.Info("bootstrapping the cluster", "voters", len(conf.Servers))
	if err := n.bootstrapLive(conf); err != nil && err != raft.ErrCantBootstrap {
		n.cfg.logger.Error("bootstrap failed", "error", err)
		return
	}
	n.setInCluster()
}

// bootstrapExpect is how many voters this node waits for in gossip before
// it bootstraps, 0 when it never does. A node told to join (seeds, no
// Expect) only joins, as Consul's servers without -bootstrap-expect: seeds
// that do not answer, or refuse it, must not leave it leading a cluster of
// its own that takes writes nobody else sees (identity.go).
func (n *Node) bootstrapExpect() int {
	switch {
	case n.cfg.Expect > 0:
		return n.cfg.Expect
	case len(n.cfg.Join) > 0:
		return 0
	}
	return 1
}

// raftHasState reports whether raft has a configuration: bootstrapped here
// or received from a leader that added this node.
func (n *Node) raftHasState() bool {
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// setInCluster records that the node belongs to a cluster and announces it.
func (n *Node) setInCluster() {
	if n.inCluster.Swap(true) {
		return
	}
	if err := n.disc.Update(n.selfPeer()); err != nil {
		n.cfg.logger.Warn("announce cluster membership", "error", err)
	}
}

func (n *Node) selfPeer() discovery.Peer {
	return discovery.Peer{ID: n.id, RaftAddr: n.addr, Voter: n.cfg.Voter, InCluster: n.inCluster.Load()}
}

// reconcile makes the Raft configuration follow gossip; leader only.
func (n *Node) reconcile() {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	conf := f.Configuration()
	index := f.Index()
	servers := map[string]raft.Server{}
	for _, s := range conf.Servers {
		servers[string(s.ID)] = s
	}
	now := time.Now()
	for _, p := range n.disc.Peers() {
		if p.ID == n.id {
			continue
		}
		s, member := servers[p.ID]
		switch p.Status {
		case "alive":
			wantVoter := p.Voter
			if member && string(s.Address) == p.RaftAddr && (s.Suffrage == raft.Voter) == wantVoter {
				continue
			}
			if (!member || string(s.Address) != p.RaftAddr) && !n.canAdd(p.ID, p.RaftAddr) {
				continue // not reachable over the port: never a member
			}
			// A voter joins as a non-voter and is promoted once it has
			// caught up: a new node refuses votes until it has the log
			// (voteguard.go), so as a voter it could leave the others
			// short of a quorum if the leader failed meanwhile.
			promote := member && string(s.Address) == p.RaftAddr && wantVoter
			if promote && !caughtUp(p, index) {
				continue
			}
			var err error
			if promote {
				err = n.futureErr(context.Background(), n.raft.AddVoter(raft.ServerID(p.ID), raft.ServerAddress(p.RaftAddr), index, n.cfg.Timeout))
			} else {
				err = n.futureErr(context.Background(), n.raft.AddNonvoter(raft.ServerID(p.ID), raft.ServerAddress(p.RaftAddr), index, n.cfg.Timeout))
			}
			if err != nil {
				n.cfg.logger.Warn("add server", "id", p.ID, "error", err)
				return // the configuration changed under us: retry on the next round
			}
			n.cfg.logger.Info("added server", "id", p.ID, "voter", promote, "to_be_voter", wantVoter)
			return
		case "left":
			if member {
				if err := n.futureErr(context.Background(), n.raft.RemoveServer(raft.ServerID(p.ID), index, n.cfg.Timeout)); err != nil {
					n.cfg.logger.Warn("remove server that left", "id", p.ID, "error", err)
					return
				}
				n.cfg.logger.Info("removed server that left", "id", p.ID)
				return
			}
			n.disc.Forget(p.ID)
		case "dead":
			if now.Sub(p.Since) < n.cfg.ReapTimeout {
				continue
			}
			if member {
				if err := n.futureErr(context.Background(), n.raft.RemoveServer(raft.ServerID(p.ID), index, n.cfg.Timeout)); err != nil {
					n.cfg.logger.Warn("reap dead server", "id", p.ID, "error", err)
					return
				}
				n.cfg.logger.Info("reaped dead server", "id", p.ID, "dead_for", now.Sub(p.Since))
				return
			}
			n.disc.Forget(p.ID)
		}
	}
}

// probeLogEvery is the least time between two log lines about the same
// node that failed its probe.
const probeLogEvery = 30 * time.Second

// canAdd reports whether the leader may add the node id at addr to the
// Raft configuration: it must first prove that it can be reached over the
// port, TLS and secret included. Gossip only says that a node holds the
// gossip key; a node that cannot pass the port's handshakes would, as a
// voter, raise the quorum without ever voting (a fourth voter that cannot
// be reached makes a 3-node cluster need 3 of 4 and halts it on the next
// failure). A refusal is logged at WARN, once per probeLogEvery per node.
func (n *Node) canAdd(id, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), nodeport.HandshakeTimeout)
	defer cancel()
	err := n.mux.Probe(ctx, addr)
	if err == nil {
		n.probes.forget(id)
		return true
	}
	if n.probes.due(id, time.Now()) {
		n.cfg.logger.Warn("not adding a discovered node: it failed the port's handshake", "id", id, "addr", addr, "error", err)
	}
	return false
}

// probeLog rate-limits the log lines of failed probes, per node.
type probeLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (p *probeLog) due(id string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.last[id]) < probeLogEvery {
		return false
	}
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	p.last[id] = now
	return true
}

func (p *probeLog) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, id)
}

// caughtUp reports whether peer p, a non-voter to be promoted, has applied
// the configuration at index that holds it: it then has the log or a
// snapshot. A peer that gossips no Raft state (a node of an older version)
// counts as caught up, as before.
func caughtUp(p discovery.PeerState, index uint64) bool {
	return p.StateAt.IsZero() || p.State.AppliedIndex >= index
}

// trustFreshCluster lifts the vote guard of a node that takes part in a
// new cluster: gossip shows another live node and none in a cluster, so no
// cluster existed whose entries this node could have acknowledged. Without
// it, a first leader that lost leadership before its second entry reached
// the others could never be elected again (they would refuse it), nor
// anyone else. A node whose data was wiped sees the members of its
// cluster, which announce themselves in one from their first gossip.
func (n *Node) trustFreshCluster() {
	if n.votes == nil || !n.votes.armed.Load() {
		return
	}
	others := 0
	for _, p := range n.disc.Peers() {
		if p.Status != discovery.StatusAlive {
			continue
		}
		if p.InCluster {
			return
		}
		if p.ID != n.id {
			others++
		}
	}
	if others > 0 {
		n.votes.armed.Store(false)
		n.cfg.logger.Debug("vote guard lifted: this node takes part in a new cluster")
	}
}
