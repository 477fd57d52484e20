package replication_test

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/replication"
)

// bufSink is a raft.SnapshotSink into memory.
type bufSink struct{ bytes.Buffer }

func (*bufSink) ID() string    { return "test" }
func (*bufSink) Cancel() error { return nil }
func (*bufSink) Close() error  { return nil }

// A configuration entry after the last command counts as applied: on
// reopen and after a snapshot install, so that a node waiting for that
// index (a linearizable read) does not wait for the next write.
func TestSeenIndexSurvivesReopenAndRestore(t *testing.T) {
	a := newApplier(t)
	a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) VALUES (1)`))
	cmdIndex := a.index
	a.index++
	a.sm.ApplyBatch([]*raft.Log{{Index: a.index, Term: 1, Type: raft.LogConfiguration}})
	cfgIndex := a.index
	if a.sm.AppliedIndex() != cmdIndex || a.sm.SeenIndex() != cfgIndex {
		t.Fatalf("applied %d seen %d, want %d and %d", a.sm.AppliedIndex(), a.sm.SeenIndex(), cmdIndex, cfgIndex)
	}

	snap, err := a.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	path := filepath.Join(t.TempDir(), "fresh.db")
	fresh, err := replication.Open(path, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if fresh.AppliedIndex() != cmdIndex || fresh.SeenIndex() != cfgIndex {
		t.Fatalf("after restore: applied %d seen %d, want %d and %d", fresh.AppliedIndex(), fresh.SeenIndex(), cmdIndex, cfgIndex)
	}
	done := make(chan struct{})
	close(done) // WaitApplied must not need to wait at all
	if err := fresh.WaitApplied(cfgIndex, done); err != nil {
		t.Fatalf("WaitApplied(%d) after restore: %v", cfgIndex, err)
	}
	if err := fresh.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := replication.Open(path, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.AppliedIndex() != cmdIndex || again.SeenIndex() != cfgIndex {
		t.Fatalf("after reopen: applied %d seen %d, want %d and %d", again.AppliedIndex(), again.SeenIndex(), cmdIndex, cfgIndex)
	}
}

// A node that has applied entries (its writer holds prepared statements)
// can install another node's snapshot and go on applying after it.
func TestRestoreOverAppliedState(t *testing.T) {
	src := newApplier(t)
	for range 5 {
		src.must(src.exec(replication.Origin{Node: "n", Session: 1, Seq: src.index + 1}, `INSERT INTO t(v) VALUES (random())`))
	}
	snap, err := src.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newApplier(t) // has applied its own CREATE TABLE
	dst.must(dst.exec(replication.Origin{}, `INSERT INTO t(v) VALUES ('only here')`))
	local := replication.Origin{Node: "d", Session: 9, Seq: 1} // a session the snapshot lacks
	dst.must(dst.exec(local, `SELECT 1`))
	if err := dst.sm.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if got := dst.sm.AppliedIndex(); got != src.index {
		t.Fatalf("applied index %d after restore, want %d", got, src.index)
	}
	dst.index = src.index
	// The same next entry on both gives the same result.
	a := src.must(src.exec(replication.Origin{Node: "n", Session: 1, Seq: 100}, `INSERT INTO t(v) VALUES (1) RETURNING id`))
	b := dst.must(dst.exec(replication.Origin{Node: "n", Session: 1, Seq: 100}, `INSERT INTO t(v) VALUES (1) RETURNING id`))
	if a.Results[0].Rows[0][0] != b.Results[0].Rows[0][0] {
		t.Fatalf("after restore the next insert got id %v, the source %v", b.Results[0].Rows[0][0], a.Results[0].Rows[0][0])
	}
	if n := dst.count(); n != 6 {
		t.Fatalf("%d rows after restore and one insert, want 6 (the local-only row must be gone)", n)
	}
	// A retry of the source's session is recognised after the restore.
	if r := dst.must(dst.exec(replication.Origin{Node: "n", Session: 1, Seq: 100}, `INSERT INTO t(v) VALUES (1) RETURNING id`)); !r.Duplicate {
		t.Fatal("the session record did not come with the snapshot")
	}
	if r := dst.must(dst.exec(local, `SELECT 1`)); r.Duplicate {
		t.Fatal("a session record replaced by the snapshot is still known")
	}
}
