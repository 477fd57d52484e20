package cluster

import (
	"context"
	"fmt"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Read your writes on a follower. A write this node forwards is committed
// when the leader answers, but this node applies it only once it learns the
// commit, from the leader's next AppendEntries: raft sends one when new
// entries come or every CommitTimeout (2 to 4 ms), so a lone writer that
// waited for its write to be applied here made about 200 writes a second.
// The write is acknowledged at once instead, and its index raises the
// node's floor (acked); every read on this node waits until the node has
// applied up to the floor before it prepares or opens a snapshot. A write
// that returned on this node is thus seen by every later read here, on any
// connection, and writes themselves never wait for this node's apply.

// ackWrite raises the floor of reads on this node to index, the index of
// a write or COMMIT that this node acknowledged.
func (n *Node) ackWrite(index uint64) {
	for {
		cur := n.acked.Load()
		if index <= cur || n.acked.CompareAndSwap(cur, index) {
			return
		}
	}
}

// OwnWritesPending reports whether this node acknowledged a write that it
// has not applied yet.
func (n *Node) OwnWritesPending() bool {
	return n.sm.SeenIndex() < n.acked.Load()
}

// WaitOwnWrites waits until this node has applied every write it
// acknowledged (read your writes). A read calls it before it touches the
// local database. It costs two atomic loads when nothing is pending. The
// wait is bounded by ctx and a fresh _timeout; when it ends first, the
// error wraps ErrNotVisible.
func (n *Node) WaitOwnWrites(ctx context.Context) error {
	idx := n.acked.Load()
	if idx == 0 || n.sm.SeenIndex() >= idx {
		return nil
	}
	n.metrics.ownWriteWaits.Inc()
	return n.waitVisible(ctx, idx)
}

// waitVisible waits until this node has applied index. On a loaded
// follower the apply can trail the leader by seconds, so the wait has a
// _timeout of its own rather than what is left of a forward's. When it
// still ends first, the error is ErrNotVisible: the write was committed,
// this node has not applied it yet.
func (n *Node) waitVisible(caller context.Context, index uint64) error {
	if n.sm.SeenIndex() >= index {
		return nil
	}
	ctx, cancel := n.forwardContext(caller)
	defer cancel()
	// A node that closes applies nothing more: the wait ends with it (the
	// sessions of remote clients, which Close waits for, wait here).
	go func() {
		select {
		case <-n.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := n.sm.WaitApplied(index, ctx.Done()); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		select {
		case <-n.stopCh:
			err = nodeerr.ErrClosed
		default:
		}
		return fmt.Errorf("%w (index %d): %w", nodeerr.ErrNotVisible, index, err)
	}
	return nil
}
