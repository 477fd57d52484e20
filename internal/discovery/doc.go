// Package discovery is a node's gossip membership, over hashicorp/memberlist:
// who is out there, at which Raft address, whether alive, and whether it
// already belongs to a cluster.
//
// [Start] joins the seeds (retrying those not up yet) and announces this
// node's [Peer] as memberlist metadata, in the format of peermeta.go.
// [Discovery.Peers] reports every peer seen with its status; OnChange tells
// the caller of any change. Gossip is encrypted and authenticated with a key
// derived from the cluster secret, so a node with another secret never gets
// in. A node whose id a live member already holds is refused
// ([Discovery.IDTaken], [ErrNodeIDInUse]). With [Config.State], the node
// also gossips its Raft state ([NodeState]: applied index, term, role, last
// contact), which peers see in [PeerState.State] with the time it arrived.
//
// The package decides nothing about Raft: package cluster's membership loop
// reads the peers and makes the Raft configuration follow them.
package discovery
