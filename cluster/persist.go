package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
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

// errRaftExited: the goroutine that ran raft's code ended by
// runtime.Goexit, as faultStable and faultLog end it when raft's state
// cannot be persisted or read; the node's fault says why.
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
		nodeerr.ErrUnreadableLog, filepath.Join(dir, raftDir), cause)
}

// Raft's state on disk when it cannot be written.
//
// A failure to persist Raft state (a full disk, an I/O error, a removed
// DATA_DIR) stops the node, never the application: the node's state
// machine stops with the fault (so Fault, /healthz and every later write
// report it) and both Raft groups shut down, while the process goes on.
//
// hashicorp/raft does not let that happen by itself. It panics, on its own
// run goroutine where nobody can recover, when the StableStore cannot save
// the current term (setCurrentTerm), and when a log entry it applies or
// scans cannot be read (processLogs, liveBootstrap, NewRaft). It handles a
// failed vote save, log append or truncation by refusing the request or
// stepping down. So raft gets its stores through faultStable and faultLog:
//
//   - A failed stable store write reports the fault (fail) and never returns
//     to raft: it ends the calling goroutine, raft's run goroutine (NewRaft's
//     and BootstrapCluster's run under guard), with runtime.Goexit. Raft
//     started that goroutine with its goFunc, which marks it done in a
//     deferred call, so Shutdown does not wait for it. On its way out the
//     deferred calls run: raft's RPC handlers (appendEntries, requestVote,
//     installSnapshot) answer with the response they prepared before the
//     write, which carries the old term, no vote and no accepted entries,
//     and runLeader's cleanup fails the writes in flight with "leadership
//     lost". So a term or a vote that is not on disk is never acted on or
//     sent. Returning the error would panic; returning nil would let raft
//     grant a vote it has not persisted, which a restart would forget, and
//     a node that votes twice in a term can make two leaders; blocking would
//     keep Shutdown, and so Close, waiting forever.
//   - A failed log read other than "not found" (a compacted entry, which
//     raft handles) ends the calling goroutine the same way, since raft
//     would panic on it where it applies the log.
//   - A failed log append or truncation reports the fault and returns the
//     error, which raft handles: a leader fails the writes and steps down, a
//     follower rejects the entries.
//   - After a failure every write of either store fails at once without
//     touching the disk (fail closed): what is on disk may be half written,
//     and a follower must not acknowledge entries any more.
//
// fail is Node.persistFailed: it stops the state machine and wakes
// stopOnFault, which shuts raft down from a goroutine of the node's.

// faultStable is the raft.StableStore raft is given: the main group's is
// raft-wal's meta database, the cache group's a fileStable. where names the
// file in errors.
type faultStable struct {
	raft.StableStore
	where  string
	fail   func(error)
	failed atomic.Bool
}

// stop reports that key could not be saved and ends the calling goroutine.
func (s *faultStable) stop(key []byte, err error) {
	s.failed.Store(true)
	s.fail(fmt.Errorf("hiqlite: raft could not save %s in %s: %w; the node stopped: fix the cause and restart it", key, s.where, err))
	runtime.Goexit()
}

func (s *faultStable) Set(key, val []byte) error {
	if s.failed.Load() {
		s.stop(key, errors.New("an earlier save failed"))
	}
	if err := s.StableStore.Set(key, val); err != nil {
		s.stop(key, err)
	}
	return nil
}

func (s *faultStable) SetUint64(key []byte, val uint64) error {
	if s.failed.Load() {
		s.stop(key, errors.New("an earlier save failed"))
	}
	if err := s.StableStore.SetUint64(key, val); err != nil {
		s.stop(key, err)
	}
	return nil
}

// faultLog is the raft.LogStore of the main group: raft-wal behind its
// cache. dir is the log's directory.
type faultLog struct {
	raft.LogStore
	dir    string
	fail   func(error)
	failed atomic.Pointer[error]
	batch  *batcher // told when an append begins and ends
}

var _ raft.MonotonicLogStore = (*faultLog)(nil)

// IsMonotonic passes on raft-wal's answer (true): after a snapshot install
// raft must then replace the whole log.
func (l *faultLog) IsMonotonic() bool {
	m, ok := l.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (l *faultLog) GetLog(index uint64, log *raft.Log) error {
	err := l.LogStore.GetLog(index, log)
	if err != nil && !errors.Is(err, raft.ErrLogNotFound) {
		err = unreadableLog(filepath.Dir(l.dir), fmt.Errorf("entry %d: %w", index, err))
		l.failed.CompareAndSwap(nil, &err)
		l.fail(err)
		runtime.Goexit()
	}
	return err
}

// write runs a change of the log unless an earlier one failed.
func (l *faultLog) write(change func() error) error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	if err := change(); err != nil {
		err = fmt.Errorf("hiqlite: raft could not write its log in %s: %w; the node stopped: fix the cause and restart it", l.dir, err)
		l.failed.CompareAndSwap(nil, &err)
		l.fail(err)
		return err
	}
	return nil
}

func (l *faultLog) StoreLog(log *raft.Log) error {
	return l.write(func() error { return l.LogStore.StoreLog(log) })
}

func (l *faultLog) StoreLogs(logs []*raft.Log) error {
	if l.batch != nil {
		l.batch.storeBegin()
		defer l.batch.storeEnd()
	}
	return l.write(func() error { return l.LogStore.StoreLogs(logs) })
}

func (l *faultLog) DeleteRange(min, max uint64) error {
	return l.write(func() error { return l.LogStore.DeleteRange(min, max) })
}

// persistFailed records a failure to persist (or read) Raft state as the
// node's fault and wakes stopOnFault. It runs on the goroutine that failed,
// one of raft's, and does not block.
func (n *Node) persistFailed(err error) {
	n.persistErr.CompareAndSwap(nil, &err)
	n.sm.Stop(err)
	n.cfg.logger.Error("stopping the node", "error", err)
	n.faultOnce.Do(func() { close(n.faulted) })
}

// stopOnFault waits for a fault reported by persistFailed, then shuts both
// Raft groups down: every later call of the node returns the fault, and the
// process goes on. Any other fault that stops the state machine
// (corruption found by a read or an apply, an I/O error in apply) does the
// same once the node leads, at once for a leader: a stopped leader fails
// every write of the cluster, and its heartbeats keep the others from
// electing a leader that can apply them. Close joins it.
func (n *Node) stopOnFault() {
	select {
	case <-n.stopCh:
		return
	case <-n.faulted:
	case <-n.sm.Stopped():
		switch {
		case n.closed.Load():
			return // Close's Interrupt; Close shuts raft down itself
		case n.persistErr.Load() != nil:
			// persistFailed stopped it and is about to close faulted:
			// shut down from there, as for any persist fault.
			select {
			case <-n.stopCh:
				return
			case <-n.faulted:
			}
		default:
			// A follower goes on storing and acknowledging entries,
			// which the others' quorum may need; it stops once it leads.
			if !n.waitLeading() {
				return
			}
			n.cfg.logger.Error("the state machine stopped; Raft shuts down on this node so that the others elect a leader that applies writes", "error", n.sm.Fault())
		}
	}
	n.setReady(false)
	if err := n.raft.Shutdown().Error(); err != nil {
		n.cfg.logger.Warn("shut raft down after a fault", "error", err)
	}
	if err := n.cache.close(); err != nil {
		n.cfg.logger.Warn("close the cache group after a fault", "error", err)
	}
}

// waitLeading waits until this node leads and reports true, or false once
// the node closes.
func (n *Node) waitLeading() bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !n.IsLeader() {
		select {
		case <-n.stopCh:
			return false
		case <-t.C:
		}
	}
	return true
}

// bootstrapLive bootstraps the running main group with conf. raft answers
// on its run goroutine, and never does if a store ended that goroutine
// (a bootstrap saves the term and the first entry), so the wait also ends
// at the node's fault or Close. Only then is the goroutine that waits for
// raft's answer left behind, once, on a node that already stopped.
func (n *Node) bootstrapLive(conf raft.Configuration) error {
	f := n.raft.BootstrapCluster(conf)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.faulted:
		return n.Fault()
	case <-n.stopCh:
		return nodeerr.ErrClosed
	}
}

// startError is the error of a start of raft that failed with err: the
// node's fault when a store ended it (errRaftExited).
func (n *Node) startError(err error) error {
	if p := n.persistErr.Load(); p != nil && errors.Is(err, errRaftExited) {
		return *p
	}
	return err
}
