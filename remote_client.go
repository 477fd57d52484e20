package hiqlite

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// RemoteConnector opens connections of a remote client (a hiqlite:// DSN,
// see ClientConfig): each one is a session on a member of the cluster,
// which runs its statements as one of its own database/sql connections.
// database/sql's pool is the client's pool. Use it with sql.OpenDB, or let
// sql.Open("hiqlite", "hiqlite://...") make it.
type RemoteConnector struct {
	cfg    ClientConfig
	dialer *nodeport.Dialer
	name   string        // the node name of this client's writes
	next   atomic.Uint32 // the host to try first: the last one that answered

	mu     sync.Mutex
	closed bool
}

var _ driver.Connector = (*RemoteConnector)(nil)

// NewClientConnector validates cfg and returns its connector. It dials
// nothing: the first connection does.
func NewClientConnector(cfg *ClientConfig) (*RemoteConnector, error) {
	if cfg == nil {
		return nil, errors.New("hiqlite: nil *ClientConfig")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	secret, err := cfg.secret()
	if err != nil {
		return nil, err
	}
	t, err := nodeport.NewTLS(nil, cfg.TLSCert, cfg.TLSKey, cfg.TLSCA, nil)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	rand.Read(id[:])
	c := &RemoteConnector{cfg: *cfg, dialer: nodeport.NewDialer(secret, t), name: "client-" + hex.EncodeToString(id[:])}
	c.cfg.Hosts = append([]string(nil), cfg.Hosts...)
	c.next.Store(uint32(mrand.IntN(len(cfg.Hosts))))
	return c, nil
}

// Connect implements driver.Connector: a session on the first host that
// accepts one, starting with the last that did.
func (c *RemoteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	var id [8]byte
	rand.Read(id[:])
	session := binary.LittleEndian.Uint64(id[:]) | 1 // never 0
	rc := &remoteConn{rc: c, session: session}
	if err := rc.connect(ctx); err != nil {
		return nil, err
	}
	return rc, nil
}

// Driver implements driver.Connector.
func (c *RemoteConnector) Driver() driver.Driver { return &Driver{} }

// Close stops new connections; database/sql closes the open ones.
func (c *RemoteConnector) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// remoteConn is one connection of a remote client: a session on a member.
// database/sql uses it from one goroutine at a time.
//
// Failover: a request whose connection breaks before it was sent fails
// with driver.ErrBadConn, which database/sql retries on a new connection
// (another host, when this one is gone). One that was sent outside a
// transaction is sent again, with the same sequence number, over a new
// session on the next host that answers: the cluster's exactly-once
// records make a write that was applied answer with its first results, and
// a read runs again. Inside a transaction the transaction is lost with its
// member's session: a member that had written is asked for its outcome
// (OpOutcome), so that an interrupted COMMIT is committed or not, never
// "maybe".
type remoteConn struct {
	rc      *RemoteConnector
	session uint64
	seq     uint64

	nc   net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	host int
	bad  bool // the session broke and could not be replaced

	inTx  bool   // the session has a transaction open
	txSeq uint64 // its write origin's sequence number, once it wrote
	rows  *remoteRows
}

var (
	_ driver.Conn               = (*remoteConn)(nil)
	_ driver.ExecerContext      = (*remoteConn)(nil)
	_ driver.QueryerContext     = (*remoteConn)(nil)
	_ driver.ConnPrepareContext = (*remoteConn)(nil)
	_ driver.ConnBeginTx        = (*remoteConn)(nil)
	_ driver.Pinger             = (*remoteConn)(nil)
	_ driver.SessionResetter    = (*remoteConn)(nil)
	_ driver.Validator          = (*remoteConn)(nil)
	_ driver.NamedValueChecker  = (*remoteConn)(nil)
)

// connect opens the session on the first host that accepts it, starting
// with the connector's next; ctx, or else the connector's timeout, bounds
// it.
func (c *remoteConn) connect(ctx context.Context) error {
	c.close()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.rc.cfg.Timeout)
		defer cancel()
	}
	hosts := c.rc.cfg.Hosts
	start := int(c.rc.next.Load())
	var errs []error
	for i := range hosts {
		h := (start + i) % len(hosts)
		// Each host gets a bounded try, so that one that drops packets
		// leaves time for the next.
		hctx, cancel := context.WithTimeout(ctx, hostTimeout)
		err := c.open(hctx, hosts[h])
		cancel()
		if err == nil {
			c.host = h
			c.rc.next.Store(uint32(h))
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("hiqlite: remote client: no member accepted a session: %w", errors.Join(errs...))
}

// hostTimeout bounds one try of one host: the TCP dial, the handshakes and
// the hello.
const hostTimeout = 5 * time.Second

// open dials addr and says hello.
func (c *remoteConn) open(ctx context.Context, addr string) error {
	nc, err := c.rc.dialer.Dial(ctx, addr)
	if err != nil {
		return err
	}
	r, w := bufio.NewReader(nc), bufio.NewWriter(nc)
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	err = wire.WriteMessage(w, &wire.ClientHello{Node: c.rc.name, Session: c.session})
	if err == nil {
		err = w.Flush()
	}
	var m wire.Message
	if err == nil {
		m, err = wire.ReadMessage(r)
	}
	nc.SetDeadline(time.Time{})
	if err == nil {
		switch m := m.(type) {
		case *wire.OK:
		case *wire.ErrorResponse:
			err = m.Err
		default:
			err = fmt.Errorf("unexpected %s", m.Type())
		}
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("hiqlite: session on %s: %w", addr, err)
	}
	c.nc, c.r, c.w, c.bad = nc, r, w, false
	return nil
}

func (c *remoteConn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// brokenError is a request's connection failing; sent says whether the
// request may have reached the member.
type brokenError struct {
	err  error
	sent bool
}

func (e *brokenError) Error() string { return "hiqlite: remote session broke: " + e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

// call sends req and waits for its answer. Cancelling ctx sends a
// ClientCancel and waits a little longer for the answer; a member that
// does not give it breaks the session.
func (c *remoteConn) call(ctx context.Context, req *wire.ClientRequest) (*wire.ClientResult, error) {
	if c.nc == nil {
		return nil, &brokenError{err: errors.New("no session"), sent: false}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		req.Timeout = max(time.Until(d), time.Nanosecond)
	}
	frame, err := wire.AppendMessage(nil, req)
	if err != nil {
		return nil, err // too large: nothing was written
	}
	if _, err := c.w.Write(frame); err != nil {
		c.close()
		return nil, &brokenError{err: err, sent: false}
	}
	if err := c.w.Flush(); err != nil {
		// A frame that did not go out whole is never run.
		c.close()
		return nil, &brokenError{err: err, sent: false}
	}
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		if wire.WriteMessage(c.w, &wire.ClientCancel{}) != nil || c.w.Flush() != nil {
			c.nc.SetReadDeadline(time.Unix(1, 0))
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(cancelWait))
	})
	m, err := wire.ReadMessage(c.r)
	if !stop() {
		<-cancelled
		c.nc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		c.close()
		if ctx.Err() != nil {
			c.bad = true
			return nil, ctx.Err()
		}
		return nil, &brokenError{err: err, sent: true}
	}
	switch m := m.(type) {
	case *wire.ClientResult:
		c.inTx, c.txSeq = m.InTx, m.TxSeq
		return m, nil
	case *wire.ErrorResponse:
		return nil, ctxError(ctx, m.Err)
	}
	c.close()
	c.bad = true
	return nil, fmt.Errorf("hiqlite: remote session: unexpected %s", m.Type())
}

// ctxError is err, or ctx's error when err is the member's statement
// interrupted because ctx ended.
func ctxError(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sqlite3.INTERRUPT)) {
		return ctx.Err()
	}
	return err
}

// cancelWait is how long a cancelled request waits for its member's
// answer before the session is dropped.
const cancelWait = 5 * time.Second

// do runs req with failover (see remoteConn).
func (c *remoteConn) do(ctx context.Context, req *wire.ClientRequest) (*wire.ClientResult, error) {
	if c.rows != nil {
		c.rows.detach()
	}
	wasTx, txSeq := c.inTx, c.txSeq
	res, err := c.call(ctx, req)
	if req.Op == wire.OpCommit || req.Op == wire.OpRollback {
		// Whatever the answer, the member's connection has ended its
		// transaction (or never had one).
		c.inTx, c.txSeq = false, 0
	}
	if err == nil {
		return res, nil
	}
	var be *brokenError
	broken := errors.As(err, &be)
	if wasTx {
		commit := req.Op == wire.OpCommit || req.Op == wire.OpExec && isCommitText(req.Stmt.SQL)
		if broken || commit && txSeq != 0 && (memberGone(ctx, err) || errors.Is(err, nodeerr.ErrOutcomeUnknown)) {
			// The session, or the member's view of the COMMIT, is
			// lost: another member settles it.
			c.inTx, c.txSeq = false, 0
			if err := c.lostTx(ctx, req, txSeq, err); err != nil {
				return nil, err
			}
			return &wire.ClientResult{}, nil
		}
		return nil, err
	}
	if broken && !be.sent {
		c.bad = true
		return nil, driver.ErrBadConn
	}
	if !broken && !memberGone(ctx, err) && !errors.Is(err, nodeerr.ErrOutcomeUnknown) {
		return nil, err
	}
	// Not in a transaction: the same request, same sequence number, on
	// another member; a write that was applied answers with its results.
	for range c.rc.cfg.Hosts {
		c.rc.next.Store(uint32(c.host+1) % uint32(len(c.rc.cfg.Hosts)))
		if cerr := c.connect(ctx); cerr != nil {
			c.bad = true
			return nil, fmt.Errorf("%w (and no other member answered: %w)", err, cerr)
		}
		res, err = c.call(ctx, req)
		if err == nil {
			return res, nil
		}
		if !errors.As(err, &be) && !memberGone(ctx, err) && !errors.Is(err, nodeerr.ErrOutcomeUnknown) {
			return nil, err
		}
	}
	c.bad = true
	return nil, err
}

// memberGone: err is the member closing or stopping under a request whose
// caller still waits, so that the request belongs on another member.
func memberGone(ctx context.Context, err error) bool {
	return errors.Is(err, nodeerr.ErrClosed) || errors.Is(err, nodeerr.ErrStopped) ||
		ctx.Err() == nil && errors.Is(err, context.Canceled)
}

// lostTx settles a transaction whose session broke during req: if it had
// written, another member settles its origin, so that a COMMIT learns its
// outcome; otherwise nothing of it exists anywhere.
func (c *remoteConn) lostTx(ctx context.Context, req *wire.ClientRequest, txSeq uint64, cause error) error {
	c.bad = true // the transaction's statements cannot go on
	if txSeq == 0 {
		if req.Op == wire.OpCommit {
			return nil // it only read: nothing to commit
		}
		return fmt.Errorf("%w: its member's session broke (%v); nothing of it was committed", nodeerr.ErrTxAborted, cause)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.rc.cfg.Timeout)
	defer cancel()
	c.rc.next.Store(uint32(c.host+1) % uint32(len(c.rc.cfg.Hosts)))
	if err := c.connect(ctx); err != nil {
		return fmt.Errorf("%w: the transaction's member's session broke (%v) and no other member answered: %w", nodeerr.ErrOutcomeUnknown, cause, err)
	}
	res, err := c.call(ctx, &wire.ClientRequest{Op: wire.OpOutcome, Seq: txSeq})
	if err != nil {
		return fmt.Errorf("%w: the transaction's member's session broke (%v), and asking another member failed: %w", nodeerr.ErrOutcomeUnknown, cause, err)
	}
	commit := req.Op == wire.OpCommit || req.Op == wire.OpExec && isCommitText(req.Stmt.SQL)
	switch {
	case res.Applied && commit:
		return nil // the COMMIT was applied
	case res.Applied:
		// Only a COMMIT applies a transaction: this one was committed by
		// an earlier request whose answer said otherwise.
		return fmt.Errorf("%w: the transaction's member's session broke (%v), and its writes turned out committed", nodeerr.ErrOutcomeUnknown, cause)
	case commit:
		return fmt.Errorf("%w: the transaction's member's session broke (%v); it was not committed", nodeerr.ErrNotApplied, cause)
	}
	return fmt.Errorf("%w: its member's session broke (%v); nothing of it was committed", nodeerr.ErrTxAborted, cause)
}

// isCommitText reports whether query is a COMMIT (or END) statement.
func isCommitText(query string) bool {
	q := strings.ToUpper(strings.TrimSpace(query))
	return strings.HasPrefix(q, "COMMIT") || strings.HasPrefix(q, "END")
}

// request builds a request of the next sequence number.
func (c *remoteConn) request(ctx context.Context, op wire.ClientOp, query string, nargs []driver.NamedValue) (*wire.ClientRequest, error) {
	args, err := toArgs(nargs)
	if err != nil {
		return nil, err
	}
	c.seq++
	return &wire.ClientRequest{
		Op: op, Seq: c.seq, Stmt: replication.Statement{SQL: query, Args: args},
		Consistency: uint8(consistencyOf(ctx, c.rc.cfg.Consistency)),
	}, nil
}

func (c *remoteConn) ExecContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Result, error) {
	req, err := c.request(ctx, wire.OpExec, query, nargs)
	if err != nil {
		return nil, err
	}
	res, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return result{res.Result.LastInsertID, res.Result.RowsAffected}, nil
}

func (c *remoteConn) QueryContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Rows, error) {
	req, err := c.request(ctx, wire.OpQuery, query, nargs)
	if err != nil {
		return nil, err
	}
	res, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	r := newRemoteRows(ctx, c, res)
	if r.more {
		c.rows = r
	}
	return r, nil
}

func (c *remoteConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	switch lvl := sql.IsolationLevel(opts.Isolation); lvl {
	case sql.LevelDefault, sql.LevelSerializable:
	default:
		return nil, fmt.Errorf("hiqlite: isolation level %v is not supported: SQLite transactions are serializable (use the default or sql.LevelSerializable)", lvl)
	}
	if c.inTx {
		return nil, fmt.Errorf("hiqlite: cannot start a transaction within a transaction: %w", sqlite3.ERROR)
	}
	req, err := c.request(ctx, wire.OpBegin, "", nil)
	if err != nil {
		return nil, err
	}
	req.ReadOnly = opts.ReadOnly
	if _, err := c.do(ctx, req); err != nil {
		return nil, err
	}
	return &remoteTx{c: c}, nil
}

// remoteTx is the transaction of a remote connection.
type remoteTx struct {
	c    *remoteConn
	done bool
}

func (t *remoteTx) Commit() error   { return t.end(wire.OpCommit) }
func (t *remoteTx) Rollback() error { return t.end(wire.OpRollback) }

func (t *remoteTx) end(op wire.ClientOp) error {
	if t.done {
		return errors.New("hiqlite: transaction has already been committed or rolled back")
	}
	t.done = true
	c := t.c
	if c.bad && !c.inTx {
		if op == wire.OpRollback {
			return nil // the session that held it is gone, and it with it
		}
		return fmt.Errorf("%w: its member's session broke", nodeerr.ErrTxAborted)
	}
	_, err := c.do(context.Background(), &wire.ClientRequest{Op: op})
	if op == wire.OpRollback && c.bad && !c.inTx {
		return nil // rolled back with its session
	}
	return err
}

func (c *remoteConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext prepares query on the member, for its errors and its
// parameter count; the statement sends its text with each execution, and
// the member's connection finds it in its caches.
func (c *remoteConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	req, err := c.request(ctx, wire.OpPrepare, query, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return &remoteStmt{c: c, query: query, numInput: int(res.NumInput)}, nil
}

func (c *remoteConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *remoteConn) Close() error {
	if c.rows != nil {
		c.rows.detach()
	}
	c.close()
	return nil
}

func (c *remoteConn) Ping(ctx context.Context) error {
	if c.bad || c.nc == nil {
		return driver.ErrBadConn
	}
	if _, err := c.call(ctx, &wire.ClientRequest{Op: wire.OpPing}); err != nil {
		var be *brokenError
		if errors.As(err, &be) {
			c.bad = true
			return driver.ErrBadConn
		}
		return err
	}
	return nil
}

func (c *remoteConn) ResetSession(ctx context.Context) error {
	if c.bad || c.nc == nil {
		return driver.ErrBadConn
	}
	return nil
}

func (c *remoteConn) IsValid() bool { return !c.bad && c.nc != nil }

func (c *remoteConn) CheckNamedValue(nv *driver.NamedValue) error { return checkValue(nv.Value) }

// remoteStmt is a statement of a remote connection.
type remoteStmt struct {
	c        *remoteConn
	query    string
	numInput int
}

func (s *remoteStmt) Close() error  { return nil }
func (s *remoteStmt) NumInput() int { return s.numInput }

func (s *remoteStmt) CheckNamedValue(nv *driver.NamedValue) error { return checkValue(nv.Value) }

func (s *remoteStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.c.ExecContext(context.Background(), s.query, named(args))
}

func (s *remoteStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.c.QueryContext(context.Background(), s.query, named(args))
}

func (s *remoteStmt) ExecContext(ctx context.Context, nargs []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.query, nargs)
}

func (s *remoteStmt) QueryContext(ctx context.Context, nargs []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.query, nargs)
}
