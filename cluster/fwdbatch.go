package cluster

import (
	"context"
	"fmt"
	"slices"
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
// which sends the queue (within wire.MaxExecBatch and maxFwdBatchBytes) on
// a goroutine that answers every write of it. A request is one try: a
// write it failed for a reason worth another (no leader, a lost reply)
// tries again alone, through forward, exactly as after its own first try,
// so the queue never waits behind a retry loop.
type fwdBatcher struct {
	mu       sync.Mutex
	queue    []*fwdCall
	inFlight int
	// batches and batched count the batch requests sent and their writes.
	batches, batched atomic.Uint64
}

// fwdCall is one forwarded write of the fwdBatcher. turn and taken are
// guarded by fwdBatcher.mu; once taken, whoever sends it owns resp and err
// until wake.
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
	if err := n.sm.Fault(); err != nil {
		return nil, err // a stopped node sends nothing (forwardVia)
	}
	if size > maxFwdBatchBytes {
		return n.forward(ctx, req, dedup) // too big to share a request
	}
	var first *wire.ExecResponse // the answer to the first try
	var err error
	b := &n.fwd
	b.mu.Lock()
	if b.inFlight < maxFwdInFlight && len(b.queue) == 0 {
		b.inFlight++
		b.mu.Unlock()
		first, err = n.callExec(ctx, req)
		b.done()
	} else {
		c := &fwdCall{req: req, ctx: ctx, size: size, wake: make(chan struct{}, 1)}
		b.queue = append(b.queue, c)
		b.mu.Unlock()
		if err := n.waitForwarded(c); err != nil {
			return nil, err
		}
		first, err = c.resp, c.err
	}
	if err == nil {
		return first, nil
	}
	// What forwardVia does after a first try that failed.
	again, maybe := retryable(err), maybeApplied(err)
	if !again && !maybe {
		return nil, err
	}
	if maybe && !dedup {
		return nil, unsettled(err)
	}
	resp, err := n.forward(ctx, req, dedup)
	if maybe && err != nil {
		err = unsettled(err)
	}
	return resp, err
}

// waitForwarded waits for the answer of c, a queued write, sending the
// queue when its turn comes. It fails if c's caller gives up first: c
// leaves the queue unsent, or, sent, its outcome is unknown.
func (n *Node) waitForwarded(c *fwdCall) error {
	b := &n.fwd
	for {
		select {
		case <-c.wake:
			if !c.turn {
				return nil // answered
			}
			b.mu.Lock()
			calls := b.take()
			b.mu.Unlock()
			if len(calls) == 1 {
				c.resp, c.err = n.callExec(c.ctx, c.req)
				b.done()
				return nil
			}
			// On a goroutine of its own, so that a caller who gives up
			// does not hold its neighbours' request.
			n.goFunc(func() {
				n.sendBatch(calls)
				b.done()
			})
		case <-c.ctx.Done():
			b.mu.Lock()
			switch {
			case c.turn:
				// Its turn came as ctx ended: pass it on.
				<-c.wake
				b.remove(c)
				b.mu.Unlock()
				b.done() // gives back the request passTurn counted for it
				return fmt.Errorf("hiqlite: forward to leader: %w", c.ctx.Err())
			case !c.taken:
				b.remove(c) // never sent
				b.mu.Unlock()
				return fmt.Errorf("hiqlite: forward to leader: %w", c.ctx.Err())
			}
			b.mu.Unlock()
			// In a request: the leader may apply it.
			return fmt.Errorf("%w: %w", nodeerr.ErrOutcomeUnknown, c.ctx.Err())
		}
	}
}

// callExec sends req, one write, to the leader once.
func (n *Node) callExec(ctx context.Context, req *wire.ExecRequest) (*wire.ExecResponse, error) {
	resp, err := n.callLeader(ctx, n.client, req)
	if err != nil {
		return nil, err
	}
	m, ok := resp.(*wire.ExecResponse)
	if !ok {
		return nil, unexpectedAnswer(req, resp)
	}
	return m, nil
}

// unexpectedAnswer: the leader answered req with resp, which does not
// answer it; what it did with req is unknown.
func unexpectedAnswer(req, resp wire.Message) error {
	return fmt.Errorf("%w: the leader answered %s to %s", nodeerr.ErrOutcomeUnknown, resp.Type(), req.Type())
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
	if i := slices.Index(b.queue, c); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
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
		c.taken, c.turn = true, false
	}
	b.passTurn()
	return calls
}

// sendBatch sends calls, two or more writes, to the leader in one request,
// once, and answers each: what to do after a failure is up to each write.
func (n *Node) sendBatch(calls []*fwdCall) {
	// The request outlives a caller that gives up, up to the latest
	// deadline among them (each has one: forwardContext).
	var dl time.Time
	for _, c := range calls {
		if d, ok := c.ctx.Deadline(); ok && d.After(dl) {
			dl = d
		}
	}
	if dl.IsZero() {
		dl = time.Now().Add(n.cfg.Timeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	req := &wire.ExecBatchRequest{Reqs: make([]wire.ExecRequest, len(calls))}
	for i, c := range calls {
		req.Reqs[i] = *c.req
	}
	n.fwd.batches.Add(1)
	n.fwd.batched.Add(uint64(len(calls)))
	resp, err := n.callLeader(ctx, n.client, req)
	if err == nil {
		err = answerBatch(calls, req, resp)
	}
	for _, c := range calls {
		if err != nil {
			c.resp, c.err = nil, err
		}
		c.wake <- struct{}{}
	}
}

// answerBatch sets each call's answer from resp, the leader's answer to
// req; an error means resp answers no call.
func answerBatch(calls []*fwdCall, req, resp wire.Message) error {
	m, ok := resp.(*wire.ExecBatchResponse)
	if !ok {
		return unexpectedAnswer(req, resp)
	}
	if len(m.Outcomes) != len(calls) {
		return fmt.Errorf("%w: the leader answered %d writes of %d", nodeerr.ErrOutcomeUnknown, len(m.Outcomes), len(calls))
	}
	for i, c := range calls {
		o := &m.Outcomes[i]
		if c.err = o.Err; o.Err == nil {
			c.resp = &wire.ExecResponse{Index: o.Index, Results: o.Results}
		}
	}
	return nil
}
