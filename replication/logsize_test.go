package replication_test

import (
	"testing"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/replication"
)

// The log-size count covers the entries no stored snapshot covers: a
// snapshot that is released without being persisted (raft gave up on it)
// leaves the count, a persisted one takes off what it covers and keeps what
// was applied after it was pinned.
func TestLogBytesCountedUntilSnapshotStored(t *testing.T) {
	a := newApplierWith(t, replication.Options{LogLimit: 1 << 30})
	full := a.sm.LogFull()
	for range 10 {
		a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) VALUES (randomblob(100))`))
	}
	size, entries := a.sm.LogBytes()
	if size < 10*40 || entries != a.index { // every entry since the open
		t.Fatalf("LogBytes = %d bytes, %d entries after %d entries", size, entries, a.index)
	}

	snap, err := a.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snap.Release() // raft refused to go on with it
	if s, e := a.sm.LogBytes(); s != size || e != entries {
		t.Fatalf("after a snapshot that was not stored: %d bytes, %d entries; want %d, %d", s, e, size, entries)
	}

	snap, err = a.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) VALUES (1)`)) // after the pin
	_, after := a.sm.LogBytes()
	store := raft.NewInmemSnapshotStore()
	sink, err := store.Create(raft.SnapshotVersionMax, a.index, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if s, e := a.sm.LogBytes(); e != after-entries || e != 1 || s == 0 || s >= size {
		t.Fatalf("after a stored snapshot: %d bytes, %d entries; want only the 1 entry applied after the pin", s, e)
	}
	select {
	case <-full:
		t.Fatal("signalled below the limit")
	default:
	}
}
