package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"testing"
)

// recordingNet is a network that records the links apply was given.
type recordingNet struct {
	k         int
	connected func(i, j int) bool
	healed    int
}

func (*recordingNet) addrs(*testing.T, int) (string, string, string) { return "", "", "" }
func (*recordingNet) command(int, string, ...string) *exec.Cmd       { return nil }
func (n *recordingNet) apply(c func(i, j int) bool) error            { n.connected = c; return nil }
func (n *recordingNet) heal() error                                  { n.healed++; return nil }
func (*recordingNet) close() error                                   { return nil }
func (*recordingNet) partitions() string                             { return "" }

// TestPartitionsKeepAMajority checks every partition the nemesis draws,
// for three and five nodes: it cuts links, symmetrically, yet one node
// still reaches a majority directly (so a leader can be elected), and the
// network is healed afterwards.
func TestPartitionsKeepAMajority(t *testing.T) {
	for _, k := range []int{3, 5} {
		r := fakeRunner(t, nil)
		one := r.c.nodes[0]
		r.c.nodes = nil
		for i := range k {
			r.c.nodes = append(r.c.nodes, &node{i: i, name: fmt.Sprintf("n%d", i+1), http: one.http})
		}
		net := &recordingNet{k: k}
		r.c.net = net
		nem := newNemesis(r, rand.New(rand.NewPCG(1, 2)))
		for _, kind := range partitionFaults {
			for pick := range k {
				net.connected, net.healed = nil, 0
				nem.partition(context.Background(), kind, pick, 0)
				if net.connected == nil || net.healed != 1 {
					t.Fatalf("%d nodes, %s of %d: applied %v, healed %d times", k, kind, pick, net.connected != nil, net.healed)
				}
				cut, best := 0, 0
				for i := range k {
					reach := 1
					for j := range k {
						if i == j {
							continue
						}
						if net.connected(i, j) != net.connected(j, i) {
							t.Errorf("%d nodes, %s: link %d-%d not symmetric", k, kind, i, j)
						}
						if net.connected(i, j) {
							reach++
						} else {
							cut++
						}
					}
					best = max(best, reach)
				}
				if cut == 0 || best < k/2+1 {
					t.Errorf("%d nodes, %s of %d: %d links cut, the best node reaches %d of %d", k, kind, pick, cut/2, best, k)
				}
			}
		}
		if len(nem.problems) > 0 {
			t.Errorf("problems: %v", nem.problems)
		}
	}
}
