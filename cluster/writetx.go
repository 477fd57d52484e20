package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// Interactive write transactions: writeTx on the leader, holding the
// exclusive write slot from BeginTx to COMMIT, ROLLBACK or the idle
// timeout, and remoteTx, a follower's transaction forwarded to the leader
// on a session of its own.

// Tx is an interactive write transaction, run on the leader's writer: a
// *writeTx on the leader itself, or a session forwarded to it.
type Tx interface {
	// Exec runs one statement at once. readOnly statements see the
	// transaction's writes and are not replicated.
	Exec(ctx context.Context, st replication.Statement, readOnly bool) (replication.Result, error)
	// Commit replicates the transaction as one command and returns once
	// it is applied on this node.
	Commit(ctx context.Context) error
	// Rollback ends the transaction without a trace. It is idempotent.
	Rollback() error
}

// writeTx is an interactive write transaction on the leader. It holds the
// exclusive write slot from BeginTx until Commit, Rollback or the idle
// timeout, and runs each statement at once on the state machine's writer.
//
// mu serialises the owner's calls with the idle timer.
type writeTx struct {
	n      *Node
	origin replication.Origin
	idle   time.Duration

	mu    sync.Mutex
	timer *time.Timer
	last  time.Time // end of the last statement
	err   error     // non-nil once the transaction has ended
}

// SnapshotCheck asks BeginTx to verify that nothing committed since a read
// transaction's snapshot, taken at Index.
type SnapshotCheck struct {
	Index uint64
	Valid bool
}

// BeginTx opens a write transaction for origin on the leader's writer,
// forwarding it when this node is a follower. The leader waits up to busy
// for the exclusive write slot. With snap.Valid, it fails with
// SQLITE_BUSY_SNAPSHOT when a write committed after the caller's read
// snapshot. While no leader is known it waits for one, up to ctx's deadline
// or the node's timeout.
func (n *Node) BeginTx(ctx context.Context, busy, idle time.Duration, origin replication.Origin, flags replication.Flags, snap SnapshotCheck) (Tx, error) {
	tx, err := n.beginTx(ctx, busy, idle, origin, flags, snap)
	if err != nil {
		n.metrics.txs.WithLabelValues("begin_error").Inc()
		n.metrics.busyCounted(err)
		return nil, err
	}
	return &meteredTx{Tx: tx, m: n.metrics}, nil
}

// beginTx is BeginTx without the metrics.
func (n *Node) beginTx(ctx context.Context, busy, idle time.Duration, origin replication.Origin, flags replication.Flags, snap SnapshotCheck) (Tx, error) {
	if err := n.sm.Fault(); err != nil {
		return nil, err // a stopped node takes no writes (persist.go)
	}
	var w leaderWait
	var wctx context.Context // bounds the wait for a leader
	for {
		if n.mux == nil || n.IsLeader() {
			tx, err := n.beginLocal(ctx, busy, idle, origin, flags, snap)
			if !errors.Is(err, nodeerr.ErrNotLeader) {
				if err != nil {
					return nil, err
				}
				return tx, nil
			}
			if n.mux == nil || n.IsLeader() {
				if wctx == nil {
					var cancel context.CancelFunc
					wctx, cancel = n.forwardContext(ctx)
					defer cancel()
				}
				if err := w.wait(wctx, n, err); err != nil {
					return nil, err
				}
				continue
			}
		}
		return n.beginRemote(ctx, &wire.TxBeginRequest{Origin: origin, Flags: flags, Busy: busy, Idle: idle, SnapIndex: snap.Index, SnapValid: snap.Valid})
	}
}

// beginLocal opens a write transaction on this node, which must lead.
func (n *Node) beginLocal(ctx context.Context, busy, idle time.Duration, origin replication.Origin, flags replication.Flags, snap SnapshotCheck) (*writeTx, error) {
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
	tx := &writeTx{n: n, origin: origin, idle: idle, last: time.Now()}
	tx.timer = time.AfterFunc(idle, tx.expire)
	return tx, nil
}

// Exec runs one statement of the transaction. readOnly statements see the
// transaction's writes and are not replicated.
func (tx *writeTx) Exec(ctx context.Context, st replication.Statement, readOnly bool) (replication.Result, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return replication.Result{}, tx.err
	}
	if err := ctx.Err(); err != nil {
		return replication.Result{}, err
	}
	// The idle timer keeps running: holding mu for the statement, this
	// keeps expire from judging before last is set again, and expire re-arms
	// itself for what is left of the idle time (stopping and resetting it
	// per statement cost 3% of a transaction of single-row inserts).
	res, err := tx.n.sm.ExecTx(ctx, tx.origin, st, readOnly)
	if errors.Is(err, nodeerr.ErrTxAborted) || errors.Is(err, nodeerr.ErrStopped) {
		tx.finishLocked(err)
		return res, err
	}
	tx.last = time.Now()
	return res, err
}

// Commit replicates the transaction as one command and waits until it is
// applied here.
func (tx *writeTx) Commit(ctx context.Context) error {
	_, err := tx.commit()
	switch {
	case err == nil:
	case tx.n.mux != nil && errors.Is(err, nodeerr.ErrLeadershipLost):
		return tx.n.settleCommit(ctx, tx.origin, err)
	case errors.Is(err, nodeerr.ErrNotLeader):
		// raft refused the entry: it never entered the log.
		return fmt.Errorf("hiqlite: the transaction did not commit: this node lost its leadership before COMMIT: %w", nodeerr.ErrNotApplied)
	}
	return err
}

// commit returns the index of the committed command (0 when only reads
// ran and there was nothing to replicate).
func (tx *writeTx) commit() (uint64, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return 0, tx.err
	}
	tx.timer.Stop()
	var index uint64
	cmd, err := tx.n.sm.CommitCommand(tx.origin)
	if err == nil {
		if len(cmd.Stmts) == 0 {
			// Only reads ran: there is nothing to replicate.
			tx.n.sm.RollbackTx(tx.origin)
			index = tx.n.sm.AppliedIndex()
		} else {
			var resp *replication.Response
			if resp, err = tx.n.apply(cmd); err == nil {
				index = resp.Index
			}
		}
	}
	tx.finishLocked(errTxDone)
	return index, err
}

// Rollback ends the transaction without a trace. It is idempotent.
func (tx *writeTx) Rollback() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.err != nil {
		return nil
	}
	tx.finishLocked(errTxDone)
	return nil
}

func (tx *writeTx) expire() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if idle := time.Since(tx.last); tx.err == nil && idle < tx.idle {
		// A statement ran while this timer fired: not idle after all.
		tx.timer.Reset(tx.idle - idle)
		return
	}
	if tx.err == nil {
		tx.finishLocked(fmt.Errorf("%w (_txidle=%v)", nodeerr.ErrTxIdle, tx.idle))
	}
}

var errTxDone = errors.New("hiqlite: transaction has already been committed or rolled back")

// finishLocked rolls back whatever is still open and frees the write slot.
func (tx *writeTx) finishLocked(why error) {
	tx.timer.Stop()
	tx.n.sm.RollbackTx(tx.origin)
	tx.err = why
	tx.n.gate.release(true)
}

// remoteTx is a write transaction forwarded to the leader over a session of
// its own; closing the session rolls it back there.
type remoteTx struct {
	n      *Node
	origin replication.Origin
	rc     *rpcConn
	lost   error // why the session was dropped before COMMIT (ErrTxAborted), or nil
}

// done is the error of a call on a transaction whose session is gone.
func (t *remoteTx) done() error {
	if t.lost != nil {
		return t.lost
	}
	return errTxDone
}

func (n *Node) beginRemote(ctx context.Context, req *wire.TxBeginRequest) (Tx, error) {
	n.metrics.forwarded.WithLabelValues("transaction").Inc()
	ctx, cancel := n.forwardContext(ctx)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		rc, err := n.client.get(ctx)
		if err == nil {
			if _, err = rc.call(ctx, req); err == nil {
				return &remoteTx{n: n, origin: req.Origin, rc: rc}, nil
			}
			rc.c.Close()
		}
		// A BEGIN whose session died left nothing behind: the leader rolls
		// back a session's transaction when its connection closes.
		if !retryable(err) && !isTransportError(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("hiqlite: begin on leader: %w (last error: %w)", ctx.Err(), noLeader(err))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

func (t *remoteTx) Exec(ctx context.Context, st replication.Statement, readOnly bool) (replication.Result, error) {
	if t.rc == nil {
		return replication.Result{}, t.done()
	}
	if err := replication.CheckSize(0, []replication.Statement{st}); err != nil {
		return replication.Result{}, err // not sent; the transaction goes on
	}
	m, err := t.rc.call(ctx, &wire.TxExecRequest{Stmt: st, ReadOnly: readOnly})
	if err != nil {
		if isTransportError(err) {
			// The session is gone, and its transaction with it: whatever
			// the statement did was rolled back on the leader.
			t.drop()
			cerr := ctx.Err()
			if cerr == nil && errors.Is(err, context.DeadlineExceeded) {
				cerr = context.DeadlineExceeded
			}
			if cerr != nil {
				// Our deadline closed the session; the leader interrupts
				// the statement when it sees the session go.
				t.lost = fmt.Errorf("%w: the statement was interrupted: %w", nodeerr.ErrTxAborted, cerr)
			} else {
				t.lost = fmt.Errorf("%w: the connection to the leader was lost: %v", nodeerr.ErrTxAborted, err)
			}
			return replication.Result{}, t.lost
		}
		return replication.Result{}, err
	}
	res := m.(*wire.ResultResponse).Result
	return res, res.Err
}

func (t *remoteTx) Commit(ctx context.Context) error {
	if t.rc == nil {
		return t.done()
	}
	ctx, cancel := t.n.forwardContext(ctx)
	defer cancel()
	m, err := t.rc.call(ctx, &wire.TxCommitRequest{})
	if err != nil {
		t.drop()
		if commitSettled(err) {
			return err
		}
		var ns *notSentError
		if errors.As(err, &ns) {
			// Not sent: dropping the session rolled the transaction back.
			return fmt.Errorf("%w: the connection to the leader was lost before COMMIT was sent: %v", nodeerr.ErrTxAborted, err)
		}
		return t.n.settleCommit(ctx, t.origin, err)
	}
	t.n.client.put(t.rc)
	t.rc = nil
	t.n.ackWrite(m.(*wire.CommitResponse).Index)
	return nil
}

func (t *remoteTx) Rollback() error {
	if t.rc == nil {
		return nil
	}
	ctx, cancel := t.n.forwardContext(context.Background())
	defer cancel()
	if _, err := t.rc.call(ctx, &wire.TxRollbackRequest{}); err != nil {
		t.drop() // closing the session rolls the transaction back
		return nil
	}
	t.n.client.put(t.rc)
	t.rc = nil
	return nil
}

func (t *remoteTx) drop() {
	if t.rc != nil {
		t.rc.c.Close()
		t.rc = nil
	}
}
