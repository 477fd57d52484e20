package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/hiqlite/hiqlite/replication"
)

// A Raft log the node cannot read stops its start with ErrUnreadableLog,
// naming the directory and what to do, and never panics: raft's NewRaft
// panics on an entry it cannot read, as it did on the segment raft-wal
// v0.4.0 sealed without its index block, which the first case rebuilds.
func TestUnreadableLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, raftDir string)
	}{
		{"sealed segment without its index block", func(t *testing.T, dir string) {
			var db metadb.BoltMetaDB
			state, err := db.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if len(state.Segments) < 2 || state.Segments[0].SealTime.IsZero() {
				t.Fatalf("want a sealed segment first, have %+v", state.Segments)
			}
			state.Segments[0].IndexStart = 0
			if err := db.CommitState(state); err != nil {
				t.Fatal(err)
			}
		}},
		{"sealed segment cut short", func(t *testing.T, dir string) {
			segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
			if err != nil || len(segs) < 2 {
				t.Fatalf("want two segments, have %v (%v)", segs, err)
			}
			if err := os.Truncate(segs[0], 4096); err != nil {
				t.Fatal(err)
			}
		}},
		{"sealed segment overwritten", func(t *testing.T, dir string) {
			segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
			if err != nil || len(segs) < 2 {
				t.Fatalf("want two segments, have %v (%v)", segs, err)
			}
			if err := os.WriteFile(segs[0], []byte(strings.Repeat("not a segment ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta database overwritten", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "wal-meta.db"), []byte(strings.Repeat("not a bolt database ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, SegmentSize: 64 << 10}
			nd := openSingle(t, cfg)
			mustNodeExec(t, nd, replication.Origin{}, `CREATE TABLE t(b BLOB)`)
			blob := make([]byte, 4096)
			for range 40 { // 160 KiB of entries: sealed segments, then the tail
				mustNodeExec(t, nd, replication.Origin{}, `INSERT INTO t VALUES (?)`, blob)
			}
			if err := nd.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(dir, raftDir))

			cfg.Logger = hclog.NewNullLogger()
			again, err := Open(cfg)
			if err == nil {
				again.Close()
				t.Fatal("a node with a broken raft log started")
			}
			if !errors.Is(err, ErrUnreadableLog) || !strings.Contains(err.Error(), filepath.Join(dir, raftDir)) || !strings.Contains(err.Error(), "move that directory aside") {
				t.Fatalf("Open: %v, want ErrUnreadableLog naming %s and the way out", err, filepath.Join(dir, raftDir))
			}
			t.Logf("Open: %v", err)
			// The way out works: with the log moved aside, the single node
			// continues from its database.
			if err := os.Rename(filepath.Join(dir, raftDir), filepath.Join(dir, "raft.broken")); err != nil {
				t.Fatal(err)
			}
			healed := openSingle(t, cfg)
			resp := mustNodeExec(t, healed, replication.Origin{}, `SELECT count(*) FROM t`)
			if n := resp.Results[0].Rows[0][0].(int64); n != 40 {
				t.Fatalf("%d rows after moving the log aside, want 40", n)
			}
		})
	}
}
