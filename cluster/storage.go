package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"

	"github.com/hiqlite/hiqlite/internal/durable"
	"github.com/hiqlite/hiqlite/replication"
)

// The node's storage: opening the files of DATA_DIR (or memory), the stores
// raft is given, crash leftovers, the node id, and durable small writes.

// Files and directories inside DATA_DIR.
const (
	dbFile     = "hiqlite.db"
	raftDir    = "raft"
	snapDir    = "snapshots"
	idFile     = "node-id"
	lockFile   = "LOCK"
	retainSnap = 2
)

// openFiles opens what a node keeps in cfg.Dir: it takes the directory's
// lock, reads or creates the node id, and opens the state database, the
// Raft log and the snapshots.
func (n *Node) openFiles() (err error) {
	if err := MakePrivateDir(n.cfg.Dir); err != nil {
		return fmt.Errorf("hiqlite: create data dir: %w", err)
	}
	if n.lock, err = lockDir(n.cfg.Dir); err != nil {
		return err
	}
	if err := checkRestoreMarker(n.cfg.Dir); err != nil {
		return err
	}
	if n.id, err = loadID(n.cfg.Dir, n.cfg.ID); err != nil {
		return err
	}
	if err = removeCrashLeftovers(n.cfg.Dir, n.cfg.logger); err != nil {
		return err
	}
	if n.sm, err = openDatabase(filepath.Join(n.cfg.Dir, dbFile), n.cfg.Listen != "", n.cfg.logger, n.smOptions()); err != nil {
		return err
	}
	if err = os.MkdirAll(filepath.Join(n.cfg.Dir, raftDir), privateDir); err != nil {
		return err
	}
	// raft-wal's Close leaves its meta database open, so the node owns it.
	n.meta = &metadb.BoltMetaDB{}
	segmentSize := wal.DefaultSegmentSize
	if n.cfg.SegmentSize > 0 {
		segmentSize = n.cfg.SegmentSize
	}
	logDir := filepath.Join(n.cfg.Dir, raftDir)
	files := segment.NewFiler(logDir, privateSegments{walfs.New()})
	if err = guard(func() (err error) {
		n.log, err = wal.Open(logDir, wal.WithMetaStore(n.meta), wal.WithSegmentFiler(files), wal.WithSegmentSize(segmentSize))
		return err
	}); err != nil {
		return unreadableLog(n.cfg.Dir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(n.cfg.Dir, snapDir), retainSnap, n.cfg.logger.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("hiqlite: open snapshot store: %w", err)
	}
	n.snaps = privateSnapshots{snaps, filepath.Join(n.cfg.Dir, snapDir)}
	// What the libraries created above, and what an older version left,
	// becomes private (files created later are narrowed as they appear).
	if err = narrowTree(n.cfg.Dir); err != nil {
		return fmt.Errorf("hiqlite: make %s private: %w", n.cfg.Dir, err)
	}
	if err = n.restoreIfBehind(); err != nil {
		return err
	}
	return nil
}

// openMemory opens an InMemory node's state: a new database in memory, and
// raft's in-memory log, stable and snapshot stores. Nothing outlives Close.
func (n *Node) openMemory() (err error) {
	if n.id = n.cfg.ID; n.id == "" {
		n.id = newID()
	}
	if n.sm, err = replication.OpenMemory(n.smOptions()); err != nil {
		return err
	}
	n.mem = raft.NewInmemStore()
	n.snaps = raft.NewInmemSnapshotStore()
	return nil
}

// orphanedDatabase handles a database whose Raft log is gone (the raft
// directory was deleted): its applied index means nothing to a new log. A
// single node keeps it, as the only copy, and a new log continues from it.
// A cluster member moves it aside (kept for the operator) and starts empty,
// to be caught up by the leader, which would otherwise replay entries over
// data that already holds them.
func (n *Node) orphanedDatabase() error {
	if n.cfg.Listen == "" {
		n.cfg.logger.Warn("the raft log is gone; continuing a new log from the existing database", "applied_index", n.sm.AppliedIndex())
		return n.sm.ResetIndex()
	}
	path := n.sm.Path()
	if err := n.sm.Close(); err != nil {
		return err
	}
	n.sm = nil
	aside := fmt.Sprintf("%s.orphaned-%d", path, time.Now().Unix())
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("hiqlite: move aside the database of a lost raft log: %w", err)
		}
	}
	n.cfg.logger.Warn("the raft log is gone; the database was moved aside and will be rebuilt from the leader", "moved_to", aside)
	var err error
	n.sm, err = openStateMachine(path, n.smOptions())
	return err
}

// removeCrashLeftovers deletes what a process killed while it took or
// installed a snapshot left behind: the state machine's temporary database
// copies and raft's unfinished snapshot directories (*.tmp, which raft
// ignores but never deletes). Each can be as large as the database. The
// directory lock is held, so no other process is writing them.
func removeCrashLeftovers(dir string, logger hclog.Logger) error {
	removed, err := replication.RemoveTemp(dir)
	if err != nil {
		return fmt.Errorf("hiqlite: remove temporary snapshot files: %w", err)
	}
	partial, err := filepath.Glob(filepath.Join(dir, snapDir, "snapshots", "*.tmp"))
	if err != nil {
		return err
	}
	for _, p := range partial {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("hiqlite: remove unfinished snapshot: %w", err)
		}
	}
	if removed = append(removed, partial...); len(removed) > 0 {
		logger.Warn("removed files of a snapshot interrupted by a crash", "files", removed)
	}
	return nil
}

// logStore is raft-wal behind a cache of the newest entries: replication to
// followers and the state machine read back what was just appended, and
// raft-wal serves each read with a pread of its own. A failure stops the
// node (faultLog).
func (n *Node) logStore() raft.LogStore {
	if n.logCache == nil {
		n.logCache, _ = raft.NewLogCache(1024, n.rawLog()) // fails only for a size <= 0
		n.logFault = &faultLog{LogStore: n.logCache, dir: filepath.Join(n.cfg.Dir, raftDir), fail: n.persistFailed, batch: &n.batch}
	}
	return n.logFault
}

// rawLog is the Raft log under the cache: raft-wal, or memory.
func (n *Node) rawLog() raft.LogStore {
	if n.mem != nil {
		return n.mem
	}
	return n.log
}

// rawStable is where raft keeps its term and vote: raft-wal's meta
// database, or memory.
func (n *Node) rawStable() raft.StableStore {
	if n.mem != nil {
		return n.mem
	}
	return n.log
}

// stableStore is raft-wal's meta database, where raft keeps its term and
// vote; a failed save stops the node (faultStable).
func (n *Node) stableStore() raft.StableStore {
	if n.stable == nil {
		n.stable = &faultStable{StableStore: n.rawStable(), where: filepath.Join(n.cfg.Dir, raftDir, "wal-meta.db"), fail: n.persistFailed}
	}
	return n.stable
}

// openStateMachine opens the state database.
func openStateMachine(path string, opts replication.Options) (*replication.StateMachine, error) {
	return replication.Open(path, opts)
}

// smOptions configures the node's state machine: it delivers notifications
// to the node's listeners and signals when the log needs a snapshot.
func (n *Node) smOptions() replication.Options {
	return replication.Options{NotifySink: n.deliverNotifications, LogLimit: n.cfg.SnapshotBytes, ConnInit: n.cfg.ConnInit}
}

// restoreIfBehind installs the newest snapshot when the database is older
// than it (the database was lost or restored from an old copy): the log
// before the snapshot may be gone, so replay alone cannot catch up.
func (n *Node) restoreIfBehind() error {
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	meta := metas[0]
	if meta.Index <= n.sm.SeenIndex() {
		return nil
	}
	_, rc, err := n.snaps.Open(meta.ID)
	if err != nil {
		return fmt.Errorf("hiqlite: open snapshot %s: %w", meta.ID, err)
	}
	if err := n.sm.Restore(rc); err != nil {
		return fmt.Errorf("hiqlite: restore snapshot %s: %w", meta.ID, err)
	}
	return nil
}

// loadID returns the node id persisted in dir, persisting want (or a new
// random id) the first time. A different want than the persisted one is an
// error: a node keeps its identity for the life of its data.
func loadID(dir, want string) (string, error) {
	path := filepath.Join(dir, idFile)
	b, err := os.ReadFile(path)
	if err == nil {
		have := strings.TrimSpace(string(b))
		if want != "" && want != have {
			return "", fmt.Errorf("hiqlite: _node %q differs from the id %q that %s was created with", want, have, dir)
		}
		return have, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("hiqlite: read node id: %w", err)
	}
	id := want
	if id == "" {
		id = newID()
	}
	if err := durable.WriteFile(path, []byte(id+"\n"), privateFile); err != nil {
		return "", fmt.Errorf("hiqlite: persist node id: %w", err)
	}
	return id, nil
}

// newID is a new random node id.
func newID() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "node-" + hex.EncodeToString(r[:])
}
