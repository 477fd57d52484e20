package discovery

import (
	"bytes"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/golden"
)

// The gossip metadata, pinned by testdata/golden.

func TestGoldenPeerMeta(t *testing.T) {
	for _, c := range []struct {
		name, comment string
		p             Peer
		leaving       bool
		st            *NodeState
	}{
		{"peermeta_v1_voter", "Gossip peer metadata, version 1: node n1, raft address 127.0.0.1:7000,\nvoter, in a cluster, not leaving", Peer{ID: "n1", RaftAddr: "127.0.0.1:7000", Voter: true, InCluster: true}, false, nil},
		{"peermeta_v1_leaving", "Gossip peer metadata, version 1: node n2, raft address [::1]:7001,\nnon-voter, not in a cluster, leaving", Peer{ID: "n2", RaftAddr: "[::1]:7001"}, true, nil},
		{"peermeta_v1_state", "Gossip peer metadata, version 1 with the state flag: node n3, raft address\n127.0.0.1:7002, voter, in a cluster, not leaving; follower, applied index 300,\nterm 7, last contact 42 ms before", Peer{ID: "n3", RaftAddr: "127.0.0.1:7002", Voter: true, InCluster: true}, false,
			&NodeState{AppliedIndex: 300, Term: 7, Role: "follower", LastContact: 42 * time.Millisecond}},
		{"peermeta_v1_state_leader", "Gossip peer metadata, version 1 with the state flag: node n1, raft address\n127.0.0.1:7000, voter, in a cluster, not leaving; leader, applied index 0,\nterm 1, no contact (0)", Peer{ID: "n1", RaftAddr: "127.0.0.1:7000", Voter: true, InCluster: true}, false,
			&NodeState{AppliedIndex: 0, Term: 1, Role: "leader", LastContact: -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, err := encodeMeta(c.p, c.leaving, c.st)
			if err != nil {
				t.Fatal(err)
			}
			b := golden.Bytes(t, c.name, c.comment, enc)
			if !bytes.Equal(enc, b) {
				t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
			}
			m, err := decodeMeta(b)
			if err != nil || m.Peer != c.p || m.leaving != c.leaving || m.hasState != (c.st != nil) || (c.st != nil && m.state != *c.st) {
				t.Errorf("decoded %+v %v, want %+v %v %+v", m, err, c.p, c.leaving, c.st)
			}
		})
	}
}
