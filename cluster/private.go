package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"
)

// The data directory holds the whole database, the Raft log and the
// snapshots, so it is private to the user that runs the node: directories
// 0700, files 0600. The libraries below create their files with wider modes
// (raft-wal 0644, SQLite's WAL index and raft's snapshot files 0666 less the
// umask) and the umask is the application's to set, not a library's, so
// the node narrows what they create: as it is created where a library
// lets it (segments, snapshots), and with one pass over the tree at open.
const (
	privateDir  fs.FileMode = 0o700
	privateFile fs.FileMode = 0o600
)

// MakePrivateDir creates dir (and its parents) if needed and makes dir
// itself private.
func MakePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, privateDir); err != nil {
		return err
	}
	return narrow(dir)
}

// narrow makes one path private: a directory 0700, anything else 0600. It
// only takes permissions away, and does nothing to a symbolic link.
func narrow(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	want := privateFile
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil
	case fi.IsDir():
		want = privateDir
	}
	if fi.Mode().Perm()&^want == 0 {
		return nil
	}
	return os.Chmod(path, fi.Mode().Perm()&want)
}

// narrowTree makes dir and everything under it private. A file that
// disappears during the walk (a segment deleted by compaction) is skipped.
func narrowTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err == nil {
			err = narrow(path)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
}

// privateSegments is raft-wal's file system with every segment file made
// private as it is created.
type privateSegments struct{ *walfs.FS }

var _ types.VFS = privateSegments{}

func (p privateSegments) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := p.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	if err := narrow(filepath.Join(dir, name)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// privateSnapshots is a raft.SnapshotStore on disk whose snapshots,
// taken here or received from the leader, are made private once stored.
type privateSnapshots struct {
	raft.SnapshotStore
	dir string
}

func (p privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := p.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return privateSink{sink, p.dir}, nil
}

type privateSink struct {
	raft.SnapshotSink
	dir string
}

// Close stores the snapshot (raft renames its directory into place) and
// then narrows the store's tree.
func (s privateSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	return narrowTree(s.dir)
}
