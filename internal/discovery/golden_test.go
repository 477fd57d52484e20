package discovery

import (
	"bytes"
	"testing"

	"github.com/hiqlite/hiqlite/internal/golden"
)

// The gossip metadata, pinned by testdata/golden.

func TestGoldenPeerMeta(t *testing.T) {
	for _, c := range []struct {
		name, comment string
		p             Peer
		leaving       bool
	}{
		{"peermeta_v1_voter", "Gossip peer metadata, version 1: node n1, raft address 127.0.0.1:7000,\nvoter, in a cluster, not leaving", Peer{ID: "n1", RaftAddr: "127.0.0.1:7000", Voter: true, InCluster: true}, false},
		{"peermeta_v1_leaving", "Gossip peer metadata, version 1: node n2, raft address [::1]:7001,\nnon-voter, not in a cluster, leaving", Peer{ID: "n2", RaftAddr: "[::1]:7001"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, err := encodePeerMeta(c.p, c.leaving)
			if err != nil {
				t.Fatal(err)
			}
			b := golden.Bytes(t, c.name, c.comment, enc)
			if !bytes.Equal(enc, b) {
				t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
			}
			p, leaving, err := decodePeerMeta(b)
			if err != nil || p != c.p || leaving != c.leaving {
				t.Errorf("decoded %+v %v %v, want %+v %v", p, leaving, err, c.p, c.leaving)
			}
		})
	}
}
