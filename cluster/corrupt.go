package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hiqlite/hiqlite/internal/durable"
	"github.com/hiqlite/hiqlite/replication"
)

// keepCorrupt is how many damaged databases moved aside a data dir keeps
// for forensics; older ones are deleted when another is moved aside.
const keepCorrupt = 2

// corruptSuffix names a damaged database moved aside: hiqlite.db.corrupt-
// followed by the UTC time it was found, which sorts in time order.
const corruptSuffix = ".corrupt-"

// openDatabase opens the state database at path. A damaged one (it fails
// quick_check, SQLite finds it corrupt or not a database, or the node that
// last ran found it so and left the marker) is moved aside and replaced by
// an empty one, exactly as if it had been deleted: restoreIfBehind installs
// the newest local snapshot and raft replays the log after it, or the
// leader sends its snapshot when the log no longer reaches back that far.
// The raft directory (term, vote, log) is not touched.
//
// A node that has nothing to rebuild from (no raft log, and no cluster,
// cluster false) keeps the damaged database, its only copy, and fails.
func openDatabase(path string, cluster bool, logger hclog.Logger, opts replication.Options) (*replication.StateMachine, error) {
	found, marked := replication.MarkedCorrupt(path)
	if !marked {
		sm, err := openStateMachine(path, opts)
		if !replication.IsCorrupt(err) {
			return sm, err
		}
		found = err.Error()
	}
	logs, err := filepath.Glob(filepath.Join(filepath.Dir(path), raftDir, "*.wal"))
	if err != nil {
		return nil, err
	}
	if !cluster && len(logs) == 0 {
		return nil, fmt.Errorf("hiqlite: the database %s is corrupt (%s) and this node has no raft log to rebuild it from: restore a backup, or move the file aside to start empty", path, found)
	}
	aside, err := moveAsideCorrupt(path, time.Now())
	if err != nil {
		return nil, err
	}
	logger.Warn("the database is corrupt: moved aside, it is rebuilt from the last snapshot and the log, or from the leader", "found", found, "moved_to", aside)
	if removed, err := pruneCorrupt(path, keepCorrupt); err != nil {
		logger.Warn("remove old corrupt databases", "error", err)
	} else if len(removed) > 0 {
		logger.Info("removed old corrupt databases", "kept", keepCorrupt, "removed", removed)
	}
	return openStateMachine(path, opts)
}

// corruptFiles are the files of a database that move aside with it: the
// WAL and its index first, so that a crash between two renames never
// leaves the damaged database's WAL next to the new, empty one (SQLite
// would replay it there), and the marker last, so that such a crash finds
// the database marked again.
var corruptFiles = []string{"-wal", "-shm", "", replication.CorruptMarker}

// moveAsideCorrupt renames the database at path and its files to
// path.corrupt-<time> and syncs the directory. It returns the new name.
func moveAsideCorrupt(path string, now time.Time) (string, error) {
	aside := path + corruptSuffix + now.UTC().Format("20060102T150405.000Z")
	for _, suffix := range corruptFiles {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("hiqlite: move aside the corrupt database: %w", err)
		}
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("hiqlite: move aside the corrupt database: %w", err)
	}
	return aside, nil
}

// pruneCorrupt deletes all but the newest keep databases moved aside as
// corrupt (with their files) and returns the names deleted.
func pruneCorrupt(path string, keep int) ([]string, error) {
	names, err := filepath.Glob(path + corruptSuffix + "*")
	if err != nil {
		return nil, err
	}
	var bases []string
	for _, name := range names {
		if !strings.ContainsAny(strings.TrimPrefix(name, path+corruptSuffix), "-") {
			bases = append(bases, name)
		}
	}
	slices.Sort(bases)
	var removed []string
	for _, base := range bases[:max(len(bases)-keep, 0)] {
		for _, suffix := range corruptFiles {
			if err := os.Remove(base + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return removed, err
			}
		}
		removed = append(removed, base)
	}
	return removed, nil
}

// Corrupt reports an error of a read on this node's database (the local
// read pool): SQLITE_CORRUPT or SQLITE_NOTADB stops the state machine with
// a fault (see Fault), and the next start rebuilds the database. It
// returns err unchanged.
func (n *Node) Corrupt(err error) error {
	if replication.IsCorrupt(err) && n.sm.Fault() == nil {
		n.cfg.logger.Error("a read found the database corrupt: the node stopped applying; restart it to rebuild the database", "error", err)
	}
	return n.sm.Corrupt(err)
}
