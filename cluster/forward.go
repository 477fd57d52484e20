package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// Forwarding: a follower sends its writes to the leader over an
// authenticated RPC connection. One connection is one session on the
// leader: autocommit writes use pooled connections, a write transaction
// holds one connection from BEGIN to COMMIT or ROLLBACK, and closing the
// connection rolls back whatever transaction it held.

// rpcServer serves forwarded requests on the leader (and answers "not the
// leader" elsewhere).
//
// mu guards conns and closed.
type rpcServer struct {
	n      *Node
	ctx    context.Context // cancelled by close: ends in-flight waits
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newRPCServer(n *Node) *rpcServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &rpcServer{n: n, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// serve is the accept loop; each connection gets its own goroutine.
func (s *rpcServer) serve() {
	for {
		c, err := s.n.mux.AcceptRPC()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.n.goFunc(func() { s.handle(c) })
	}
}

// close ends every session (rolling back their transactions) and stops
// in-flight requests from waiting.
func (s *rpcServer) close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// handle serves one session: requests in order, one response each.
func (s *rpcServer) handle(c net.Conn) {
	var tx Tx
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		req, err := wire.ReadMessage(r)
		if err != nil {
			return
		}
		var resp wire.Message
		switch m := req.(type) {
		case *wire.ExecRequest:
			var out *replication.Response
			if out, err = s.n.execLocal(s.ctx, m.Busy, m.Origin, m.Flags, m.Stmts); err == nil {
				resp = &wire.ExecResponse{Index: out.Index, Results: out.Results}
			}
		case *wire.ExecBatchRequest:
			resp = s.execBatch(m)
		case *wire.TxBeginRequest:
			if tx != nil {
				err = errors.New("hiqlite: the session already has a transaction")
				break
			}
			var wt *writeTx
			if wt, err = s.n.beginLocal(s.ctx, m.Busy, m.Idle, m.Origin, m.Flags, SnapshotCheck{Index: m.SnapIndex, Valid: m.SnapValid}); err == nil {
				tx = wt // a nil *writeTx must not become a non-nil Tx
			}
			resp = &wire.OK{}
		case *wire.TxExecRequest:
			if tx == nil {
				err = nodeerr.ErrTxAborted
				break
			}
			var res replication.Result
			ctx, done := watchSession(s.ctx, c, r)
			res, err = tx.Exec(ctx, m.Stmt, m.ReadOnly)
			if werr := done(); werr != nil {
				return // the client left, or broke the protocol
			}
			if err == nil {
				resp = &wire.ResultResponse{Result: res}
			}
		case *wire.TxCommitRequest:
			if tx == nil {
				err = nodeerr.ErrTxAborted
				break
			}
			var idx uint64
			if wt, ok := tx.(*writeTx); ok {
				idx, err = wt.commit()
			} else {
				err = errors.New("hiqlite: forwarded transaction is not local")
			}
			tx = nil
			resp = &wire.CommitResponse{Index: idx}
		case *wire.TxRollbackRequest:
			if tx != nil {
				err = tx.Rollback()
				tx = nil
			}
			resp = &wire.OK{}
		case *wire.OutcomeRequest:
			var o outcome
			if o, err = s.n.fenceLocal(s.ctx, m.Origin); err == nil {
				resp = &wire.OutcomeResponse{Applied: o.applied, Index: o.index}
			}
		case *wire.ReadIndexRequest:
			var idx uint64
			idx, err = s.n.readIndexLocal(s.ctx)
			resp = &wire.ReadIndexResponse{Index: idx}
		case *wire.CacheRequest:
			var idx uint64
			var out []byte
			idx, out, err = s.n.cache.serve(m.Cmd)
			resp = &wire.CacheResponse{Index: idx, Result: out}
		default:
			err = fmt.Errorf("hiqlite: unexpected request %T", req)
		}
		if err != nil {
			resp = &wire.ErrorResponse{Err: s.replyError(req, err)}
		}
		if wire.WriteMessage(w, resp) != nil || w.Flush() != nil {
			return
		}
	}
}

// replyError is what the caller of req learns of err.
func (s *rpcServer) replyError(req wire.Message, err error) error {
	if s.ctx.Err() != nil && errors.Is(err, s.ctx.Err()) {
		err = nodeerr.ErrClosed // this node is closing, not the caller's context
	}
	if errors.Is(err, nodeerr.ErrStopped) && startsWork(req) {
		// This node stopped before taking the request (apply's faults
		// come as errLeadershipLost): it leads no more than a dead one,
		// and shuts raft down (stopOnFault). The caller tries the leader
		// the others elect.
		err = fmt.Errorf("%w: this node stopped: %v", nodeerr.ErrNotLeader, err)
	}
	return s.n.notLeaderHint(err)
}

// execBatch runs the writes of m at the same time, each as an ExecRequest
// of its own would run, and answers once the last is done. When the write
// slot is free they join the batcher's queue together, so that they share
// an entry as they shared the request; otherwise each waits for the slot
// on its own, up to its own _busy.
func (s *rpcServer) execBatch(m *wire.ExecBatchRequest) *wire.ExecBatchResponse {
	n := s.n
	out := &wire.ExecBatchResponse{Outcomes: make([]wire.ExecOutcome, len(m.Reqs))}
	answer := func(i int, resp *replication.Response, err error) {
		o := &out.Outcomes[i]
		if err != nil {
			o.Err = s.replyError(&m.Reqs[i], err)
			return
		}
		o.Index, o.Results = resp.Index, resp.Results
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := n.leaderReady(s.ctx); err != nil || !n.gate.tryShared(len(m.Reqs)) {
		for i := range m.Reqs {
			wg.Go(func() {
				r := &m.Reqs[i]
				resp, err := n.execLocal(s.ctx, r.Busy, r.Origin, r.Flags, r.Stmts)
				answer(i, resp, err)
			})
		}
		return out
	}
	calls := make([]*batchCall, 0, len(m.Reqs))
	at := make([]int, 0, len(m.Reqs)) // calls[j] is m.Reqs[at[j]]
	for i := range m.Reqs {
		r := &m.Reqs[i]
		c, err := newBatchCall(execCommand(r.Origin, r.Flags, r.Stmts))
		if err != nil {
			n.gate.release(false)
			answer(i, nil, err)
			continue
		}
		calls = append(calls, c)
		at = append(at, i)
	}
	if len(calls) == 0 {
		return out
	}
	first := n.batch.enqueue(calls...)
	for j, c := range calls {
		wg.Go(func() {
			defer n.gate.release(false)
			resp, err := n.runCall(c, first && j == 0)
			answer(at[j], resp, err)
		})
	}
	return out
}

// startsWork: req asks the leader for something new (not a step of a
// transaction it holds), which another leader can serve as well.
func startsWork(req wire.Message) bool {
	switch req.(type) {
	case *wire.ExecRequest, *wire.ExecBatchRequest, *wire.TxBeginRequest, *wire.OutcomeRequest, *wire.ReadIndexRequest:
		return true
	}
	return false
}

// watchSession returns a context that ends, besides with parent, when the
// client closes the session while a statement runs for it (its deadline
// passed, or it died), so that the statement is interrupted rather than
// holding the writer for nothing. A client sends nothing while it waits
// for a response, so a watcher reading the connection sees only its close.
// done stops the watcher and reports a closed session or a protocol error;
// r is usable again after it.
func watchSession(parent context.Context, c net.Conn, r *bufio.Reader) (ctx context.Context, done func() error) {
	ctx, cancel := context.WithCancel(parent)
	if r.Buffered() > 0 {
		// Bytes of a request sent before this one's response: only a
		// broken client does that. Leave them to the next ReadMessage.
		return ctx, func() error { cancel(); return nil }
	}
	result := make(chan error, 1)
	go func() {
		_, err := r.ReadByte()
		if err == nil {
			r.UnreadByte()
			err = errors.New("hiqlite: request sent before the previous response")
		} else if isTimeout(err) {
			err = nil // stopped by done
		}
		if err != nil {
			cancel()
		}
		result <- err
	}()
	return ctx, func() error {
		c.SetReadDeadline(time.Unix(1, 0))
		err := <-result
		c.SetReadDeadline(time.Time{})
		cancel()
		return err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// notLeaderHint adds the leader's identity to ErrNotLeader, so the
// follower can go there at once.
func (n *Node) notLeaderHint(err error) error {
	if !errors.Is(err, nodeerr.ErrNotLeader) {
		return err
	}
	id, addr := n.Leader()
	return &nodeerr.NotLeaderError{LeaderID: id, LeaderAddr: addr}
}

// rpcConn is one client session to a leader.
type rpcConn struct {
	cl   *rpcClient // the pool it belongs to, which knows its group's leader
	addr string
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

// call sends req and reads the response. An error from the request's
// writing means the leader did not get it (safe to retry elsewhere);
// errSent wraps any failure after that.
func (rc *rpcConn) call(ctx context.Context, req wire.Message) (wire.Message, error) {
	if dl, ok := ctx.Deadline(); ok {
		rc.c.SetDeadline(dl)
	} else {
		rc.c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { rc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// A leader that stops answering (its process paused, its host cut
	// off) would hold the request until ctx ends; once this node learns
	// that another node leads, the wait ends (errLeaderMoved).
	w, unwatch := rc.cl.watch(rc.addr, func() { rc.c.SetDeadline(time.Unix(1, 0)) })
	defer unwatch()
	// The connection's deadline may fire a moment before ctx reports it.
	ctxErr := func(err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if w.fired.Load() {
			return errLeaderMoved
		}
		if dl, ok := ctx.Deadline(); ok && isTimeout(err) && !time.Now().Before(dl) {
			return context.DeadlineExceeded
		}
		return err
	}
	if err := wire.WriteMessage(rc.w, req); err != nil {
		return nil, &notSentError{ctxErr(err)}
	}
	if err := rc.w.Flush(); err != nil {
		return nil, &notSentError{ctxErr(err)}
	}
	resp, err := wire.ReadMessage(rc.r)
	if err != nil {
		if isRead(req) {
			// Nothing to apply: a read's lost reply says nothing of writes.
			return nil, fmt.Errorf("%w: %w", errReplyLost, ctxErr(err))
		}
		if err := ctxErr(err); errors.Is(err, errLeaderMoved) {
			// Settled by the new leader: it has the request in its
			// log or it never commits (forwardVia sends an idempotent
			// request there; Resolve settles a COMMIT).
			return nil, fmt.Errorf("%w: %w", nodeerr.ErrLeadershipLost, err)
		}
		return nil, fmt.Errorf("%w: %w", nodeerr.ErrOutcomeUnknown, ctxErr(err))
	}
	if e, ok := resp.(*wire.ErrorResponse); ok {
		return nil, e.Err
	}
	return resp, nil
}

// errLeaderMoved: this node learned that another node leads while it
// waited for the old leader to take a request or to answer it.
var errLeaderMoved = errors.New("hiqlite: another node was elected leader before the request was answered")

// errReplyLost: the reply to a read was lost; the read may be sent again.
var errReplyLost = errors.New("hiqlite: the connection to the leader was lost before its reply")

// isRead: req changes nothing on the leader, so it has no outcome to
// settle and may be sent any number of times.
func isRead(req wire.Message) bool {
	_, ok := req.(*wire.ReadIndexRequest)
	return ok
}

// notSentError: the request never left this node, so retrying is safe.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return "hiqlite: send to leader: " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// maxIdleSessions bounds the pool of idle sessions to the leader. It is
// sized for many concurrent writers: a session that does not fit is closed,
// and the next write dials and authenticates a new one.
const maxIdleSessions = 128

// rpcClient pools idle sessions to the leader.
//
// mu guards idle and watches.
type rpcClient struct {
	n *Node
	// leader returns the address to send to; nil: the main group's leader.
	leader  func() string
	mu      sync.Mutex
	idle    []*rpcConn
	watches map[*leaderWatch]struct{}
}

// get returns an idle session to the current leader, or dials one.
func (cl *rpcClient) get(ctx context.Context) (*rpcConn, error) {
	addr := cl.leaderAddr()
	if addr == "" {
		return nil, cl.n.noLeader()
	}
	cl.mu.Lock()
	for len(cl.idle) > 0 {
		rc := cl.idle[len(cl.idle)-1]
		cl.idle = cl.idle[:len(cl.idle)-1]
		if rc.addr == addr {
			cl.mu.Unlock()
			return rc, nil
		}
		rc.c.Close()
	}
	cl.mu.Unlock()
	// A leader that stopped may still accept connections (the kernel
	// does) without ever answering the handshake.
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, unwatch := cl.watch(addr, func() { cancel(errLeaderMoved) })
	c, err := cl.n.mux.DialRPC(dctx, addr)
	unwatch()
	if err != nil {
		if w.fired.Load() && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errLeaderMoved, err)
		}
		return nil, &notSentError{err}
	}
	return &rpcConn{cl: cl, addr: addr, c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}, nil
}

func (cl *rpcClient) put(rc *rpcConn) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.idle) >= maxIdleSessions {
		rc.c.Close()
		return
	}
	cl.idle = append(cl.idle, rc)
}

func (cl *rpcClient) close() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, rc := range cl.idle {
		rc.c.Close()
	}
	cl.idle = nil
}

// forward sends one request to the leader and returns its response. It
// retries, until ctx ends, while the request provably did not reach a
// leader (no leader known, dial failure, "not the leader") and, when
// idempotent, also after it may have reached one (lost reply, leadership
// lost): an idempotent request applies at most once however often it is
// sent (reads, outcome checks, and writes the state machine deduplicates by
// origin).
func (n *Node) forward(ctx context.Context, req wire.Message, idempotent bool) (wire.Message, error) {
	return n.forwardVia(ctx, n.client, req, idempotent)
}

// forwardVia is forward through cl, to the leader cl follows.
func (n *Node) forwardVia(ctx context.Context, cl *rpcClient, req wire.Message, idempotent bool) (wire.Message, error) {
	if err := n.sm.Fault(); err != nil {
		// A stopped node sends nothing: it could not apply the answer
		// (persist.go).
		return nil, err
	}
	backoff := 10 * time.Millisecond
	var maybe bool // an earlier attempt may have been applied
	for {
		resp, err := n.callLeader(ctx, cl, req)
		again := retryable(err)
		switch {
		case isRead(req):
			// A read has nothing that may have been applied.
			again = again || errors.Is(err, errReplyLost) || errors.Is(err, nodeerr.ErrLeadershipLost)
		case maybeApplied(err):
			maybe = true
			again = idempotent
		}
		if !again {
			if maybe && err != nil {
				err = unsettled(err)
			}
			return resp, err
		}
		var stop error
		select {
		case <-ctx.Done():
			stop = ctx.Err()
		case <-n.stopCh:
			stop = nodeerr.ErrClosed
		case <-time.After(backoff):
		}
		if stop != nil {
			err = fmt.Errorf("hiqlite: forward to leader: %w (last error: %w)", stop, noLeader(err))
			if maybe {
				err = unsettled(err)
			}
			return nil, err
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// callLeader sends req once to the leader cl follows, on a pooled session,
// and returns its response as rpcConn.call does.
func (n *Node) callLeader(ctx context.Context, cl *rpcClient, req wire.Message) (wire.Message, error) {
	rc, err := cl.get(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := rc.call(ctx, req)
	if err == nil || !isTransportError(err) {
		cl.put(rc)
	} else {
		rc.c.Close()
	}
	return resp, err
}

// noLeader marks err, the last failure of a request that found no leader
// to take it before its deadline, with ErrNoLeader.
func noLeader(err error) error {
	if !retryable(err) || errors.Is(err, nodeerr.ErrNoLeader) {
		return err
	}
	return fmt.Errorf("%w: %w", nodeerr.ErrNoLeader, err)
}

// unsettled marks err, the last failure of a request an earlier copy of
// which may have been applied, with ErrOutcomeUnknown: only a response
// (or ErrNotApplied from the state machine) settles that copy.
func unsettled(err error) error {
	if errors.Is(err, nodeerr.ErrOutcomeUnknown) || errors.Is(err, nodeerr.ErrNotApplied) {
		return err
	}
	return fmt.Errorf("%w: %w", nodeerr.ErrOutcomeUnknown, err)
}

// maybeApplied: err leaves the request's outcome open (it reached a leader,
// which may have applied it).
func maybeApplied(err error) bool {
	return errors.Is(err, nodeerr.ErrOutcomeUnknown) || errors.Is(err, nodeerr.ErrLeadershipLost)
}

// isTransportError: the session is unusable after err.
func isTransportError(err error) bool {
	var ns *notSentError
	return errors.As(err, &ns) || errors.Is(err, nodeerr.ErrOutcomeUnknown) || errors.Is(err, errReplyLost) || errors.Is(err, errLeaderMoved)
}

// retryable: err proves the request was not applied by any leader (unless
// maybeApplied(err) says otherwise: a closed leader may have had the request
// in its log).
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var ns *notSentError
	return errors.As(err, &ns) || errors.Is(err, nodeerr.ErrNotLeader) || errors.Is(err, nodeerr.ErrNoLeader) || errors.Is(err, nodeerr.ErrClosed)
}
