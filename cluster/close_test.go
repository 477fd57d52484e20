package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

// longWrite keeps every node's state machine busy for a few seconds of CPU
// (about 3 s for 8 million rows alone on this machine) and inserts one row
// whose value every node computes alike.
func longWrite() string {
	rows := 8_000_000
	if raceDetector {
		rows /= 40
	}
	return fmt.Sprintf(`INSERT INTO long SELECT count(*) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < %d) SELECT i FROM c)`, rows)
}

// Closing a follower while its state machine applies a long write returns
// without waiting for the write: the apply is interrupted and not recorded
// (neither applied nor the command's error), and the node applies it again
// when it restarts, ending with the same data as the others.
func TestCloseInterruptsLongApply(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	var leader, f *Node
	for _, nd := range nodes {
		if nd.IsLeader() {
			leader = nd
		} else if f == nil {
			f = nd
		}
	}
	before := mustNodeExec(t, leader, replication.Origin{}, `CREATE TABLE long(n)`).Index
	waitfor.Cond(t, "the follower to apply CREATE TABLE", 30*time.Second, func() bool { return f.AppliedIndex() >= before })
	done := make(chan error, 1)
	go func() {
		_, err := leader.Exec(context.Background(), time.Second, replication.Origin{Node: "t", Session: 1, Seq: 1}, 0, stmt(longWrite()))
		done <- err
	}()
	waitfor.Cond(t, "the follower to apply the long write", 30*time.Second, func() bool {
		return f.raft.CommitIndex() > before && f.AppliedIndex() == before
	})
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Close did not return with a long write in flight")
	}
	t.Logf("closed in %v with the long write in flight", time.Since(start))
	if got := f.AppliedIndex(); got != before {
		t.Fatalf("close waited for the long write (applied index %d, was %d): not interrupted", got, before)
	}
	if err := f.Fault(); !errors.Is(err, replication.ErrInterrupted) {
		t.Errorf("fault after close = %v, want ErrInterrupted", err)
	}
	err := <-done
	t.Logf("long write returned after %v on the leader", time.Since(start))
	if err != nil {
		t.Fatalf("long write on the leader: %v", err)
	}
	want := leader.AppliedIndex()

	re, err := Open(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { re.Close() })
	waitfor.Cond(t, "the restarted follower to apply the long write again", 3*time.Minute, func() bool {
		return re.AppliedIndex() >= want
	})
	others := []*Node{leader, re}
	for _, nd := range nodes {
		if nd != leader && nd != f {
			others = append(others, nd)
		}
	}
	var ref int64
	for i, nd := range others {
		if nd != leader {
			waitfor.Cond(t, nd.ID()+" to apply the long write", 3*time.Minute, func() bool { return nd.AppliedIndex() >= want })
		}
		rows, sum := localCountSum(t, nd)
		if rows != 1 {
			t.Fatalf("%s holds %d rows of the long write, want 1", nd.ID(), rows)
		}
		if i == 0 {
			ref = sum
		} else if sum != ref {
			t.Fatalf("%s computed %d, the leader %d", nd.ID(), sum, ref)
		}
	}
}

// localCountSum reads the long table from nd's own database file.
func localCountSum(t *testing.T, nd *Node) (rows, sum int64) {
	t.Helper()
	db, err := sqlite3.OpenFlags(nd.DBPath(), sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _, err := db.Prepare(`SELECT count(*), coalesce(sum(n), 0) FROM long`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Step() {
		t.Fatalf("%s: %v", nd.ID(), st.Err())
	}
	return st.ColumnInt64(0), st.ColumnInt64(1)
}
