package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/discovery"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// MemberStatus is one server of the Raft configuration with its state: this
// node's own as of now, another's as it last gossiped it.
type MemberStatus struct {
	Member
	GossipAddr string // "" when unknown (no gossip, or not seen)
	// Role is "leader", "follower", "candidate", "shutdown" or "unknown".
	Role         string
	AppliedIndex uint64
	Term         uint64
	// LastContact is how long before its announcement the node last heard
	// from a leader (0 on the leader); negative: never, or unknown.
	LastContact time.Duration
	// Age is how old the values are: 0 for this node, the time since they
	// arrived by gossip for another one; negative when no state is known
	// (Role is "unknown" and the numbers are zero).
	Age time.Duration
	// Lag is, on the leader, how many entries this node's applied index
	// is behind the leader's (as of the node's last gossip); negative on
	// other nodes or when the node's state is unknown.
	Lag int64
}

// localState is this node's state as gossiped (discovery.Config.State).
func (n *Node) localState() discovery.NodeState {
	st := discovery.NodeState{
		AppliedIndex: n.sm.AppliedIndex(),
		Term:         n.raft.CurrentTerm(),
		Role:         n.State(),
		LastContact:  -1,
	}
	switch {
	case n.raft.State() == raft.Leader:
		st.LastContact = 0
	default:
		if t := n.raft.LastContact(); !t.IsZero() {
			st.LastContact = max(time.Since(t), 0)
		}
	}
	return st
}

// MemberStatuses lists the servers of the current Raft configuration with
// their state (see MemberStatus).
func (n *Node) MemberStatuses() ([]MemberStatus, error) {
	ms, err := n.Members()
	if err != nil && !errors.Is(err, nodeerr.ErrClosed) {
		return nil, err
	}
	peers := map[string]discovery.PeerState{}
	if n.disc != nil {
		for _, p := range n.disc.Peers() {
			peers[p.ID] = p
		}
	}
	now := time.Now()
	self := n.localState()
	leader := self.Role == "leader"
	out := make([]MemberStatus, 0, len(ms))
	for _, m := range ms {
		s := MemberStatus{Member: m, Role: "unknown", LastContact: -1, Age: -1, Lag: -1}
		p, seen := peers[m.ID]
		if seen {
			s.GossipAddr = p.GossipAddr
		}
		switch {
		case m.ID == n.id:
			s.Role, s.AppliedIndex, s.Term, s.LastContact, s.Age = self.Role, self.AppliedIndex, self.Term, self.LastContact, 0
		case seen && !p.StateAt.IsZero():
			s.Role, s.AppliedIndex, s.Term, s.LastContact = p.State.Role, p.State.AppliedIndex, p.State.Term, p.State.LastContact
			s.Age = max(now.Sub(p.StateAt), 0)
		}
		if leader && s.Age >= 0 {
			s.Lag = 0
			if self.AppliedIndex > s.AppliedIndex {
				s.Lag = int64(min(self.AppliedIndex-s.AppliedIndex, 1<<62))
			}
		}
		out = append(out, s)
	}
	return out, nil
}
