package cluster

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

// freezeLeader freezes the transport of leader, as if its process were
// stopped, until the test ends (then it thaws, before the nodes close).
func freezeLeader(t *testing.T, leader *Node) {
	t.Helper()
	leader.freezeTransport(true)
	t.Cleanup(func() { leader.freezeTransport(false) })
}

// others returns the nodes but nd.
func others(nodes []*Node, nd *Node) []*Node {
	var out []*Node
	for _, o := range nodes {
		if o != nd {
			out = append(out, o)
		}
	}
	return out
}

// cacheLeaderNode waits until every node names the same cache group
// leader and returns it.
func cacheLeaderNode(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	var leader *Node
	waitfor.Cond(t, "one cache group leader that every node knows", 30*time.Second, func() bool {
		leader = nil
		id, _ := nodes[0].CacheLeader()
		for _, nd := range nodes {
			if got, _ := nd.CacheLeader(); got == "" || got != id {
				return false
			}
			if nd.ID() == id {
				leader = nd
			}
		}
		return leader != nil
	})
	return leader
}

// A cache Set and a lock acquire forwarded to a cache group leader that
// stops answering (its process paused) are not stuck with it: once the
// other nodes elect a new leader, they go there and succeed, and the
// caches and locks are right afterwards.
func TestCacheLeaderFrozen(t *testing.T) {
	nodes := startTestCluster(t, 3)
	old := cacheLeaderNode(t, nodes)
	live := others(nodes, old)
	f, g := live[0], live[1]
	ctx := context.Background()
	c := extensions.NewCache(f.Cache(), "c")
	// Concurrent Sets leave sessions to the leader in f's pool, so that
	// the commands below are sent on open sessions as well as on new ones.
	warm := make(chan error, 4)
	for i := range cap(warm) {
		go func() { warm <- c.Set(ctx, string(rune('a'+i)), []byte("w"), 0) }()
	}
	for range cap(warm) {
		if err := <-warm; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set(ctx, "k", []byte("v0"), 0); err != nil {
		t.Fatal(err)
	}

	freezeLeader(t, old)
	type result struct {
		lease *extensions.Lease
		err   error
	}
	set := make(chan error, 1)
	lock := make(chan result, 1)
	go func() { set <- c.Set(ctx, "k", []byte("v1"), 0) }()
	go func() {
		l, err := extensions.Lock(ctx, f.Cache(), "L", time.Minute)
		lock <- result{l, err}
	}()
	waitfor.Cond(t, "a new cache group leader", 30*time.Second, func() bool {
		for _, nd := range live {
			if id, _ := nd.CacheLeader(); id == "" || id == old.ID() {
				return false
			}
		}
		return true
	})
	if err := <-set; err != nil {
		t.Fatalf("Set in flight to the frozen leader: %v", err)
	}
	if v, ok := c.Get("k"); !ok || !bytes.Equal(v, []byte("v1")) {
		t.Fatalf("%s: k = %q (found %v) after the Set in flight, want v1", f.ID(), v, ok)
	}
	waitfor.Cond(t, g.ID()+" to apply the Set", 30*time.Second, func() bool {
		v, _ := extensions.NewCache(g.Cache(), "c").Get("k")
		return bytes.Equal(v, []byte("v1"))
	})
	r := <-lock
	if r.err != nil {
		t.Fatalf("Lock in flight to the frozen leader: %v", r.err)
	}
	lease := r.lease

	// New commands, from both live nodes.
	for i, nd := range live {
		v := []byte{'n', byte('0' + i)}
		cn := extensions.NewCache(nd.Cache(), "c")
		if err := cn.Set(ctx, "k", v, 0); err != nil {
			t.Fatalf("Set on %s after the election: %v", nd.ID(), err)
		}
		if got, _ := cn.Get("k"); !bytes.Equal(got, v) {
			t.Fatalf("%s: k = %q after its Set, want %q", nd.ID(), got, v)
		}
	}
	// One holder at a time, and the fencing token grows.
	if _, err := extensions.TryLock(ctx, g.Cache(), "L", time.Minute); !errors.Is(err, extensions.ErrLockHeld) {
		t.Fatalf("TryLock of a held lock on %s: %v, want ErrLockHeld", g.ID(), err)
	}
	if err := lease.Renew(ctx); err != nil {
		t.Fatalf("Renew after the election: %v", err)
	}
	if err := lease.Unlock(ctx); err != nil {
		t.Fatalf("Unlock after the election: %v", err)
	}
	next, err := extensions.TryLock(ctx, g.Cache(), "L", time.Minute)
	if err != nil {
		t.Fatalf("TryLock of a released lock on %s: %v", g.ID(), err)
	}
	if next.Token() <= lease.Token() {
		t.Fatalf("fencing token %d after release, want more than %d", next.Token(), lease.Token())
	}
	if err := next.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// The main group the same way: a write forwarded to a leader that stops
// answering is sent to the new leader when it carries an origin (the state
// machine applies it once), and ends with ErrLeadershipLost, not at the
// timeout, when it does not; a COMMIT sent to it is settled by the new
// leader.
func TestLeaderFrozen(t *testing.T) {
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`)
	var old *Node
	for _, nd := range nodes {
		if nd.IsLeader() {
			old = nd
		}
	}
	if old == nil {
		t.Fatal("no leader")
	}
	live := others(nodes, old)
	ctx := context.Background()
	// Concurrent writes leave sessions to the leader in f's pool, so that
	// the writes below are sent on open sessions, not only on new ones.
	warm := make(chan error, 6)
	for range cap(warm) {
		go func() {
			_, err := f.Exec(ctx, time.Second, replication.Origin{}, 0, stmt(`INSERT INTO t(v) VALUES ('warm')`))
			warm <- err
		}()
	}
	for range cap(warm) {
		if err := <-warm; err != nil {
			t.Fatal(err)
		}
	}
	txo := replication.Origin{Node: f.ID(), Session: 42, Seq: 1}
	tx, err := f.BeginTx(ctx, time.Second, time.Minute, txo, 0, SnapshotCheck{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, stmt(`INSERT INTO t(v) VALUES ('tx')`)[0], false); err != nil {
		t.Fatal(err)
	}
	freezeLeader(t, old)
	commit := make(chan error, 1)
	go func() { commit <- tx.Commit(ctx) }()
	dedup := make(chan error, 1)
	plain := make(chan error, 1)
	o := replication.Origin{Node: f.ID(), Session: 41, Seq: 1}
	go func() {
		_, err := f.Exec(ctx, time.Second, o, 0, stmt(`INSERT INTO t(v) VALUES ('dedup')`))
		dedup <- err
	}()
	go func() {
		_, err := f.Exec(ctx, time.Second, replication.Origin{}, 0, stmt(`INSERT INTO t(v) VALUES ('plain')`))
		plain <- err
	}()
	waitfor.Cond(t, "a new leader", 30*time.Second, func() bool {
		for _, nd := range live {
			if id, _ := nd.Leader(); id == "" || id == old.ID() {
				return false
			}
		}
		return true
	})
	if err := <-dedup; err != nil {
		t.Fatalf("write with an origin in flight to the frozen leader: %v", err)
	}
	wantPlain := int64(1)
	if err := <-plain; err != nil {
		// Sent before the election: its outcome is open, but known to
		// be so as soon as the new leader is, not at the timeout.
		if !errors.Is(err, nodeerr.ErrOutcomeUnknown) || !errors.Is(err, nodeerr.ErrLeadershipLost) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write without an origin in flight to the frozen leader: %v, want ErrOutcomeUnknown for ErrLeadershipLost", err)
		}
		wantPlain = -1 // applied or not: the frozen leader never committed it, but the log may hold it
	}
	wantTx := int64(1)
	if err := <-commit; err != nil {
		if !errors.Is(err, nodeerr.ErrNotApplied) {
			t.Fatalf("COMMIT in flight to the frozen leader: %v, want nil or ErrNotApplied", err)
		}
		wantTx = 0
	}
	countEverywhere(t, live, `v = 'tx'`, wantTx)
	countEverywhere(t, live, `v = 'dedup'`, 1)
	if wantPlain >= 0 {
		countEverywhere(t, live, `v = 'plain'`, wantPlain)
	}
	mustNodeExec(t, f, o, `INSERT INTO t(v) VALUES ('dedup')`) // the retry gets the recorded result
	countEverywhere(t, live, `v = 'dedup'`, 1)
	for _, nd := range live {
		mustNodeExec(t, nd, replication.Origin{}, `INSERT INTO t(v) VALUES ('after')`)
	}
	countEverywhere(t, live, `v = 'after'`, 2)
}
