package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

// Identity tests: a node told to join never forms a
// cluster of its own, and a node refused by the cluster (another secret, a
// live member's id) says why, from its writes and in its log, without
// disturbing the cluster.

const identityWait = 30 * time.Second

// noOrigin: a write without a session (not deduplicated).
var noOrigin replication.Origin

// openJoiner opens a node that joins seeds with no _expect (join only),
// logging at WARN, the default level of the DSN's logger, into logs.
func openJoiner(t *testing.T, id string, seeds []string, secret []byte, logs *discoveryLogBuffer) *Node {
	t.Helper()
	nd, err := Open(Config{
		Dir:        filepath.Join(t.TempDir(), id),
		ID:         id,
		Timeout:    time.Second,
		logger:     hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: logs}),
		Listen:     freeLoopback(t),
		Gossip:     freeLoopback(t),
		Join:       seeds,
		Voter:      true,
		Secret:     secret,
		fastGossip: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	return nd
}

// gossipSeeds returns the gossip addresses of nodes.
func gossipSeeds(nodes []*Node) []string {
	var s []string
	for _, nd := range nodes {
		s = append(s, nd.disc.Addr())
	}
	return s
}

// clusterView is what must not change when a refused node comes and goes.
type clusterView struct {
	leader  string
	members []Member
}

func viewOf(t *testing.T, nodes []*Node) clusterView {
	t.Helper()
	var v clusterView
	for _, nd := range nodes {
		if nd.IsLeader() {
			v.leader = nd.ID()
			ms, err := nd.Members()
			if err != nil {
				t.Fatal(err)
			}
			for i := range ms {
				ms[i].IsLeader = false // set by who answers; the leader is compared apart
			}
			v.members = ms
		}
	}
	if v.leader == "" {
		t.Fatal("the cluster has no leader")
	}
	return v
}

// checkUndisturbed fails unless the cluster has the leader and
// configuration of before and still takes writes, on the leader and
// through a follower.
func checkUndisturbed(t *testing.T, nodes []*Node, before clusterView) {
	t.Helper()
	for _, nd := range nodes {
		if err := nd.refusedErr(); err != nil {
			t.Fatalf("member %s was refused: %v", nd.ID(), err)
		}
		waitfor.Cond(t, nd.ID()+" to know it is in the cluster", identityWait, nd.inCluster.Load)
	}
	if now := viewOf(t, nodes); now.leader != before.leader || !slices.Equal(now.members, before.members) {
		t.Fatalf("the cluster changed: leader %s, members %+v; before: leader %s, members %+v", now.leader, now.members, before.leader, before.members)
	}
	// A loaded machine (-race, two cores) may cost a write its leader now
	// and then: writes go on when each node gets one through.
	for i, nd := range nodes {
		var err error
		if !waitfor.Until(identityWait, func() bool {
			_, err = nd.Exec(context.Background(), time.Second, noOrigin, 0, stmt("INSERT INTO t(v) VALUES (?)", fmt.Sprintf("after-%d", i)))
			return err == nil
		}) {
			t.Fatalf("write on %s: %v", nd.ID(), err)
		}
	}
}

// refusedWrite waits until a write on nd fails with an error that is want
// and says says (the node learns why as its join attempts fail), failing
// the test if one succeeds, and returns that error.
func refusedWrite(t *testing.T, nd *Node, want error, says string) error {
	t.Helper()
	var last error
	ok := waitfor.Until(identityWait, func() bool {
		_, last = nd.Exec(context.Background(), time.Second, noOrigin, 0, stmt("INSERT INTO t(v) VALUES ('stray')"))
		if last == nil {
			t.Fatalf("a write on %s succeeded: it formed or entered a cluster it must not", nd.ID())
		}
		return errors.Is(last, want) && strings.Contains(last.Error(), says)
	})
	if !ok {
		t.Fatalf("a write on %s did not fail with %v saying %q; last error: %v", nd.ID(), want, says, last)
	}
	return last
}

// TestJoinUnreachableSeedsNeverBootstraps: a node with _join and no
// _expect whose seeds never answer stays out of any cluster: it never
// leads, its writes fail saying why, and its log says so at ERROR, more
// than once.
func TestJoinUnreachableSeedsNeverBootstraps(t *testing.T) {
	t.Parallel()
	seed := freeLoopback(t) // nobody listens there
	logs := &discoveryLogBuffer{}
	nd := openJoiner(t, "lonely", []string{seed}, []byte("identity-test-secret-1"), logs)

	// Time passes: the node has tried its seed again and again.
	waitfor.Cond(t, "8 join attempts", identityWait, func() bool { return nd.disc.JoinAttempts() >= 8 })
	if nd.IsLeader() || nd.raftHasState() {
		t.Fatalf("the node bootstrapped alone: state %s", nd.State())
	}
	err := refusedWrite(t, nd, nodeerr.ErrNotInCluster, "no seed in _join ("+seed+") answered")
	if !errors.Is(err, nodeerr.ErrNoLeader) {
		t.Fatalf("write error %q is not ErrNoLeader", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := nd.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nodeerr.ErrNotInCluster) || !strings.Contains(err.Error(), seed) {
		t.Fatalf("WaitReady: %v; want the deadline and why the node is not in a cluster", err)
	}
	waitfor.Cond(t, "two warnings", identityWait, func() bool {
		return strings.Count(logs.String(), "not part of a cluster yet") >= 2
	})
	named := false
	for _, line := range strings.Split(logs.String(), "\n") {
		named = named || strings.Contains(line, "[ERROR]") && strings.Contains(line, "writes fail until") && strings.Contains(line, seed)
	}
	if !named {
		t.Fatalf("no ERROR line says why the node is out of the cluster, naming the seed:\n%s", logs.String())
	}
	if nd.IsLeader() {
		t.Fatal("the node became leader")
	}
}

// TestJoinWrongSecretRefused: a node with another secret cannot join a
// live cluster; its writes fail saying the secret may be wrong, it never
// bootstraps, and the cluster keeps its leader and configuration.
func TestJoinWrongSecretRefused(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	if _, err := nodes[0].Exec(context.Background(), time.Second, noOrigin, 0, stmt("CREATE TABLE t(v)")); err != nil {
		t.Fatal(err)
	}
	before := viewOf(t, nodes)

	logs := &discoveryLogBuffer{}
	nd := openJoiner(t, "stranger", gossipSeeds(nodes), []byte("not-the-cluster-secret"), logs)
	refusedWrite(t, nd, nodeerr.ErrNotInCluster, "wrong secret?")
	waitfor.Cond(t, "a warning about the secret", identityWait, func() bool {
		return strings.Contains(logs.String(), "wrong secret?")
	})
	if nd.IsLeader() || nd.raftHasState() {
		t.Fatalf("the node bootstrapped alone: state %s", nd.State())
	}
	checkUndisturbed(t, nodes, before)
	for _, m := range before.members {
		if m.ID == nd.ID() {
			t.Fatal("the stranger is a member")
		}
	}
}

// TestJoinDuplicateIDRefused: a node that reuses the _node of a live member
// is refused: its first write fails saying so, its log says so, the
// cluster keeps its leader and configuration and takes writes, and a
// correct new node still joins afterwards.
func TestJoinDuplicateIDRefused(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	if _, err := nodes[0].Exec(context.Background(), time.Second, noOrigin, 0, stmt("CREATE TABLE t(v)")); err != nil {
		t.Fatal(err)
	}
	before := viewOf(t, nodes)
	victim := nodes[1]

	logs := &discoveryLogBuffer{}
	nd := openJoiner(t, victim.ID(), gossipSeeds(nodes), []byte("exactly-once-test-secret"), logs)
	refusedWrite(t, nd, nodeerr.ErrNodeIDInUse, fmt.Sprintf("%q is the id of the live member at %s", victim.ID(), victim.addr))
	waitfor.Cond(t, "the refusal logged as an error", identityWait, func() bool {
		l := logs.String()
		return strings.Contains(l, "[ERROR]") && strings.Contains(l, "node id in use")
	})
	if nd.IsLeader() || nd.raftHasState() {
		t.Fatalf("the impostor bootstrapped: state %s", nd.State())
	}
	checkUndisturbed(t, nodes, before)

	// A correct newcomer joins and writes; the leader never moved.
	n4 := openJoiner(t, "n4", gossipSeeds(nodes), []byte("exactly-once-test-secret"), &discoveryLogBuffer{})
	ctx, cancel := context.WithTimeout(context.Background(), identityWait)
	defer cancel()
	if err := n4.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n4.Exec(ctx, time.Second, noOrigin, 0, stmt("INSERT INTO t(v) VALUES ('n4')")); err != nil {
		t.Fatalf("write on the new node: %v", err)
	}
	// A voter joins as a non-voter and is promoted once it has caught up.
	waitfor.Cond(t, "n4 promoted to voter", identityWait, func() bool {
		for _, m := range viewOf(t, nodes).members {
			if m.ID == "n4" {
				return m.Voter
			}
		}
		return false
	})
	after := viewOf(t, nodes)
	if after.leader != before.leader {
		t.Fatalf("the leader moved from %s to %s", before.leader, after.leader)
	}
	want := append(slices.Clone(before.members), Member{ID: "n4", Address: n4.addr, Voter: true})
	slices.SortFunc(want, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	got := slices.Clone(after.members)
	slices.SortFunc(got, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	if !slices.Equal(got, want) {
		t.Fatalf("members %+v, want %+v", got, want)
	}
}

// discoveryLogBuffer collects a node's log lines, written from its
// goroutines, for a test to read.
type discoveryLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *discoveryLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *discoveryLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
