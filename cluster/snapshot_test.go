package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

func openSingle(t testing.TB, cfg Config) *Node {
	t.Helper()
	cfg.logger = hclog.NewNullLogger()
	nd, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nd.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return nd
}

// Large entries make the node snapshot and compact its log by size long
// before the entry count threshold: the log on disk stays near
// _snapshot_bytes plus a segment.
func TestSnapshotOnLogSize(t *testing.T) {
	dir := t.TempDir()
	nd := openSingle(t, Config{
		Dir:               dir,
		SnapshotThreshold: 1 << 20, // never by count in this test
		SnapshotBytes:     1 << 20,
		SegmentSize:       1 << 20,
	})
	mustNodeExec(t, nd, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)`)
	blob := make([]byte, 64<<10)
	const rows = 80 // 5 MiB of entries
	for i := range rows {
		blob[0] = byte(i)
		mustNodeExec(t, nd, replication.Origin{}, `INSERT INTO t(b) VALUES(?)`, blob)
	}
	var snaps []*raft.SnapshotMeta
	var first uint64
	waitfor.Cond(t, "a snapshot and a compacted log", 20*time.Second, func() bool {
		var err error
		if snaps, err = nd.snaps.List(); err != nil {
			t.Fatal(err)
		}
		if first, err = nd.log.FirstIndex(); err != nil {
			t.Fatal(err)
		}
		return len(snaps) > 0 && first > 1
	})
	size, _ := nd.sm.LogBytes()
	t.Logf("snapshot at index %d, log starts at %d, %d bytes since", snaps[0].Index, first, size)
	// The trailing entries are lowered for each size snapshot only: once
	// the writes stopped and the last one is done, they are back.
	waitfor.Cond(t, "TrailingLogs back at the configured value once the last size snapshot is done", 10*time.Second, func() bool {
		size, _ := nd.sm.LogBytes()
		return size < 1<<20 && nd.raft.ReloadableConfig().TrailingLogs == 1<<20
	})
	if got, _ := nd.sm.LogBytes(); got >= 5<<20 {
		t.Errorf("LogBytes = %d after a snapshot, want it reset", got)
	}
	var total int64
	segs, _ := filepath.Glob(filepath.Join(dir, raftDir, "*.wal"))
	for _, s := range segs {
		fi, err := os.Stat(s)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	// 5 MiB was written; without compaction all of it is still there.
	if total >= 5<<20 {
		t.Errorf("raft log holds %d bytes in %d segments after compaction", total, len(segs))
	}
	countEverywhere(t, []*Node{nd}, "1", rows)
}

// A process killed while it took or installed a snapshot leaves temporary
// database copies and a partial snapshot directory; the next start deletes
// them, and only them.
func TestOpenRemovesSnapshotLeftovers(t *testing.T) {
	dir := t.TempDir()
	nd := openSingle(t, Config{Dir: dir})
	mustNodeExec(t, nd, replication.Origin{}, `CREATE TABLE t(x)`)
	mustNodeExec(t, nd, replication.Origin{}, `INSERT INTO t VALUES(42)`)
	if err := nd.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(dir, "snapshot-123.db"),
		filepath.Join(dir, "snapshot-123.db-journal"),
		filepath.Join(dir, "restore-456.db"),
		filepath.Join(dir, snapDir, "snapshots", "2-9-1700000000000.tmp", "state.bin"),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}

	nd = openSingle(t, Config{Dir: dir})
	for _, p := range leftovers {
		if strings.HasSuffix(filepath.Dir(p), ".tmp") {
			p = filepath.Dir(p)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the restart: %v", p, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file that is not a snapshot leftover was removed: %v", err)
	}
	snaps, err := nd.snaps.List()
	if err != nil || len(snaps) != 1 {
		t.Errorf("snapshots after restart: %v, %v; want the one taken", snaps, err)
	}
	countEverywhere(t, []*Node{nd}, "x = 42", 1)
}
