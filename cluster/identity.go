package cluster

import (
	"fmt"
	"time"

	"github.com/hiqlite/hiqlite/internal/discovery"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Identity: a node told to join never forms a cluster of its own
// (see bootstrapExpect), and a node that is not part of a cluster says why,
// in the errors of its writes and in its log, instead of a bare "no leader".

// notInClusterError is ErrNoLeader with the reason this node has no
// cluster; a write that gets it waits, as for any missing leader, until
// its deadline.
type notInClusterError struct{ why string }

func (e *notInClusterError) Error() string {
	return "hiqlite: no leader: not part of a cluster yet: " + e.why
}

func (e *notInClusterError) Is(target error) bool {
	return target == nodeerr.ErrNoLeader || target == nodeerr.ErrNotInCluster
}

// noLeader is the error of a request that finds no leader: why this node
// is not part of a cluster when it is not, ErrNoLeader otherwise.
func (n *Node) noLeader() error {
	if err := n.clusterErr(); err != nil {
		return err
	}
	return nodeerr.ErrNoLeader
}

// clusterErr says why this node is not part of a cluster: an error
// wrapping ErrNodeIDInUse when it was refused, one that is ErrNotInCluster
// when it waits for something that may never come, nil when it is in a
// cluster or about to be (a member is in gossip: its leader adds this
// node).
func (n *Node) clusterErr() error {
	if err := n.refusedErr(); err != nil {
		return err
	}
	if n.disc == nil || n.inCluster.Load() {
		return nil
	}
	if err := n.disc.JoinError(); err != nil {
		return &notInClusterError{err.Error()}
	}
	var others, voters int
	for _, p := range n.disc.Peers() {
		if p.Status != discovery.StatusAlive {
			continue
		}
		if p.InCluster {
			return nil
		}
		if p.ID != n.id {
			others++
		}
		if p.Voter {
			voters++
		}
	}
	switch expect := n.bootstrapExpect(); {
	case expect == 0:
		return &notInClusterError{fmt.Sprintf("gossip shows %d other node(s), none in a cluster, and a node with _join and no _expect only joins one", others)}
	case voters < expect:
		return &notInClusterError{fmt.Sprintf("waiting for _expect=%d voters in gossip, %d seen", expect, voters)}
	case !n.cfg.Voter:
		return &notInClusterError{fmt.Sprintf("%d voters are in gossip; one of them bootstraps the cluster, then its leader adds this non-voter", voters)}
	}
	return nil
}

// refusedErr is why gossip refused this node, nil if it did not.
func (n *Node) refusedErr() error {
	if p := n.refused.Load(); p != nil {
		return *p
	}
	return nil
}

// refuse stops a node that gossip refused, a newcomer whose id a live
// member has, and reports whether it did: it stops gossip, so the node
// disturbs nobody, and keeps the reason for writes and WaitReady. A node
// with Raft state is the member, not the newcomer (its membership loop may
// not have announced it yet): it keeps going. Called by runMembership
// while the node is not in a cluster; it ends after a refusal.
func (n *Node) refuse() bool {
	err := n.disc.IDTaken()
	if err == nil {
		return false
	}
	if n.raftHasState() {
		return false // maybeBootstrap announces it
	}
	n.refused.Store(&err)
	n.cfg.logger.Error("refused by the cluster; gossip stopped, writes fail until the node restarts with another _node", "error", err)
	if cerr := n.disc.Close(); cerr != nil {
		n.cfg.logger.Warn("stop gossip", "error", cerr)
	}
	return true
}

// warnStray logs at ERROR, at most every strayWarn, why this node is not part of a
// cluster, once it has been out of one for that long. last is when it last
// warned, or when it started.
func (n *Node) warnStray(last *time.Time) {
	if time.Since(*last) < n.disc.StrayWarnEvery() {
		return
	}
	if err := n.clusterErr(); err != nil {
		*last = time.Now()
		// ERROR, not WARN: every write fails until it is fixed, and an
		// application that shows only errors must hear of it.
		n.cfg.logger.Error("writes fail until this node is part of a cluster", "error", err)
	}
}
