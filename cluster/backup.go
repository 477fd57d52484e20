package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/durable"
	"github.com/hiqlite/hiqlite/internal/nodeid"
	"github.com/hiqlite/hiqlite/replication"
)

// CopyDatabase copies the node's database as of its applied index into a
// temporary file, for a backup (replication.StateMachine.CopyDatabase):
// in DATA_DIR, or the system's temporary directory for an in-memory node.
// Writes go on meanwhile. The caller removes the copy.
func (n *Node) CopyDatabase(ctx context.Context) (*replication.Copy, error) {
	dir := n.cfg.Dir
	if n.cfg.InMemory {
		dir = os.TempDir()
	}
	return n.sm.CopyDatabase(ctx, dir)
}

// Seed makes dir, an empty directory, the data directory of a node id that
// holds the database file db (which it moves there) and starts a new
// cluster of its own from it: the node id, hiqlite.db, and a Raft snapshot
// at index (the database's applied index), term 1, whose configuration
// has id as the one voter. A node opened on dir has Raft state, so it
// neither bootstraps nor guards its vote: it elects itself, corrects its
// address in the configuration (correctOwnAddress), and nodes that join
// get the snapshot from it.
func Seed(ctx context.Context, dir, id, db string, index uint64) error {
	if err := nodeid.Check(id); err != nil {
		return fmt.Errorf("hiqlite: node id %q: %w", id, err)
	}
	if err := MakePrivateDir(dir); err != nil {
		return err
	}
	// The database's own applied index decides where the new log starts:
	// a snapshot placed before it would have the new cluster skip its
	// first writes (apply passes over what the database has applied).
	applied, err := replication.ForgetSeen(db)
	if err != nil {
		return fmt.Errorf("hiqlite: restore: %w", err)
	}
	if applied != index {
		return fmt.Errorf("hiqlite: restore: the backup's header says index %d, but its database has applied index %d: refused", index, applied)
	}
	// Until the snapshot is whole, a node must not start here: it would
	// find a node id and no Raft state, and start empty (openFiles).
	marker := filepath.Join(dir, restoreMarker)
	if err := durable.WriteFile(marker, []byte("a restore into this directory did not finish: delete the directory and restore again\n"), privateFile); err != nil {
		return fmt.Errorf("hiqlite: restore: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, idFile), []byte(id+"\n"), privateFile); err != nil {
		return fmt.Errorf("hiqlite: persist node id: %w", err)
	}
	path := filepath.Join(dir, dbFile)
	if err := os.Rename(db, path); err != nil {
		return err
	}
	if err := durable.SyncDir(dir); err != nil {
		return err
	}
	store, err := raft.NewFileSnapshotStore(filepath.Join(dir, snapDir), retainSnap, io.Discard)
	if err != nil {
		return fmt.Errorf("hiqlite: create snapshot store: %w", err)
	}
	// The transport only encodes peers of snapshot version 0; a newer
	// snapshot has the configuration instead. The in-memory one starts no
	// goroutine.
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	// The address is not known here: the node id is what a single node's
	// in-memory transport uses, and a node with a listener replaces it
	// with its own once it leads.
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)}}}
	sink, err := store.Create(raft.SnapshotVersionMax, index, 1, conf, index, trans)
	if err != nil {
		return fmt.Errorf("hiqlite: create snapshot: %w", err)
	}
	if err := replication.EncodeSnapshot(ctx, sink, path); err != nil {
		return errors.Join(fmt.Errorf("hiqlite: write snapshot: %w", err), sink.Cancel())
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("hiqlite: write snapshot: %w", err)
	}
	if err := narrowTree(dir); err != nil {
		return err
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("hiqlite: restore: %w", err)
	}
	return durable.SyncDir(dir)
}

// restoreMarker is the file Seed keeps in a data directory while it
// restores into it; a node refuses to open a directory that has one.
const restoreMarker = "restore-incomplete"

// checkRestoreMarker refuses dir when a restore into it did not finish.
func checkRestoreMarker(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, restoreMarker)); err == nil {
		return fmt.Errorf("hiqlite: data dir %s holds an unfinished restore (%s): delete the directory and run the restore again", dir, restoreMarker)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// correctOwnAddress makes the leader's address in the Raft configuration
// the one it listens on, when it differs: a data directory made by Seed
// holds a placeholder, and an advertised address may change between runs.
// Other nodes would call, and vote for, this node at the old address.
// It runs on watchLeadership, which Close joins: its wait goes through
// futureErr, which gives up when the node closes.
func (n *Node) correctOwnAddress() {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) != n.id || s.Suffrage != raft.Voter || string(s.Address) == n.addr {
			continue
		}
		if err := n.futureErr(context.Background(), n.raft.AddVoter(s.ID, raft.ServerAddress(n.addr), f.Index(), n.cfg.Timeout)); err != nil {
			n.cfg.logger.Warn("correct this node's address in the configuration", "from", string(s.Address), "to", n.addr, "error", err)
			return
		}
		n.cfg.logger.Info("corrected this node's address in the configuration", "from", string(s.Address), "to", n.addr)
	}
}
