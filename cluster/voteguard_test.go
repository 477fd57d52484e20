package cluster

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

// A node whose data was wiped comes back as itself with an empty log. Its
// vote must not elect a node that lacks a write the cluster acknowledged:
// here the write is on the old leader (wiped) and on one follower (cut
// off), and the other follower never got it. Without the guard, that
// follower wins an election with the wiped node's vote and overwrites the
// write on the node that still has it.
func TestWipedNodeCannotElectStaleLeader(t *testing.T) {
	nodes := startTestCluster(t, 3)
	var a *Node
	waitfor.Cond(t, "a leader", 30*time.Second, func() bool {
		for _, nd := range nodes {
			if nd.IsLeader() {
				a = nd
			}
		}
		return a != nil
	})
	rest := others(nodes, a)
	b, c := rest[0], rest[1]
	// The members announce in gossip that they are in a cluster (a node
	// that restarts without state and sees none in one takes part in a new
	// cluster, and trusts it).
	waitfor.Cond(t, "every node announces it is in the cluster", 30*time.Second, func() bool {
		for _, nd := range nodes {
			if !nd.inCluster.Load() {
				return false
			}
		}
		return true
	})
	mustNodeExec(t, a, replication.Origin{}, `CREATE TABLE t(x INTEGER)`)

	c.freezeTransport(true)                                                     // c misses the write
	ins := mustNodeExec(t, a, replication.Origin{}, `INSERT INTO t VALUES (1)`) // acknowledged by a and b
	if last := c.raft.LastIndex(); last >= ins.Index {
		t.Fatalf("%s has the log up to %d, want it to miss the write at %d", c.ID(), last, ins.Index)
	}
	b.freezeTransport(true) // the one node left with the write is cut off
	t.Cleanup(func() { b.freezeTransport(false) })

	cfg := a.cfg
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		t.Fatal(err)
	}
	c.freezeTransport(false)
	wiped, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wiped.Close() })
	if wiped.votes == nil {
		t.Fatal("a node that starts without Raft state runs without the vote guard")
	}

	// c campaigns; the wiped node is the only one it can ask.
	waitfor.Cond(t, "c asks the wiped node for its vote", 30*time.Second, func() bool {
		return wiped.votes.refused.Load() > 0 || c.IsLeader()
	})
	if c.IsLeader() {
		t.Fatalf("%s, which lacks an acknowledged write, leads with the vote of the wiped node", c.ID())
	}

	b.freezeTransport(false)
	live := []*Node{wiped, b, c}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nd := range live {
		if err := nd.WaitReady(ctx); err != nil {
			t.Fatalf("%s not ready: %v", nd.ID(), err)
		}
	}
	countEverywhere(t, live, "x = 1", 1)
	// The wiped node has the log again, and votes by raft's rules.
	waitfor.Cond(t, "the wiped node has the log", 30*time.Second, func() bool { return wiped.lastLogOrSnapshot() > 0 })
}
