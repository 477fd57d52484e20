package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// Leadership: following raft's leader changes (the election no-op that
// opens writes), who leads, readiness (WaitReady) and the read index of
// linearizable reads.

// watchLeadership follows raft's leadership notifications. On gaining
// leadership it commits a no-op command, so that every entry of earlier
// terms is applied before this node admits a write, then opens ready.
func (n *Node) watchLeadership() {
	for {
		select {
		case <-n.stopCh:
			return
		case leader := <-n.notifyCh:
			n.setReady(false)
			if !leader {
				continue
			}
			// A no-op command, not raft.Barrier: raft does not hand barriers
			// to the state machine, and read indexes must be reachable by
			// its applied index.
			if _, err := n.apply(&replication.Command{Kind: replication.KindNoop}); err != nil {
				n.cfg.logger.Warn("no-op after election failed", "error", err)
				continue
			}
			if n.raft.State() == raft.Leader {
				n.correctOwnAddress()
				n.setReady(true)
			}
		}
	}
}

func (n *Node) setReady(ready bool) {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	select {
	case <-n.ready:
		if !ready {
			n.ready = make(chan struct{})
		}
	default:
		if ready {
			close(n.ready)
		}
	}
}

func (n *Node) readyCh() chan struct{} {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	return n.ready
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and address, empty when unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// WaitReady blocks until the cluster has a leader and this node has applied
// everything committed before it: for a leader, until its election barrier
// is applied.
//
// A follower is ready once it knows a leader and has applied that leader's
// read index.
func (n *Node) WaitReady(ctx context.Context) error {
	for {
		if n.closed.Load() {
			return nodeerr.ErrClosed
		}
		if err := n.sm.Fault(); err != nil {
			return err
		}
		if err := n.refusedErr(); err != nil {
			return err
		}
		if id, _ := n.Leader(); id != "" && id != n.id && n.mux != nil {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			err := n.LinearizableRead(rctx)
			cancel()
			if err == nil {
				return nil
			}
		}
		select {
		case <-n.readyCh():
			return nil
		case <-ctx.Done():
			if err := n.clusterErr(); err != nil {
				return fmt.Errorf("hiqlite: node %s not ready: %w (%w)", n.id, ctx.Err(), err)
			}
			return fmt.Errorf("hiqlite: node %s not ready: %w", n.id, ctx.Err())
		case <-n.stopCh:
			return nodeerr.ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLeaderReady waits until this node, the leader, has applied its
// election no-op. It fails with ErrNotLeader as soon as the node no longer
// leads: that election's no-op will never make it ready.
func (n *Node) waitLeaderReady(ctx context.Context) error {
	var tick *time.Ticker
	for {
		select {
		case <-n.readyCh():
			return nil
		default:
		}
		if !n.IsLeader() {
			return nodeerr.ErrNotLeader
		}
		if tick == nil {
			tick = time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
		}
		select {
		case <-n.readyCh():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("hiqlite: node %s not ready: %w", n.id, ctx.Err())
		case <-n.stopCh:
			return nodeerr.ErrClosed
		case <-tick.C:
		}
	}
}

// LinearizableRead returns once a read on this node sees every write
// committed before the call (read index): the leader confirms it still
// leads (its election barrier made its commit index current) and returns
// its commit index; this node's state machine then catches up to it.
// Followers ask the leader. While no leader is known it waits for one, up
// to ctx's deadline or the node's timeout. Its errors are a read's: nothing
// was written, whatever happened to the request.
func (n *Node) LinearizableRead(ctx context.Context) error {
	ctx, cancel := n.forwardContext(ctx)
	defer cancel()
	var w leaderWait
	for {
		var idx uint64
		var err error
		if n.mux == nil || n.IsLeader() {
			idx, err = n.readIndexLocal(ctx)
		}
		if n.mux != nil && (!n.IsLeader() || errors.Is(err, nodeerr.ErrNotLeader)) {
			var m wire.Message
			if m, err = n.forward(ctx, &wire.ReadIndexRequest{}, true); err == nil {
				idx = m.(*wire.ReadIndexResponse).Index
			}
		}
		if errors.Is(err, nodeerr.ErrNotLeader) && n.mux == nil {
			// A single node that has not elected itself yet.
			err = w.wait(ctx, n, err)
			if err == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("hiqlite: linearizable read: %w", err)
		}
		if err := n.sm.WaitApplied(idx, ctx.Done()); err != nil {
			return fmt.Errorf("hiqlite: linearizable read: wait to apply index %d: %w", idx, err)
		}
		return nil
	}
}

// readIndexLocal confirms leadership and returns the commit index. A
// leader that cannot confirm it leads is not the leader to this read.
func (n *Node) readIndexLocal(ctx context.Context) (uint64, error) {
	if err := n.leaderReady(ctx); err != nil {
		return 0, err
	}
	if err := n.futureErr(ctx, n.raft.VerifyLeader()); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
			return 0, nodeerr.ErrNotLeader
		case errors.Is(err, raft.ErrRaftShutdown):
			return 0, nodeerr.ErrClosed
		}
		return 0, fmt.Errorf("hiqlite: confirm leadership: %w", err)
	}
	return n.raft.CommitIndex(), nil
}

// State is this node's Raft state in lower case: leader, follower,
// candidate or shutdown.
func (n *Node) State() string { return strings.ToLower(n.raft.State().String()) }

// futureErr waits for f's answer, as f.Error does, but gives up with
// ErrClosed when the node closes and with ctx's error when ctx ends. Raft
// can leave a future unanswered as it shuts down (hashicorp/raft#498): a
// linearizable read that waited on its leadership check that way held the
// node's Close forever (the process never exited on SIGTERM), and so did
// a cache group membership change in CI. Every wait on a raft future in a
// goroutine that Close joins goes through here. Only when raft never
// answers is the goroutine that waits for it left behind.
func (n *Node) futureErr(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.stopCh:
		return nodeerr.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}
