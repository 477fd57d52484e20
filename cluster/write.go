package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// ErrTxIdle ends a write transaction left idle longer than its idle timeout.
var ErrTxIdle = errors.New("hiqlite: write transaction rolled back after being idle")

// Exec replicates an autocommit write: it waits up to busy for the write
// slot (shared with other autocommit writes), stamps the command with this
// leader's clock and a fresh seed, and returns the state machine's response
// once the command is committed and applied here.
func (n *Node) Exec(ctx context.Context, busy time.Duration, origin replication.Origin, flags replication.Flags, stmts []replication.Statement) (*replication.Response, error) {
	if err := n.leaderReady(ctx); err != nil {
		return nil, err
	}
	if err := n.gate.acquire(ctx, false, busy); err != nil {
		return nil, err
	}
	defer n.gate.release(false)
	cmd := &replication.Command{Kind: replication.KindExec, Time: time.Now().UnixNano(), Seed: rand.Uint64(), Origin: origin, Flags: flags, Stmts: stmts}
	return n.apply(cmd)
}

// leaderReady fails fast on a follower and waits for the election barrier on
// a new leader.
func (n *Node) leaderReady(ctx context.Context) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.IsLeader() {
		return ErrNotLeader
	}
	return n.WaitReady(ctx)
}

// apply puts cmd in the Raft log and waits for its result.
func (n *Node) apply(cmd *replication.Command) (*replication.Response, error) {
	data, err := cmd.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := n.raft.Apply(data, n.cfg.Timeout)
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	resp, ok := f.Response().(*replication.Response)
	if !ok {
		return nil, fmt.Errorf("hiqlite: unexpected state machine response %T", f.Response())
	}
	if resp.Err != nil {
		return nil, resp.Err
	}
	return resp, nil
}

// raftError maps raft's errors to the node's.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return fmt.Errorf("hiqlite: replicate: %w", err)
}

// WriteTx is an interactive write transaction on the leader. It holds the
// exclusive write slot from BeginTx until Commit, Rollback or the idle
// timeout, and runs each statement at once on the state machine's writer.
//
// mu serialises the owner's calls with the idle timer.
type WriteTx struct {
	n      *Node
	origin replication.Origin
	idle   time.Duration

	mu    sync.Mutex
	timer *time.Timer
	err   error // non-nil once the transaction has ended
}

// SnapshotCheck asks BeginTx to verify that nothing committed since a read
// transaction's snapshot, taken at Index.
type SnapshotCheck struct {
	Index uint64
	Valid bool
}

// BeginTx opens a write transaction for origin. It waits up to busy for the
// exclusive write slot. With snap.Valid, it fails with SQLITE_BUSY_SNAPSHOT
// when a write committed after the caller's read snapshot.
func (n *Node) BeginTx(ctx context.Context, busy, idle time.Duration, origin replication.Origin, flags replication.Flags, snap SnapshotCheck) (*WriteTx, error) {
	if err := n.leaderReady(ctx); err != nil {
		return nil, err
	}
	if err := n.gate.acquire(ctx, true, busy); err != nil {
		return nil, err
	}
	if snap.Valid && n.sm.AppliedIndex() != snap.Index {
		n.gate.release(true)
		return nil, fmt.Errorf("hiqlite: the database changed since this transaction's first read (index %d, now %d); retry the transaction: %w",
			snap.Index, n.sm.AppliedIndex(), sqlite3.BUSY_SNAPSHOT)
	}
	if err := n.sm.BeginTx(origin, time.Now().UnixNano(), rand.Uint64(), flags); err != nil {
		n.gate.release(true)
		return nil, err
	}
	tx := &WriteTx{n: n, origin: origin, idle: idle}
	tx.timer = time.AfterFunc(idle, tx.expire)
	return tx, nil
}

// Exec runs one statement of the transaction. readOnly statements see the
// transaction's writes and are not replicated.
func (tx *WriteTx) Exec(ctx context.Context, st replication.Statement, readOnly bool) (replication.Result, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return replication.Result{}, tx.err
	}
	if err := ctx.Err(); err != nil {
		return replication.Result{}, err
	}
	tx.timer.Stop()
	res, err := tx.n.sm.ExecTx(tx.origin, st, readOnly)
	if errors.Is(err, replication.ErrTxAborted) || errors.Is(err, replication.ErrStopped) {
		tx.finishLocked(err)
		return res, err
	}
	tx.timer.Reset(tx.idle)
	return res, err
}

// Commit replicates the transaction as one command and waits until it is
// applied here.
func (tx *WriteTx) Commit(ctx context.Context) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return tx.err
	}
	tx.timer.Stop()
	cmd, err := tx.n.sm.CommitCommand(tx.origin)
	if err == nil {
		if len(cmd.Stmts) == 0 {
			// Only reads ran: there is nothing to replicate.
			tx.n.sm.RollbackTx(tx.origin)
		} else {
			_, err = tx.n.apply(cmd)
		}
	}
	tx.finishLocked(errTxDone)
	return err
}

// Rollback ends the transaction without a trace. It is idempotent.
func (tx *WriteTx) Rollback() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return nil
	}
	tx.finishLocked(errTxDone)
	return nil
}

func (tx *WriteTx) expire() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err == nil {
		tx.finishLocked(fmt.Errorf("%w (_txidle=%v)", ErrTxIdle, tx.idle))
	}
}

var errTxDone = errors.New("hiqlite: transaction has already been committed or rolled back")

// finishLocked rolls back whatever is still open and frees the write slot.
func (tx *WriteTx) finishLocked(why error) {
	tx.timer.Stop()
	tx.n.sm.RollbackTx(tx.origin)
	tx.err = why
	tx.n.gate.release(true)
}
