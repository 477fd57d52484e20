package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
)

// Raft's state on disk when it cannot be read.
//
// raft-wal and hashicorp/raft panic on some logs they cannot read: raft's
// NewRaft panics when a log entry it scans for configuration changes cannot
// be read (raft-wal v0.4.0 left a segment that did, "sealed segment has no
// index block"). hiqlite runs inside someone else's process, so every call
// that opens or starts Raft on its files goes through guard, and a log that
// cannot be read is an error that says where it is and what to do.
//
// The node does not move an unreadable log aside by itself: raft-wal keeps
// the node's term and vote (the stable store) in wal-meta.db, next to the
// segment list, so moving the log aside also forgets the vote, and a node
// that forgets its vote may vote twice in one term. That is the operator's
// call, made with the cluster in view (ARCHITECTURE.md, crash story).

// ErrUnreadableLog: the node's Raft log (DATA_DIR/raft) cannot be read, so
// the node cannot start. The error names the directory; moving it aside
// makes a cluster member start empty and be rebuilt by the leader, and a
// single node continue a new log from its database.
var ErrUnreadableLog = errors.New("hiqlite: the Raft log cannot be read")

// errRaftExited: the goroutine that ran raft's code ended by
// runtime.Goexit, which the stores raft persists in call when a write fails
// (see persist.go's faultStable); the node's fault says why.
var errRaftExited = errors.New("hiqlite: raft stopped: its state could not be persisted")

// guard runs f, which opens raft-wal or starts Raft on the node's files, on
// a goroutine of its own that it joins before returning: a panic in f comes
// back as an error, and so does the end of that goroutine by
// runtime.Goexit (errRaftExited).
func guard(f func() error) (err error) {
	done := make(chan struct{})
	go func() {
		returned := false
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			} else if !returned {
				err = errRaftExited
			}
			close(done)
		}()
		err = f()
		returned = true
	}()
	<-done
	return err
}

// unreadableLog is the error of a Raft log in dir that cannot be read.
func unreadableLog(dir string, cause error) error {
	return fmt.Errorf("%w: %s: %w; move that directory aside and start the node again: a cluster member is then rebuilt from the leader, a single node continues from its database",
		ErrUnreadableLog, filepath.Join(dir, raftDir), cause)
}
