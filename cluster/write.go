package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// Exec replicates an autocommit write and returns the state machine's
// response once the write is applied on this node (read your writes). On
// the leader it waits up to busy for the write slot (shared with other
// autocommit writes) and stamps the command with its clock and a fresh
// seed; a follower forwards the write to the leader. While no leader is
// known (an election, a node that has not elected itself yet) the write
// waits for one, up to ctx's deadline or the node's timeout, whichever
// comes first.
func (n *Node) Exec(ctx context.Context, busy time.Duration, origin replication.Origin, flags replication.Flags, stmts []replication.Statement) (*replication.Response, error) {
	start := time.Now()
	resp, err := n.exec(ctx, busy, origin, flags, stmts)
	n.metrics.observeWrite(start, err)
	return resp, err
}

// exec is Exec without the metrics.
func (n *Node) exec(ctx context.Context, busy time.Duration, origin replication.Origin, flags replication.Flags, stmts []replication.Statement) (*replication.Response, error) {
	// Refused here, before anything goes on the wire or into the log.
	if err := replication.CheckSize(0, stmts); err != nil {
		return nil, err
	}
	ctx, cancel := n.forwardContext(ctx)
	defer cancel()
	// A write with an origin is deduplicated by the state machine, so it
	// may be sent again after an unknown outcome: the retry gets the
	// recorded result, or applies it if the first copy never was.
	dedup := origin.Session != 0
	var maybe bool // a local attempt may have been applied
	var w leaderWait
	for {
		var err error
		if n.mux == nil || n.IsLeader() {
			var resp *replication.Response
			resp, err = n.execLocal(ctx, busy, origin, flags, stmts)
			if errors.Is(err, nodeerr.ErrLeadershipLost) {
				maybe = true
			}
			if again := errors.Is(err, nodeerr.ErrNotLeader) || (dedup && maybe && n.mux != nil); !again {
				if maybe && err != nil {
					return nil, unsettled(err)
				}
				return resp, err
			}
		}
		if n.mux != nil && !n.IsLeader() {
			return n.execRemote(ctx, &wire.ExecRequest{Origin: origin, Flags: flags, Busy: busy, Stmts: stmts}, dedup, maybe)
		}
		// This node may still become the leader (a single node electing
		// itself, a candidate): wait for that, or for another leader.
		if err = w.wait(ctx, n, err); err != nil {
			if maybe {
				err = unsettled(err)
			}
			return nil, err
		}
	}
}

// execRemote forwards an autocommit write to the leader. It returns once
// the leader answers: the write is committed (a majority fsynced it) and
// applied there. This node may apply it a moment later, when it learns the
// commit; reads here wait for that (ownwrites.go). maybe: an earlier local
// attempt may have been applied.
func (n *Node) execRemote(ctx context.Context, req *wire.ExecRequest, dedup, maybe bool) (*replication.Response, error) {
	n.metrics.forwarded.WithLabelValues("write").Inc()
	m, err := n.forwardExec(ctx, req, dedup)
	if err != nil {
		if maybe {
			err = unsettled(err)
		}
		return nil, err
	}
	out, ok := m.(*wire.ExecResponse)
	if !ok {
		return nil, unexpectedAnswer(req, m)
	}
	n.ackWrite(out.Index)
	return &replication.Response{Index: out.Index, Results: out.Results}, nil
}

// leaderWait paces the retries of a request that found no leader it could
// use; the zero value is ready to use.
type leaderWait struct{ backoff time.Duration }

// wait pauses before the next try, and returns why not to try again: ctx
// ended (wrapping ErrNoLeader and last, the error of the last try) or the
// node closed.
func (w *leaderWait) wait(ctx context.Context, n *Node, last error) error {
	if errors.Is(last, nodeerr.ErrNotLeader) {
		last = nodeerr.ErrNoLeader // no leader could take it: this node is none, and knows no other
	}
	w.backoff = min(max(2*w.backoff, 5*time.Millisecond), 100*time.Millisecond)
	t := time.NewTimer(w.backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("hiqlite: waiting for a leader: %w (last error: %w)", ctx.Err(), last)
	case <-n.stopCh:
		return nodeerr.ErrClosed
	case <-t.C:
		return nil
	}
}

// forwardContext bounds a request by _timeout.
func (n *Node) forwardContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.cfg.Timeout)
}

// execLocal runs an autocommit write on this node, which must lead.
func (n *Node) execLocal(ctx context.Context, busy time.Duration, origin replication.Origin, flags replication.Flags, stmts []replication.Statement) (*replication.Response, error) {
	if err := n.leaderReady(ctx); err != nil {
		return nil, err
	}
	if err := n.gate.acquire(ctx, false, busy); err != nil {
		return nil, err
	}
	defer n.gate.release(false)
	return n.applyExec(execCommand(origin, flags, stmts))
}

// execCommand is the command of an autocommit write, stamped with the
// leader's clock and a fresh seed.
func execCommand(origin replication.Origin, flags replication.Flags, stmts []replication.Statement) *replication.Command {
	return &replication.Command{Kind: replication.KindExec, Time: time.Now().UnixNano(), Seed: rand.Uint64(), Origin: origin, Flags: flags, Stmts: stmts}
}

// leaderReady fails fast on a follower and waits for the election barrier on
// a new leader.
func (n *Node) leaderReady(ctx context.Context) error {
	if n.closed.Load() {
		return nodeerr.ErrClosed
	}
	if err := n.sm.Fault(); err != nil {
		return err // a stopped node takes no writes (persist.go)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.IsLeader() {
		return nodeerr.ErrNotLeader
	}
	return n.waitLeaderReady(ctx)
}

// apply puts cmd in the Raft log and waits for its result.
func (n *Node) apply(cmd *replication.Command) (*replication.Response, error) {
	data, err := cmd.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if len(data) > replication.MaxCommandBytes {
		// The last line of defence: raft-wal would refuse the entry.
		return nil, &replication.TooLargeError{Size: len(data)}
	}
	return n.futureResponse(n.raft.Apply(data, n.cfg.Timeout))
}

// raftError maps raft's errors to the node's.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return nodeerr.ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		// The node closed with the write in flight: it may still commit.
		return fmt.Errorf("%w: %w", nodeerr.ErrLeadershipLost, nodeerr.ErrClosed)
	case errors.Is(err, raft.ErrLeadershipLost):
		return nodeerr.ErrLeadershipLost
	}
	return fmt.Errorf("hiqlite: replicate: %w", err)
}

// outcome is the settled fate of a write: applied at index, or not applied
// and never to be (index is then the fence's).
type outcome struct {
	applied bool
	index   uint64
}

// resolve settles whether origin's write was applied, on the leader,
// forwarding when this node follows: a KindFence in the log either finds the
// write applied or makes sure it never will be. A write found applied
// counts as acknowledged here (ownwrites.go). Used for a COMMIT whose reply
// was lost.
func (n *Node) resolve(ctx context.Context, origin replication.Origin) (applied bool, index uint64, err error) {
	if origin.Session == 0 {
		return false, 0, errors.New("hiqlite: cannot resolve a write without a session")
	}
	var o outcome
	if n.mux == nil || n.IsLeader() {
		o, err = n.fenceLocal(ctx, origin)
	}
	if n.mux != nil && (!n.IsLeader() || errors.Is(err, nodeerr.ErrNotLeader) || errors.Is(err, nodeerr.ErrLeadershipLost)) {
		fctx, cancel := n.forwardContext(ctx)
		defer cancel()
		var m wire.Message
		if m, err = n.forward(fctx, &wire.OutcomeRequest{Origin: origin}, true); err == nil {
			r := m.(*wire.OutcomeResponse)
			o = outcome{applied: r.Applied, index: r.Index}
		}
	}
	if err != nil {
		return false, 0, err
	}
	if !o.applied {
		// Settled for good by the fence; the caller will not read
		// anything of it.
		return false, o.index, nil
	}
	n.ackWrite(o.index)
	return true, o.index, nil
}

// fenceLocal puts a KindFence for origin in the log of this node, which must
// lead, and returns what it found. It takes the shared write slot, so it
// never lands inside an open write transaction of this leader.
func (n *Node) fenceLocal(ctx context.Context, origin replication.Origin) (outcome, error) {
	if err := n.leaderReady(ctx); err != nil {
		return outcome{}, err
	}
	if err := n.gate.acquire(ctx, false, n.cfg.Timeout); err != nil {
		return outcome{}, err
	}
	defer n.gate.release(false)
	resp, err := n.apply(&replication.Command{Kind: replication.KindFence, Time: time.Now().UnixNano(), Origin: origin})
	if err != nil {
		return outcome{}, err
	}
	return outcome{applied: !resp.NotApplied, index: resp.Index}, nil
}

// settleCommit turns the error of a COMMIT that may have been applied into
// the truth, asking the leader by the transaction's origin.
func (n *Node) settleCommit(ctx context.Context, origin replication.Origin, cerr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.Timeout)
	defer cancel()
	applied, _, err := n.resolve(ctx, origin)
	switch {
	case applied && errors.Is(err, nodeerr.ErrNotVisible):
		return err // committed: saying "unknown" would invite a retry
	case err != nil:
		return fmt.Errorf("%w: could not learn whether the transaction committed (%v): %w", nodeerr.ErrOutcomeUnknown, cerr, err)
	case applied:
		return nil
	}
	return fmt.Errorf("hiqlite: the transaction did not commit (%v): %w", cerr, nodeerr.ErrNotApplied)
}

// commitSettled: err from a COMMIT proves the transaction did not commit.
func commitSettled(err error) bool {
	return errors.Is(err, nodeerr.ErrTxAborted) || errors.Is(err, nodeerr.ErrTxIdle) || errors.Is(err, errTxDone) ||
		errors.Is(err, nodeerr.ErrNotApplied) || errors.Is(err, nodeerr.ErrStopped) || errors.Is(err, nodeerr.ErrTooLarge)
}
