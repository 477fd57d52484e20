package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// fwdBatcher carries the autocommit writes a follower forwards at the same
// time in one request (wire.ExecBatchRequest) and one response, so that a
// write no longer costs the four system calls of its own round trip, and
// the leader's batcher gets the writes together.
//
// A write goes alone, as an ExecRequest, while fewer than maxFwdInFlight
// requests of the batcher are in flight; otherwise it queues. When a
// request is answered, the turn passes to the first write still queued,
// which sends the queue (within wire.MaxExecBatch and maxFwdBatchBytes)
// and answers its neighbours. A batched write is sent once: a write the
// batch failed for a reason worth another try (no leader, a lost reply)
// tries again alone, through forward, exactly as it would have after its
// own first try.
type fwdBatcher struct {
	mu       sync.Mutex
	queue    []*fwdCall
	inFlight int
	// batches and batched count the batch requests sent and their writes.
	batches, batched atomic.Uint64
}

// fwdCall is one forwarded write waiting in the fwdBatcher. Its state is
// guarded by fwdBatcher.mu until it is taken; then its sender owns resp
// and err until wake.
type fwdCall struct {
	req   *wire.ExecRequest
	ctx   context.Context
	size  int
	wake  chan struct{} // capacity 1: answered, or turn set
	turn  bool          // its turn to send the queue
	taken bool          // in a request: the sender answers it
	resp  *wire.ExecResponse
	err   error
}

const (
	// maxFwdInFlight bounds a follower's forwarding requests in flight,
	// as maxInFlight bounds the leader's entries: one request being
	// answered while the next one is taken.
	maxFwdInFlight = 2
	// maxFwdBatchBytes bounds the statements of a batch request; a write
	// bigger than this goes alone.
	maxFwdBatchBytes = 1 << 20
)

// forwardExec forwards req, an autocommit write, to the leader, alone or
// with the writes that wait with it, and returns the leader's answer as
// forward does.
func (n *Node) forwardExec(ctx context.Context, req *wire.ExecRequest, dedup bool) (wire.Message, error) {
	size := replication.StatementsSize(req.Stmts)
	if err := n.sm.Fault(); err != nil || size > maxFwdBatchBytes {
		return n.forward(ctx, req, dedup) // refused there, or too big to share a request
	}
	b := &n.fwd
	b.mu.Lock()
	if b.inFlight < maxFwdInFlight && len(b.queue) == 0 {
		b.inFlight++
		b.mu.Unlock()
		resp, err := n.forward(ctx, req, dedup)
		b.done()
		return resp, err
	}
	c := &fwdCall{req: req, ctx: ctx, size: size, wake: make(chan struct{}, 1)}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case <-c.wake:
	case <-ctx.Done():
		b.mu.Lock()
		switch {
		case c.turn:
			// Its turn came as ctx ended: pass it on.
			b.mu.Unlock()
			<-c.wake
			b.mu.Lock()
			b.remove(c)
			b.mu.Unlock()
			b.done() // gives back the request passTurn counted for it
			return nil, fmt.Errorf("hiqlite: forward to leader: %w", ctx.Err())
		case !c.taken:
			b.remove(c) // never sent
			b.mu.Unlock()
			return nil, fmt.Errorf("hiqlite: forward to leader: %w", ctx.Err())
		}
		b.mu.Unlock()
		// In a request: the leader may apply it.
		return nil, fmt.Errorf("%w: %w", nodeerr.ErrOutcomeUnknown, ctx.Err())
	}
	if c.turn {
		b.mu.Lock()
		calls := b.take()
		b.mu.Unlock()
		n.sendBatch(calls)
		b.done()
	}
	if c.err == nil {
		return c.resp, nil
	}
	// What forwardVia would do after its first try.
	again, maybe := retryable(c.err), maybeApplied(c.err)
	if !again && !maybe {
		return nil, c.err
	}
	if maybe && !dedup {
		return nil, unsettled(c.err)
	}
	resp, err := n.forward(ctx, req, dedup)
	if maybe && err != nil {
		err = unsettled(err)
	}
	return resp, err
}

// done ends a request in flight and gives the turn to the first write
// queued.
func (b *fwdBatcher) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight--
	b.passTurn()
}

// passTurn wakes the first write queued to send the queue, if a request
// may start. Called with b.mu held.
func (b *fwdBatcher) passTurn() {
	if len(b.queue) == 0 || b.inFlight >= maxFwdInFlight || b.queue[0].turn {
		return
	}
	b.inFlight++
	c := b.queue[0]
	c.turn = true
	c.wake <- struct{}{}
}

// remove takes c out of the queue. Called with b.mu held.
func (b *fwdBatcher) remove(c *fwdCall) {
	for i, q := range b.queue {
		if q == c {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			b.queue = b.queue[:len(b.queue):len(b.queue)]
			return
		}
	}
}

// take removes the calls of the next request from the queue: the first
// (whose turn it is), and the others in order within wire.MaxExecBatch and
// maxFwdBatchBytes; it passes the turn on if writes remain and a request
// may start. Called with b.mu held.
func (b *fwdBatcher) take() []*fwdCall {
	k, size := 1, b.queue[0].size
	for k < len(b.queue) && k < wire.MaxExecBatch && size+b.queue[k].size <= maxFwdBatchBytes {
		size += b.queue[k].size
		k++
	}
	calls := make([]*fwdCall, k)
	copy(calls, b.queue)
	rest := copy(b.queue, b.queue[k:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	for _, c := range calls {
		c.taken = true
	}
	b.passTurn()
	return calls
}

// sendBatch sends calls to the leader in one request and sets each call's
// answer; the first call is the caller's own, the others are woken. It
// tries once: what to do after a failure is up to each write.
func (n *Node) sendBatch(calls []*fwdCall) {
	// The request outlives a caller that gives up, up to the latest
	// deadline among them (each has one: forwardContext).
	dl := time.Now().Add(n.cfg.Timeout)
	for i, c := range calls {
		if d, ok := c.ctx.Deadline(); ok && (i == 0 || d.After(dl)) {
			dl = d
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	var req wire.Message
	if len(calls) == 1 {
		req = calls[0].req
	} else {
		m := &wire.ExecBatchRequest{Reqs: make([]wire.ExecRequest, len(calls))}
		for i, c := range calls {
			m.Reqs[i] = *c.req
		}
		req = m
		n.fwd.batches.Add(1)
		n.fwd.batched.Add(uint64(len(calls)))
	}
	resp, err := n.callLeader(ctx, n.client, req)
	switch m := resp.(type) {
	case nil:
	case *wire.ExecResponse:
		calls[0].resp = m
	case *wire.ExecBatchResponse:
		if len(m.Outcomes) != len(calls) {
			err = fmt.Errorf("%w: the leader answered %d writes of %d", nodeerr.ErrOutcomeUnknown, len(m.Outcomes), len(calls))
			break
		}
		for i, c := range calls {
			o := &m.Outcomes[i]
			if c.err = o.Err; o.Err == nil {
				c.resp = &wire.ExecResponse{Index: o.Index, Results: o.Results}
			}
		}
	default:
		err = fmt.Errorf("%w: the leader answered %s to %s", nodeerr.ErrOutcomeUnknown, resp.Type(), req.Type())
	}
	for i, c := range calls {
		if err != nil {
			c.resp, c.err = nil, err
		}
		if i > 0 {
			c.wake <- struct{}{}
		}
	}
}
