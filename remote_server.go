package hiqlite

import (
	"bufio"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeid"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// The member's side of a remote client's session (see remote_client.go for
// the client): each session is a real database/sql connection of this node
// (a conn, from the Config of the connector that started the node), and
// every request runs on it, so busy, busy-snapshot, exactly-once COMMIT
// resolution, RETURNING, LastInsertId and SQLite's error codes behave as
// for the node's own connections. The writes carry the client's identity
// (ClientHello) and sequence numbers, so another member can settle one the
// client lost with its member.

// Rows go back in batches of at most batchRows rows or about batchBytes
// bytes, whichever comes first; the next batch is read when the client asks
// for it, so a result never sits whole in memory.
const (
	batchRows  = 256
	batchBytes = 1 << 20
)

// maxClientSessions bounds the sessions of remote clients one node serves
// at a time: each holds a read connection and two goroutines. A session
// beyond it is refused with an error that says so, and its client tries
// the next host.
var maxClientSessions int64 = 1024

// clientSession is one session. Its goroutines: the one the node started
// for it (serve: the requests, in order) and reader (the frames, so that a
// ClientCancel reaches the request it cancels), which serve joins.
//
// mu guards cancel, the cancel function of the request in flight or of the
// open rows.
type clientSession struct {
	n   *Node
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	cn  *conn
	ctx context.Context // ends when the client leaves or the node closes

	rows       driver.Rows // open rows of the last OpQuery
	rowsCols   int
	rowsCancel context.CancelFunc

	// the extensions of the session: a lease left held when the session
	// ends runs to its ttl; the listener closes with the session
	lease    *Lease
	listener *Listener

	mu         sync.Mutex
	cancel     context.CancelFunc
	handed     uint64 // requests read hands to serve
	begun      uint64 // requests serve began (started)
	cancelNext bool   // a ClientCancel came for a request not begun yet

	buf []byte // the last answer's frame, reused by answer
}

// serveClient is the node's cluster.ClientHandler: it serves the session of
// a remote client on nc until the client leaves or the node closes.
func (n *Node) serveClient(ctx context.Context, cfg *Config, nc net.Conn) {
	defer nc.Close()
	s := &clientSession{n: n, nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	hello, err := s.hello()
	if err != nil {
		s.send(&wire.ErrorResponse{Err: err})
		return
	}
	if n.clientSessions.Add(1) > maxClientSessions {
		n.clientSessions.Add(-1)
		s.send(&wire.ErrorResponse{Err: fmt.Errorf("hiqlite: node %s serves %d remote sessions already, its limit", n.ID(), maxClientSessions)})
		return
	}
	defer n.clientSessions.Add(-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	cn, err := newConn(ctx, &Connector{cfg: *cfg, node: n})
	if err != nil {
		s.send(&wire.ErrorResponse{Err: err})
		return
	}
	cn.remote, cn.session = hello.Node, hello.Session
	s.cn = cn
	defer func() {
		s.closeRows()
		if s.listener != nil {
			s.listener.Close()
		}
		cn.Close() // rolls back an open transaction
	}()
	if s.send(&wire.OK{}) != nil {
		return
	}
	reqs := make(chan wire.Message)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel() // the client left: interrupt what runs for it
		s.read(reqs)
	}()
	defer func() {
		cancel()
		nc.Close()
		<-done
	}()
	for {
		var m wire.Message
		select {
		case m = <-reqs:
		case <-ctx.Done():
			return
		}
		var err error
		switch m := m.(type) {
		case *wire.ClientRequest:
			err = s.answer(s.handle(m))
		case *wire.ClientBackup:
			err = s.backup(m)
		}
		if err != nil {
			return
		}
	}
}

// hello reads the client's ClientHello, within the handshake timeout.
func (s *clientSession) hello() (*wire.ClientHello, error) {
	s.nc.SetReadDeadline(time.Now().Add(nodeport.HandshakeTimeout))
	m, err := wire.ReadMessage(s.r)
	s.nc.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, err
	}
	h, ok := m.(*wire.ClientHello)
	if !ok || h.Node == "" || h.Session == 0 {
		return nil, fmt.Errorf("hiqlite: a client session begins with a ClientHello naming the client, not %s", m.Type())
	}
	// The name goes into the origin of every write of the session, and so
	// into _hiqlite_sessions: a node id's rules bound it.
	if err := nodeid.Check(h.Node); err != nil {
		return nil, fmt.Errorf("hiqlite: client name %q: %w", h.Node, err)
	}
	return h, nil
}

// read reads the client's frames until the connection ends or breaks the
// protocol: requests (and backups) go to serve, a cancel takes effect at
// once.
func (s *clientSession) read(reqs chan<- wire.Message) {
	for {
		m, err := wire.ReadMessage(s.r)
		if err != nil {
			return
		}
		switch m := m.(type) {
		case *wire.ClientCancel:
			s.mu.Lock()
			if s.begun < s.handed {
				// The request it cancels is handed over, but its
				// context is not made yet: started cancels it.
				s.cancelNext = true
			} else if s.cancel != nil {
				s.cancel()
			}
			s.mu.Unlock()
		case *wire.ClientRequest, *wire.ClientBackup:
			if ownContext(m) {
				s.mu.Lock()
				s.handed++
				s.mu.Unlock()
			}
			select {
			case reqs <- m:
			case <-s.ctx.Done():
				return
			}
		default:
			return
		}
	}
}

// answer sends m, the answer to a request. An answer that cannot be
// encoded (a row larger than a frame) is replaced by an error that says so,
// and rows it began are closed: the session goes on. Dropping the session
// instead made the client send the request to every host in turn.
func (s *clientSession) answer(m wire.Message) error {
	b, err := wire.AppendMessage(s.buf[:0], m)
	if err != nil {
		s.closeRows()
		b, err = wire.AppendMessage(s.buf[:0], &wire.ErrorResponse{Err: fmt.Errorf("hiqlite: remote session: the member cannot send its answer: %w (a write the request made stands)", err)})
		if err != nil {
			return err
		}
	}
	if cap(b) <= maxKeptAnswer {
		s.buf = b // reused for the next answer; a huge one is let go
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.w.Flush()
}

// maxKeptAnswer is the largest answer buffer a session keeps between
// answers.
const maxKeptAnswer = 4 << 20

func (s *clientSession) send(m wire.Message) error {
	if err := wire.WriteMessage(s.w, m); err != nil {
		return err
	}
	return s.w.Flush()
}

// opContext is the context of req: the session's, with what was left of
// the client's deadline and its read consistency, cancelled by a
// ClientCancel.
func (s *clientSession) opContext(req *wire.ClientRequest) (context.Context, context.CancelFunc) {
	ctx := WithConsistency(s.ctx, Consistency(req.Consistency))
	var cancel context.CancelFunc
	if req.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	s.started(cancel)
	return ctx, cancel
}

// ownContext reports whether serve makes m a context of its own (started):
// every request but those that go on with the open rows (next, close) or
// the open transaction (commit, rollback), which a cancel reaches through
// the rows' context as before.
func ownContext(m wire.Message) bool {
	r, ok := m.(*wire.ClientRequest)
	if !ok {
		return true // a backup
	}
	switch r.Op {
	case wire.OpNext, wire.OpCloseRows, wire.OpCommit, wire.OpRollback:
		return false
	}
	return true
}

// started makes cancel the one a ClientCancel calls: that of the request
// the session now runs. A cancel that came for it before this (read takes
// frames while serve has not yet begun the request) takes effect now; it
// used to hit the previous request's, and the request ran on.
func (s *clientSession) started(cancel context.CancelFunc) {
	s.mu.Lock()
	s.begun++
	s.cancel = cancel
	if s.cancelNext {
		s.cancelNext = false
		cancel()
	}
	s.mu.Unlock()
}

// settled forgets the request's cancel function; the open rows' takes its
// place.
func (s *clientSession) settled() {
	s.mu.Lock()
	s.cancel = s.rowsCancel
	s.mu.Unlock()
}

// handle runs one request and returns its answer.
func (s *clientSession) handle(req *wire.ClientRequest) wire.Message {
	res, err := s.run(req)
	s.settled()
	if err != nil {
		return &wire.ErrorResponse{Err: err}
	}
	if t := s.cn.tx; t != nil {
		res.InTx = true
		if t.w != nil {
			res.TxSeq = t.seq
		}
	}
	return res
}

func (s *clientSession) run(req *wire.ClientRequest) (*wire.ClientResult, error) {
	cn := s.cn
	switch req.Op {
	case wire.OpNext:
		if s.rows == nil {
			return nil, errors.New("hiqlite: no open rows")
		}
		return s.batch(&wire.ClientResult{})
	case wire.OpCloseRows:
		return &wire.ClientResult{}, s.closeRows()
	case wire.OpCommit, wire.OpRollback:
		s.closeRows()
		if cn.tx == nil {
			return nil, errors.New("hiqlite: transaction has already been committed or rolled back")
		}
		if req.Op == wire.OpCommit {
			return &wire.ClientResult{}, cn.tx.Commit()
		}
		return &wire.ClientResult{}, cn.tx.Rollback()
	}
	s.closeRows()
	ctx, cancel := s.opContext(req)
	// Any write of the request carries the client's sequence number.
	cn.seq = req.Seq - 1
	switch req.Op {
	case wire.OpExec:
		defer cancel()
		r, err := cn.ExecContext(ctx, req.Stmt.SQL, namedArgs(req.Stmt.Args))
		if err != nil {
			return nil, err
		}
		out := &wire.ClientResult{}
		out.Result.LastInsertID, _ = r.LastInsertId()
		out.Result.RowsAffected, _ = r.RowsAffected()
		return out, nil
	case wire.OpQuery:
		rows, err := cn.QueryContext(ctx, req.Stmt.SQL, namedArgs(req.Stmt.Args))
		if err != nil {
			cancel()
			return nil, err
		}
		out := &wire.ClientResult{}
		out.Result.Columns = rows.Columns()
		s.rows, s.rowsCols, s.rowsCancel = rows, len(out.Result.Columns), cancel
		if d, ok := rows.(interface{ declTypes() []string }); ok {
			out.Result.DeclTypes = d.declTypes()
		}
		if len(out.Result.DeclTypes) != len(out.Result.Columns) {
			out.Result.DeclTypes = make([]string, len(out.Result.Columns))
		}
		if nr, ok := rows.(driver.RowsColumnTypeNullable); ok {
			out.Nullable = make([]byte, len(out.Result.Columns))
			for i := range out.Nullable {
				if nullable, ok := nr.ColumnTypeNullable(i); ok {
					out.Nullable[i] = 2
					if nullable {
						out.Nullable[i] = 1
					}
				}
			}
		}
		return s.batch(out)
	case wire.OpPrepare:
		defer cancel()
		st, err := cn.PrepareContext(ctx, req.Stmt.SQL)
		if err != nil {
			return nil, err
		}
		n := st.NumInput()
		return &wire.ClientResult{NumInput: int64(n)}, st.Close()
	case wire.OpBegin:
		defer cancel()
		_, err := cn.BeginTx(ctx, driver.TxOptions{ReadOnly: req.ReadOnly})
		return &wire.ClientResult{}, err
	case wire.OpPing:
		defer cancel()
		return &wire.ClientResult{}, cn.Ping(ctx)
	case wire.OpOutcome:
		defer cancel()
		applied, _, err := s.n.c.Resolve(ctx, replication.Origin{Node: cn.remote, Session: cn.session, Seq: req.Seq})
		return &wire.ClientResult{Applied: applied}, err
	case wire.OpExt:
		defer cancel()
		return s.ext(ctx, req)
	}
	cancel()
	return nil, fmt.Errorf("hiqlite: unknown client request %d", req.Op)
}

// batch adds the next rows of s.rows to out, closing them at their end.
func (s *clientSession) batch(out *wire.ClientResult) (*wire.ClientResult, error) {
	n := s.rowsCols
	raw, _ := s.rows.(interface{ nextRaw([]driver.Value) error })
	size := 0
	for len(out.Result.Rows) < batchRows && size < batchBytes {
		dest := make([]driver.Value, n)
		var err error
		if raw != nil {
			err = raw.nextRaw(dest)
		} else {
			err = s.rows.Next(dest)
		}
		if err == io.EOF {
			return out, s.closeRows()
		}
		if err != nil {
			// The rows read so far, then the error, as the rows of
			// the member's own connection give them.
			s.closeRows()
			out.Result.Err = err
			return out, nil
		}
		row := make([]any, n)
		for i, v := range dest {
			row[i] = v
			size += 8
			switch v := v.(type) {
			case string:
				size += len(v)
			case []byte:
				size += len(v)
			}
		}
		out.Result.Rows = append(out.Result.Rows, row)
	}
	out.More = true
	return out, nil
}

func (s *clientSession) closeRows() error {
	if s.rows == nil {
		return nil
	}
	err := s.rows.Close()
	s.rowsCancel()
	s.rows, s.rowsCancel = nil, nil
	return err
}

// namedArgs turns a request's arguments back into what database/sql gives a
// connection.
func namedArgs(args []replication.Arg) []driver.NamedValue {
	if len(args) == 0 {
		return nil
	}
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Name: a.Name, Ordinal: a.Ordinal, Value: a.Value}
	}
	return nv
}
