package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// batcher carries the autocommit writes that wait on the leader in one Raft
// log entry (a replication.KindBatch), so that raft's work per entry, the
// log appends with their fsyncs on every node and the state machine's
// transactions are paid once for all of them.
//
// A write hands an entry to raft only while fewer than maxInFlight entries
// of the batcher are in flight (handed to raft and not yet applied here)
// and the log is not appending (raft's loop would not take the entry
// before the append's fsync ends anyway); meanwhile the writes that arrive
// queue, and the next entry carries them all. At most one write at a time
// waits to hand an entry to raft (busy); when raft has taken it, the turn
// passes to the first write still queued, which takes the whole queue (in
// order, within replication.MaxBatch and MaxCommandBytes), so every write in
// turn waits for its own entry and answers its neighbours. The queue is
// never empty while busy is false. A write that finds nothing in flight
// goes at once, alone, as before.
type batcher struct {
	mu    sync.Mutex
	busy  bool
	queue []*batchCall
	// storing: the log store is appending (on a leader: its loop's fsync);
	// stored is closed when that append ends, when someone waits for it.
	storing bool
	stored  chan struct{} // also closed when an entry in flight is applied
	// inFlight counts the entries handed to raft and not yet answered.
	inFlight int
	// batches and batched count the KindBatch entries handed to raft and
	// the writes in them.
	batches, batched atomic.Uint64
}

// batchCall is one autocommit write waiting in the batcher.
type batchCall struct {
	data  []byte // its command, encoded
	key   replication.Flags
	alone bool          // !replication.CanBatch: it takes an entry of its own
	wake  chan struct{} // capacity 1: answered, or turn set
	turn  bool          // its turn to hand the queue to raft
	resp  *replication.Response
	err   error
}

// maxInFlight bounds the batcher's entries in flight. One or two gave the
// same rates (BENCHMARKS.md); two lets the leader append the next entry
// while the last one commits.
const maxInFlight = 2

// storeBegin and storeEnd bracket each append of the node's Raft log.
func (b *batcher) storeBegin() {
	b.mu.Lock()
	b.storing = true
	b.mu.Unlock()
}

func (b *batcher) storeEnd() {
	b.mu.Lock()
	b.storing = false
	b.wakeLocked()
	b.mu.Unlock()
}

func (b *batcher) wakeLocked() {
	if b.stored != nil {
		close(b.stored)
		b.stored = nil
	}
}

// applyExec replicates cmd, an autocommit write, in an entry of its own or
// in a batch with the writes that wait with it, and returns its response as
// apply does.
func (n *Node) applyExec(cmd *replication.Command) (*replication.Response, error) {
	c, err := newBatchCall(cmd)
	if err != nil {
		return nil, err
	}
	return n.runCall(c, n.batch.enqueue(c))
}

// newBatchCall encodes cmd, an autocommit write, for the batcher.
func newBatchCall(cmd *replication.Command) (*batchCall, error) {
	data, err := cmd.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if len(data) > replication.MaxCommandBytes {
		return nil, &replication.TooLargeError{Size: len(data)}
	}
	c := &batchCall{data: data, wake: make(chan struct{}, 1)}
	key, ok := replication.CanBatch(cmd)
	c.key, c.alone = key, !ok
	return c, nil
}

// enqueue queues calls together, in order, and reports whether the first
// of them takes the turn at once (no write holds it). Each call must then
// go through runCall, the first with that report, the others with false.
func (b *batcher) enqueue(calls ...*batchCall) (first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, calls...)
	if b.busy {
		return false
	}
	b.busy = true
	return true
}

// runCall waits for c's answer; when c has the turn (now, if first, or
// when a neighbour passes it), it hands the queue to raft and answers the
// writes that share its entry.
func (n *Node) runCall(c *batchCall, first bool) (*replication.Response, error) {
	b := &n.batch
	if !first {
		<-c.wake
		if !c.turn {
			return c.resp, c.err // a neighbour's entry carried it
		}
	}
	b.mu.Lock()
	// The writes that arrive meanwhile go in this entry.
	if b.storing || b.inFlight >= maxInFlight {
		n.waitTurn(b)
	}
	calls := b.take()
	b.inFlight++
	b.mu.Unlock()
	f := n.submit(calls)
	b.mu.Lock()
	if len(b.queue) > 0 {
		next := b.queue[0]
		next.turn = true
		next.wake <- struct{}{}
	} else {
		b.busy = false
	}
	b.mu.Unlock()
	n.settle(f, calls)
	return c.resp, c.err
}

// waitTurn waits, with b.mu held (and let go meanwhile), until the log is
// not appending and fewer than maxInFlight entries are in flight, or the
// node's timeout passes (raft is stuck: the write then fails in raft.Apply
// as it would alone), or the node closes.
func (n *Node) waitTurn(b *batcher) {
	t := time.NewTimer(n.cfg.Timeout)
	defer t.Stop()
	for b.storing || b.inFlight >= maxInFlight {
		if b.stored == nil {
			b.stored = make(chan struct{})
		}
		ch := b.stored
		b.mu.Unlock()
		done := false
		select {
		case <-ch:
		case <-t.C:
			done = true
		case <-n.stopCh:
			done = true
		}
		b.mu.Lock()
		if done {
			return
		}
	}
}

// take removes from the queue the calls of the next entry: the first, and
// after it, in order, those it may share a batch with, within
// replication.MaxBatch and replication.MaxCommandBytes. Called with b.mu held.
func (b *batcher) take() []*batchCall {
	first := b.queue[0]
	k, size := 1, len(first.data)
	if !first.alone {
		for k < len(b.queue) && k < replication.MaxBatch {
			c := b.queue[k]
			if c.alone || c.key != first.key || replication.BatchSize(k+1, size+len(c.data)) > replication.MaxCommandBytes {
				break
			}
			size += len(c.data)
			k++
		}
	}
	calls := make([]*batchCall, k)
	copy(calls, b.queue)
	rest := copy(b.queue, b.queue[k:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return calls
}

// submit hands the entry of calls to raft: the command of a lone call as
// it is, else a KindBatch of them all. It returns once raft has taken it.
func (n *Node) submit(calls []*batchCall) raft.ApplyFuture {
	data := calls[0].data
	if len(calls) > 1 {
		cmds := make([][]byte, len(calls))
		for i, c := range calls {
			cmds[i] = c.data
		}
		data = replication.MarshalBatch(cmds)
		n.batch.batches.Add(1)
		n.batch.batched.Add(uint64(len(calls)))
	}
	return n.raft.Apply(data, n.cfg.Timeout)
}

// settle waits for the entry of calls and answers each of them with what
// it would have got alone; the caller's own call is among them.
func (n *Node) settle(f raft.ApplyFuture, calls []*batchCall) {
	defer func() { // the entry is no longer in flight
		n.batch.mu.Lock()
		n.batch.inFlight--
		n.batch.wakeLocked()
		n.batch.mu.Unlock()
	}()
	if len(calls) == 1 {
		calls[0].resp, calls[0].err = n.futureResponse(f)
	} else if err := n.futureWait(f); err != nil {
		for _, c := range calls {
			c.resp, c.err = nil, err
		}
	} else {
		r, ok := f.Response().(*replication.Response)
		switch {
		case !ok:
			err := fmt.Errorf("hiqlite: unexpected state machine response %T", f.Response())
			for _, c := range calls {
				c.resp, c.err = nil, err
			}
		case r.Batch == nil:
			// The entry failed as a whole (every command in it
			// fails alike), or was applied before.
			for _, c := range calls {
				c.resp, c.err = entryResponse(r)
			}
		case len(r.Batch) != len(calls):
			err := fmt.Errorf("hiqlite: the state machine answered %d commands of a batch of %d", len(r.Batch), len(calls))
			for _, c := range calls {
				c.resp, c.err = nil, err
			}
		default:
			for i, c := range calls {
				c.resp, c.err = entryResponse(r.Batch[i])
			}
		}
	}
	// The caller is calls[0] (the first in the queue when it took the
	// turn); the others wait.
	for _, c := range calls[1:] {
		c.wake <- struct{}{}
	}
}

// futureResponse waits for f and returns its response as the node's.
func (n *Node) futureResponse(f raft.ApplyFuture) (*replication.Response, error) {
	if err := n.futureWait(f); err != nil {
		return nil, err
	}
	resp, ok := f.Response().(*replication.Response)
	if !ok {
		return nil, fmt.Errorf("hiqlite: unexpected state machine response %T", f.Response())
	}
	return entryResponse(resp)
}

// futureWait waits for f's entry to be applied here, as f.Error does,
// giving up when the node closes: raft can leave an Apply future
// unanswered at shutdown (hashicorp/raft#498), and the goroutine waiting
// on it (a forwarded COMMIT's handler) then held Node.Close forever (seen
// in CI, a leader killed under write load). The entry may still commit on
// the other nodes, so that outcome is leadership lost, not a failure.
func (n *Node) futureWait(f raft.ApplyFuture) error {
	err := n.futureErr(context.Background(), f)
	if errors.Is(err, nodeerr.ErrClosed) {
		return fmt.Errorf("%w: %w", nodeerr.ErrLeadershipLost, nodeerr.ErrClosed)
	}
	if err != nil {
		return raftError(err)
	}
	return nil
}

// entryResponse turns the state machine's response to one command into
// the node's answer.
func entryResponse(resp *replication.Response) (*replication.Response, error) {
	if errors.Is(resp.Err, replication.ErrInterrupted) {
		// Close cut the apply short here; the entry is committed and the
		// other nodes apply it.
		return nil, fmt.Errorf("%w: %w", nodeerr.ErrLeadershipLost, nodeerr.ErrClosed)
	}
	if errors.Is(resp.Err, nodeerr.ErrStopped) {
		// This node stopped, but raft hands the state machine committed
		// entries only: the other nodes apply this one. Its outcome is
		// theirs to tell, so it must not read as settled (ErrStopped is,
		// for commitSettled), nor as failed.
		return nil, fmt.Errorf("%w: the entry is committed, but this node stopped before applying it: %v", nodeerr.ErrLeadershipLost, resp.Err)
	}
	if resp.Err != nil {
		return nil, resp.Err
	}
	return resp, nil
}
