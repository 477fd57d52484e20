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
	fresh, err := replication.Open(path)
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
	again, err := replication.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.AppliedIndex() != cmdIndex || again.SeenIndex() != cfgIndex {
		t.Fatalf("after reopen: applied %d seen %d, want %d and %d", again.AppliedIndex(), again.SeenIndex(), cmdIndex, cfgIndex)
	}
}
