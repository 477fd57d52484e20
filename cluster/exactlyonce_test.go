package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/testaddr"
	"github.com/hiqlite/hiqlite/replication"
)

// startTestCluster opens n voters over loopback that bootstrap together and
// returns them once one leads and all are ready. They close when t ends.
func startTestCluster(t *testing.T, n int) []*Node {
	t.Helper()
	type addrs struct{ listen, gossip string }
	as := make([]addrs, n)
	var seeds []string
	for i := range as {
		as[i] = addrs{freeLoopback(t), freeLoopback(t)}
		seeds = append(seeds, as[i].gossip)
	}
	nodes := make([]*Node, n)
	for i := range nodes {
		nd, err := Open(Config{
			Dir:        filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i+1)),
			ID:         fmt.Sprintf("n%d", i+1),
			logger:     hclog.NewNullLogger(),
			Listen:     as[i].listen,
			Gossip:     as[i].gossip,
			Join:       seeds,
			Expect:     n,
			Voter:      true,
			Secret:     []byte("exactly-once-test-secret"),
			fastGossip: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
		t.Cleanup(func() { nd.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nd := range nodes {
		if err := nd.WaitReady(ctx); err != nil {
			t.Fatalf("node %s not ready: %v", nd.ID(), err)
		}
	}
	return nodes
}

// freeLoopback returns a loopback address whose TCP and UDP ports were
// free a moment ago.
func freeLoopback(t *testing.T) string { return testaddr.Loopback(t) }

func follower(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	for _, nd := range nodes {
		if !nd.IsLeader() {
			return nd
		}
	}
	t.Fatal("no follower")
	return nil
}

func stmt(sql string, args ...any) []replication.Statement {
	st := replication.Statement{SQL: sql}
	for i, v := range args {
		st.Args = append(st.Args, replication.Arg{Ordinal: i + 1, Value: v})
	}
	return []replication.Statement{st}
}

func mustNodeExec(t testing.TB, nd *Node, o replication.Origin, sql string, args ...any) *replication.Response {
	t.Helper()
	resp, err := nd.Exec(context.Background(), time.Second, o, 0, stmt(sql, args...))
	if err != nil {
		t.Fatalf("%s on %s: %v", sql, nd.ID(), err)
	}
	if err := resp.Results[len(resp.Results)-1].Err; err != nil {
		t.Fatalf("%s on %s: %v", sql, nd.ID(), err)
	}
	return resp
}

// countEverywhere checks that every node holds want rows matching where.
func countEverywhere(t testing.TB, nodes []*Node, where string, want int64) {
	t.Helper()
	for _, nd := range nodes {
		// A replicated read: it runs on the leader's writer, and the
		// node has applied it (and all before it) when Exec returns.
		resp := mustNodeExec(t, nd, replication.Origin{}, `SELECT count(*) FROM t WHERE `+where)
		if got := resp.Results[0].Rows[0][0].(int64); got != want {
			t.Errorf("%s: %d rows where %s, want %d", nd.ID(), got, where, want)
		}
	}
}

// A forwarded write sent again with the same origin (its reply was lost) is
// applied once, and the retry gets the recorded result.
func TestExecRetryAppliesOnce(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`)
	o := replication.Origin{Node: f.ID(), Session: 77, Seq: 1}
	first := mustNodeExec(t, f, o, `INSERT INTO t(v) VALUES ('once') RETURNING id`)
	again := mustNodeExec(t, f, o, `INSERT INTO t(v) VALUES ('once') RETURNING id`)
	if again.Index != first.Index || again.Results[0].LastInsertID != first.Results[0].LastInsertID ||
		again.Results[0].Rows[0][0] != first.Results[0].Rows[0][0] {
		t.Fatalf("retry got index %d, results %+v; want the recorded index %d, results %+v", again.Index, again.Results, first.Index, first.Results)
	}
	// The same retry through the leader itself.
	for _, nd := range nodes {
		if nd.IsLeader() {
			mustNodeExec(t, nd, o, `INSERT INTO t(v) VALUES ('once') RETURNING id`)
		}
	}
	countEverywhere(t, nodes, `v = 'once'`, 1)
}

// resolve settles an interrupted write: applied ones are found, unknown ones
// are fenced off for good, on every node.
func TestResolve(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	ctx := context.Background()
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`)

	done := replication.Origin{Node: f.ID(), Session: 5, Seq: 1}
	w := mustNodeExec(t, f, done, `INSERT INTO t(v) VALUES ('applied')`)
	for _, nd := range nodes {
		applied, idx, err := nd.resolve(ctx, done)
		if err != nil || !applied || idx != w.Index {
			t.Fatalf("Resolve on %s of an applied write: applied=%v index=%d err=%v, want applied at %d", nd.ID(), applied, idx, err, w.Index)
		}
	}

	lost := replication.Origin{Node: f.ID(), Session: 6, Seq: 1}
	applied, _, err := f.resolve(ctx, lost)
	if err != nil || applied {
		t.Fatalf("Resolve of a write never sent: applied=%v err=%v, want not applied", applied, err)
	}
	// The write arrives after all (a delayed copy): it must not apply.
	_, err = f.Exec(ctx, time.Second, lost, 0, stmt(`INSERT INTO t(v) VALUES ('fenced')`))
	if !errors.Is(err, nodeerr.ErrNotApplied) {
		t.Fatalf("write after its fence: %v, want ErrNotApplied", err)
	}
	countEverywhere(t, nodes, `v = 'fenced'`, 0)
	countEverywhere(t, nodes, `v = 'applied'`, 1)
}

// A COMMIT whose outcome is resolved: a transaction fenced before its COMMIT
// reaches the log is reported as not committed and leaves no trace.
func TestResolveBeforeCommit(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	ctx := context.Background()
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`)
	o := replication.Origin{Node: f.ID(), Session: 9, Seq: 1}
	tx, err := f.BeginTx(ctx, time.Second, 10*time.Second, o, 0, SnapshotCheck{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, stmt(`INSERT INTO t(v) VALUES ('tx')`)[0], false); err != nil {
		t.Fatal(err)
	}
	// The fence waits for the transaction's write slot; roll back in the
	// meantime, as a leader does when a session's connection drops.
	res := make(chan error, 1)
	go func() {
		applied, _, err := f.resolve(ctx, o)
		if err == nil && applied {
			err = errors.New("reported applied")
		}
		res <- err
	}()
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("Resolve of a rolled back transaction: %v", err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("commit after rollback succeeded")
	}
	countEverywhere(t, nodes, `v = 'tx'`, 0)
}
