package hiqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// conn is one database/sql connection: a local read-only SQLite connection
// for reads, and a session on the node for writes. database/sql uses a conn
// from one goroutine at a time.
type conn struct {
	cfg  *Config
	node *Node
	db   *sqlite3.Conn // local, read-only

	session uint64
	seq     uint64
	// remote is the node name a remote client's session gives its writes
	// (remote_server.go); "" for the node's own connections
	remote string
	fk     bool       // PRAGMA foreign_keys of this session, carried by its writes
	tx     *tx        // the open transaction, begun by BeginTx or by a BEGIN statement
	owner  *Connector // with Driver.Open: the connector this conn alone uses

	// what preparing texts on db taught (stmtcache.go)
	reads  *lru[cachedRead]
	writes *lru[cachedWrite]
	closed bool // Close ran: released statements are closed, not cached
	oom    bool // a statement ran out of memory: retire the connection

	// guard is db's authorizer: statements that would change an object of
	// hiqlite are refused when they are prepared, before they are sent
	// (replication/internal.go). Its Migrations is set for Migrate's
	// statements only (see start).
	guard replication.Guard
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

// readBusyTimeout bounds how long a read waits on SQLite's own locks (WAL
// recovery, a checkpoint restart); readers never wait for the writer.
const readBusyTimeout = 5 * time.Second

func newConn(ctx context.Context, c *Connector) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db, err := sqlite3.OpenFlags(c.node.c.DBPath(), sqlite3.OPEN_READONLY|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: open read connection: %w", err)
	}
	if err := db.BusyTimeout(readBusyTimeout); err != nil {
		db.Close()
		return nil, err
	}
	if err := registerStatus(db, c.node); err != nil {
		db.Close()
		return nil, err
	}
	if err := registerNotify(db); err != nil {
		db.Close()
		return nil, err
	}
	// FTS5, R*Tree and the UUID functions, as on the writer.
	if err := replication.RegisterFeatures(db); err != nil {
		db.Close()
		return nil, err
	}
	// Then the application's functions and collations (Config.ConnInit),
	// the real ones: only the writer refuses the non-deterministic ones.
	if err := replication.RunConnInit(db, c.node.connInit); err != nil {
		db.Close()
		return nil, err
	}
	// A session starts with foreign keys as _foreign_keys says (off by
	// default, as in SQLite), while ncruces builds SQLite with them on:
	// make PRAGMA foreign_keys read what writes use.
	fk := `PRAGMA foreign_keys = OFF`
	if c.cfg.ForeignKeys {
		fk = `PRAGMA foreign_keys = ON`
	}
	if err := db.Exec(fk); err != nil {
		db.Close()
		return nil, err
	}
	cn := &conn{
		cfg: &c.cfg, node: c.node, db: db, session: rand.Uint64(), fk: c.cfg.ForeignKeys,
		reads: newLRU[cachedRead](readCacheSize), writes: newLRU[cachedWrite](writeCacheSize),
	}
	if err := db.SetAuthorizer(cn.guard.Authorize); err != nil {
		db.Close()
		return nil, err
	}
	return cn, nil
}

// Node returns the node of this connection; reach it through
// (*sql.Conn).Raw:
//
//	conn.Raw(func(dc any) error { node := dc.(interface{ Node() *hiqlite.Node }).Node(); ... })
func (c *conn) Node() *Node { return c.node }

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) Close() error {
	var errs []error
	if c.tx != nil {
		errs = append(errs, c.tx.Rollback())
	}
	c.closed = true
	c.reads.drain(func(r cachedRead) { errs = append(errs, r.s.Close()) })
	errs = append(errs, c.db.Close())
	if c.owner != nil {
		errs = append(errs, c.owner.Close())
	}
	return errors.Join(errs...)
}

func (c *conn) Ping(ctx context.Context) error {
	if c.node.c.Fault() != nil {
		return driver.ErrBadConn
	}
	return ctx.Err()
}

func (c *conn) IsValid() bool { return !c.oom && c.node.c.Fault() == nil }

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error { return checkValue(nv.Value) }

// origin names this session's next write.
func (c *conn) origin() replication.Origin {
	c.seq++
	if c.remote != "" {
		return replication.Origin{Node: c.remote, Session: c.session, Seq: c.seq}
	}
	return replication.Origin{Node: c.node.c.ID(), Session: c.session, Seq: c.seq}
}

// flags are the session settings of a write issued with ctx. Only
// Migrate's writes may write _hiqlite_migrations on the writer too: the
// read connection's guard cannot see every statement a write runs (a
// cached text, a statement after one that does not prepare yet).
func (c *conn) flags(ctx context.Context) replication.Flags {
	var f replication.Flags
	if c.fk {
		f |= replication.FlagForeignKeys
	}
	if !forMigrate(ctx) {
		f |= replication.FlagNotMigrate
	}
	return f
}

// prepared is a statement text prepared (and classified) on the read
// connection, for one execution or for a stmt. For a text of several
// statements, s is the first and multi says whether all of them are reads.
type prepared struct {
	query string
	// s is nil for a write (the writer prepares the text) and for an empty
	// text; release gives it back
	s   *sqlite3.Stmt
	cls replication.Class
	// numInput is the number of parameters of a single statement that has
	// positional ones only, else -1: the argument count database/sql cannot
	// check for a query
	numInput  int
	multi     bool // more statements follow the first
	reads     bool // with multi: every statement is a read
	empty     bool // the text holds no statement
	plainRead bool // s is a single plain read: release caches it
	// linearized: the read index was awaited for this execution
	linearized bool
	// open counts the rows of a stmt's executions not yet closed; closed:
	// the stmt was closed while some were open (database/sql closes a
	// Tx's or Conn's statement at once), so the last of them releases s.
	open   int
	closed bool
}

// prepareSeen is prepare that also sees the schema of this node's own
// acknowledged writes: a read of a table that a write on this node created
// a moment ago fails to prepare until the node applies that write, so a
// failed prepare waits for it (cluster/ownwrites.go) and tries again.
func (c *conn) prepareSeen(ctx context.Context, query string) (*prepared, error) {
	p, err := c.prepare(query)
	if err != nil && c.node.c.OwnWritesPending() {
		if werr := c.node.c.WaitOwnWrites(ctx); werr != nil {
			return nil, errors.Join(err, werr)
		}
		return c.prepare(query)
	}
	return p, err
}

// prepare prepares and classifies query's first statement, or finds what
// an earlier prepare of the same text taught (stmtcache.go).
func (c *conn) prepare(query string) (*prepared, error) {
	// The text is lexed and its first statement classified by keywords once,
	// here; the classification of the prepared statement reuses it.
	var txt replication.Text
	read := false
	if c.tx != nil && !c.cachedNoTransaction(query) {
		// Checked before the caches, which may hold the text from
		// outside a transaction. A text the caches know as no whole
		// transaction needs no reading: the per-row INSERT of a
		// transaction is read once, not once a row.
		var err error
		txt, err = replication.ReadText(query)
		if txt.Atomic {
			return nil, fmt.Errorf("hiqlite: cannot start a transaction within a transaction: %w", sqlite3.ERROR)
		}
		if err != nil {
			return nil, err
		}
		read = true
	}
	if r, ok := c.reads.take(query); ok {
		return &prepared{query: query, s: r.s, cls: replication.Class{Kind: replication.Read}, numInput: r.numInput, plainRead: true}, nil
	}
	if w, ok := c.writes.get(query); ok {
		return &prepared{query: query, cls: w.cls, multi: w.multi, numInput: w.numInput}, nil
	}
	// A text that is one whole transaction (BEGIN; ...; COMMIT;) is
	// prepared here as the statements between; the writer runs the whole
	// text, atomically. Refuse before preparing: preparing a PRAGMA already
	// applies it.
	text := query
	if !read {
		var err error
		if txt, err = replication.ReadText(query); err != nil {
			return nil, err
		}
	}
	query = txt.SQL
	textCls := txt.Class()
	c.guard.Reset()
	s, tail, err := c.db.Prepare(query)
	if refused := c.guard.Refusal(); refused != nil {
		if s != nil {
			s.Close()
		}
		return nil, refused
	}
	if err != nil {
		if textCls.Kind == replication.Write && (c.tx != nil && c.tx.w != nil || txt.WriteByKeyword()) {
			// The read connection cannot see what the open write
			// transaction created (CREATE TABLE, then INSERT into it),
			// nor, on a follower, what the leader committed a moment ago:
			// the writer prepares it, and reports any real error.
			return &prepared{query: text, cls: textCls, numInput: -1}, nil
		}
		return nil, c.local(err)
	}
	p := &prepared{query: query, s: s, numInput: -1}
	if s == nil {
		p.empty = true
		p.numInput = 0
		return p, nil
	}
	p.cls = txt.Prepared(s)
	if replication.IsBlank(tail) {
		p.numInput = numInput(s)
	} else {
		p.multi = true
		if p.cls.Kind != replication.Read && p.cls.Kind != replication.Write && p.cls.Kind != replication.Local {
			s.Close()
			return nil, &replication.RefusedError{SQL: query, Reason: fmt.Sprintf("%v inside a text of several statements; run it as a statement of its own", p.cls.Kind)}
		}
		p.reads, err = c.allReads(p.cls, tail)
		if err == nil && !p.reads && p.cls.Kind == replication.Local {
			// A setting of the reader would reach the writer with the write.
			err = &replication.RefusedError{SQL: query, Reason: "a PRAGMA setting of the local reader followed by a write; run the pragmas as a text of their own"}
		}
		if err == nil && !p.reads {
			err = c.checkTail(tail)
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	switch {
	case p.cls.Kind == replication.Write:
		// The writer runs the text and prepares it there.
		s.Close()
		p.s = nil
		p.query = text
		if c.writes.has(text) || c.guard.Migrations {
			// Migrate's texts pass the guard; the cache must not let
			// them pass for anyone else.
			break
		}
		c.writes.add(text, cachedWrite{cls: p.cls, multi: p.multi, numInput: p.numInput, atomic: txt.Atomic})
	case p.cls.Kind == replication.Read && textCls.Kind == replication.Write && !p.multi:
		// Only sqlite3_stmt_readonly told it from a write: a SELECT,
		// VALUES or WITH ... SELECT.
		p.plainRead = true
	}
	return p, nil
}

// release ends an execution's (or a stmt's) hold on p.s. A plain read goes
// back to the connection's cache, reset and with no bindings, unless its
// execution failed or the cache already holds an idle statement of the same
// text; anything else is closed. Like closing the statement, it returns the
// error of its last step.
func (c *conn) release(p *prepared, failed bool) error {
	s := p.s
	if s == nil {
		return nil
	}
	p.s = nil
	if !p.plainRead || failed || c.closed {
		return s.Close()
	}
	if err := s.Reset(); err != nil {
		s.Close()
		return err
	}
	if err := s.ClearBindings(); err != nil || c.reads.has(p.query) {
		s.Close()
		return err
	}
	if old, ok := c.reads.add(p.query, cachedRead{s: s, numInput: p.numInput}); ok {
		old.s.Close()
	}
	return nil
}

// numInput returns the number of parameters of s, or -1 when one of them is
// named.
func numInput(s *sqlite3.Stmt) int {
	n := s.BindCount()
	for i := 1; i <= n; i++ {
		if name := s.BindName(i); name != "" && name[0] != '?' {
			return -1
		}
	}
	return n
}

// allReads reports whether first and every statement of tail are reads or
// settings of the local reader (a startup text of pragmas). A
// statement that does not prepare here (it may depend on an earlier one, as
// INSERT after CREATE TABLE) is left to the writer, which reports its error.
func (c *conn) allReads(first replication.Class, tail string) (bool, error) {
	if first.Kind != replication.Read && first.Kind != replication.Local {
		return false, nil
	}
	for !replication.IsBlank(tail) {
		txt, err := replication.ClassifyText(tail)
		if err != nil {
			return false, err
		}
		s, rest, err := c.db.Prepare(tail)
		if err != nil {
			return false, nil
		}
		if s == nil {
			return true, nil
		}
		cls := txt.Prepared(s)
		s.Close()
		if cls.Kind != replication.Read && cls.Kind != replication.Local {
			return false, nil
		}
		tail = rest
	}
	return true, nil
}

// checkTail prepares the statements of a write text after its first on
// the read connection, so that one the guard refuses refuses the whole text
// before anything of it runs. It stops, leaving the rest to the writer, at
// the first statement that does not prepare here (it may depend on an
// earlier one, as INSERT after CREATE TABLE) and at one that ClassifySQL
// refuses (preparing a PRAGMA already applies it; the writer refuses it
// after the statements before it ran, as SQLite's sqlite3_exec would).
func (c *conn) checkTail(tail string) error {
	for !replication.IsBlank(tail) {
		if _, err := replication.ClassifySQL(tail); err != nil {
			var internal *replication.InternalObjectError
			if errors.As(err, &internal) {
				return err
			}
			return nil
		}
		c.guard.Reset()
		s, rest, err := c.db.Prepare(tail)
		if refused := c.guard.Refusal(); refused != nil {
			if s != nil {
				s.Close()
			}
			return refused
		}
		if err != nil || s == nil {
			return nil
		}
		s.Close()
		tail = rest
	}
	return nil
}

func (c *conn) ExecContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Result, error) {
	p, args, err := c.start(ctx, query, nargs)
	if err != nil {
		return nil, err
	}
	res, err := c.exec(ctx, p, args)
	c.release(p, err != nil)
	return res, err
}

// start converts the arguments and prepares an unprepared query. A
// linearizable read waits for the read index first, so that it prepares
// against the schema it must see.
func (c *conn) start(ctx context.Context, query string, nargs []driver.NamedValue) (_ *prepared, _ []replication.Arg, err error) {
	defer func() { c.retireOnOOM(err) }()
	defer replication.RecoverOOM(&err) // preparing (oom.go)
	args, err := toArgs(nargs)
	if err != nil {
		return nil, nil, err
	}
	linearized, err := c.linearize(ctx)
	if err != nil {
		return nil, nil, err
	}
	c.guard.Migrations = forMigrate(ctx)
	p, err := c.prepareSeen(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	// database/sql counts the arguments of a prepared statement (NumInput),
	// not those of a query it hands to the connection: count them here, so
	// that a missing argument is an error, not a NULL.
	if !p.empty && p.numInput >= 0 && p.numInput != len(nargs) {
		c.release(p, false)
		return nil, nil, fmt.Errorf("hiqlite: expected %d arguments, got %d", p.numInput, len(nargs))
	}
	p.linearized = linearized
	return p, args, nil
}

func (c *conn) QueryContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Rows, error) {
	p, args, err := c.start(ctx, query, nargs)
	if err != nil {
		return nil, err
	}
	r, own, err := c.query(ctx, p, args)
	if !own {
		c.release(p, err != nil)
	}
	return r, err
}

// exec runs a prepared text for its result.
func (c *conn) exec(ctx context.Context, p *prepared, args []replication.Arg) (driver.Result, error) {
	if p.empty {
		return result{}, nil
	}
	if p.multi && len(args) > 0 {
		return nil, errors.New("hiqlite: arguments cannot be bound to a text of several statements")
	}
	switch p.cls.Kind {
	case replication.Read, replication.Local, replication.Session:
		if p.multi && !p.reads {
			break // a write follows: the whole text is one write
		}
		if err := c.readStarts(ctx, p); err != nil {
			return nil, err
		}
		if c.tx != nil && c.tx.w != nil && p.cls.Kind == replication.Read {
			_, err := c.tx.w.Exec(ctx, replication.Statement{SQL: p.query, Args: args}, true)
			return result{}, err
		}
		return result{}, c.execLocal(ctx, p, args)
	case replication.Write:
	default:
		return result{}, c.control(ctx, p.cls, p.query)
	}
	res, err := c.write(ctx, replication.Statement{SQL: p.query, Args: args})
	if err != nil {
		return nil, err
	}
	return result{res.LastInsertID, res.RowsAffected}, nil
}

// query runs a prepared statement for its rows; own reports whether the
// returned rows took ownership of p.s, to release it when they close.
func (c *conn) query(ctx context.Context, p *prepared, args []replication.Arg) (_ driver.Rows, own bool, _ error) {
	if p.empty {
		return nil, false, errors.New("hiqlite: empty query")
	}
	if p.multi {
		return nil, false, errors.New("hiqlite: a query takes one statement; use Exec for a text of several")
	}
	switch p.cls.Kind {
	case replication.Read, replication.Local, replication.Session:
		if err := c.readStarts(ctx, p); err != nil {
			return nil, false, err
		}
		if c.tx != nil && c.tx.w != nil && p.cls.Kind == replication.Read {
			res, err := c.tx.w.Exec(ctx, replication.Statement{SQL: p.query, Args: args}, true)
			if err != nil {
				return nil, false, err
			}
			return newBufRows(res), false, nil
		}
		if err := replication.BindArgs(p.s, args); err != nil {
			return nil, false, err
		}
		return newRows(ctx, c, p), true, nil
	case replication.Write:
		res, err := c.write(ctx, replication.Statement{SQL: p.query, Args: args})
		if err != nil {
			return nil, false, err
		}
		return newBufRows(res), false, nil
	default:
		return &bufRows{}, false, c.control(ctx, p.cls, p.query)
	}
}

// readStarts prepares the connection for a local statement: a session
// pragma is remembered for later writes; a read in a transaction opens its
// snapshot; a linearizable read waits for the read index.
func (c *conn) readStarts(ctx context.Context, p *prepared) error {
	cls := p.cls
	if cls.Kind == replication.Session && c.tx == nil {
		c.fk = cls.On
	}
	if c.tx == nil || c.tx.w == nil {
		// Read your writes: a write this node acknowledged may not be
		// applied here yet (cluster/ownwrites.go).
		if err := c.node.c.WaitOwnWrites(ctx); err != nil {
			return err
		}
	}
	if c.tx != nil {
		return c.tx.beginRead()
	}
	if p.linearized {
		return nil
	}
	_, err := c.linearize(ctx)
	return err
}

// linearize waits for the read index when ctx asks for linearizable reads
// outside a transaction, and reports whether it waited.
func (c *conn) linearize(ctx context.Context) (bool, error) {
	if c.tx != nil || consistencyOf(ctx, c.cfg.Consistency) != Linearizable {
		return false, nil
	}
	return true, c.node.c.LinearizableRead(ctx)
}

// execLocal runs every statement of p on the read connection.
func (c *conn) execLocal(ctx context.Context, p *prepared, args []replication.Arg) (err error) {
	old := c.db.SetInterrupt(ctx)
	defer c.db.SetInterrupt(old)
	defer func() { c.retireOnOOM(err) }()
	defer replication.RecoverOOM(&err)
	if !p.multi {
		if err := replication.BindArgs(p.s, args); err != nil {
			return err
		}
		err := replication.ExecGuarded(p.s)
		p.s.ClearBindings()
		return c.local(err)
	}
	return c.local(c.db.Exec(p.query))
}

// local passes on the error of a statement on the local read connection,
// first reporting it to the node: one that says the database file is
// damaged is a fault of this node, not of the statement.
func (c *conn) local(err error) error {
	if err == nil {
		return nil
	}
	return c.node.c.Corrupt(err)
}

// write replicates one write: in the open transaction, or as an autocommit
// command. SQL errors come back as the state machine saw them.
func (c *conn) write(ctx context.Context, st replication.Statement) (replication.Result, error) {
	if c.tx != nil {
		return c.tx.write(ctx, st)
	}
	resp, err := c.node.c.Exec(ctx, c.cfg.Busy, c.origin(), c.flags(ctx), []replication.Statement{st})
	if err != nil {
		return replication.Result{}, err
	}
	if len(resp.Results) == 0 {
		return replication.Result{}, fmt.Errorf("hiqlite: write at index %d returned no result", resp.Index)
	}
	res := resp.Results[len(resp.Results)-1]
	return res, res.Err
}

// control runs transaction control given as SQL.
func (c *conn) control(ctx context.Context, cls replication.Class, query string) error {
	switch cls.Kind {
	case replication.Begin:
		if c.tx != nil {
			return fmt.Errorf("hiqlite: cannot start a transaction within a transaction: %w", sqlite3.ERROR)
		}
		mode := cls.BeginMode
		if mode == "" { // a plain BEGIN takes what _txlock says
			mode = c.cfg.TxLock
		}
		return c.begin(ctx, false, mode)
	case replication.Commit, replication.Rollback:
		if c.tx == nil {
			return fmt.Errorf("hiqlite: cannot %s - no transaction is active: %w", cls.Kind, sqlite3.ERROR)
		}
		if cls.Kind == replication.Commit {
			return c.tx.Commit()
		}
		return c.tx.Rollback()
	case replication.Savepoint, replication.Release, replication.RollbackTo:
		if c.tx == nil {
			return &replication.RefusedError{SQL: query, Reason: "savepoints work inside a transaction; begin one with BEGIN or db.BeginTx first"}
		}
		return c.tx.savepoint(ctx, query)
	}
	return fmt.Errorf("hiqlite: unexpected statement kind %v", cls.Kind)
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	switch lvl := sql.IsolationLevel(opts.Isolation); lvl {
	case sql.LevelDefault, sql.LevelSerializable:
	default:
		return nil, fmt.Errorf("hiqlite: isolation level %v is not supported: SQLite transactions are serializable (use the default or sql.LevelSerializable)", lvl)
	}
	if c.tx != nil {
		return nil, fmt.Errorf("hiqlite: cannot start a transaction within a transaction: %w", sqlite3.ERROR)
	}
	if err := c.begin(ctx, opts.ReadOnly, c.cfg.TxLock); err != nil {
		return nil, err
	}
	return c.tx, nil
}

// begin opens the connection's transaction. A read-only one is always
// deferred: it only ever reads locally. An immediate or exclusive one takes
// the leader's write slot now, with no snapshot to check, so it cannot fail
// with SQLITE_BUSY_SNAPSHOT later.
func (c *conn) begin(ctx context.Context, readOnly bool, mode string) error {
	t := c.newTx(readOnly)
	if readOnly || mode == "deferred" {
		return nil
	}
	if err := t.promote(ctx); err != nil {
		c.tx = nil
		return err
	}
	return nil
}

// result is a statement's driver.Result: a write's, or zero for anything
// else (database/sql's driver.RowsAffected would make LastInsertId fail).
type result struct{ lastInsertID, rowsAffected int64 }

func (r result) LastInsertId() (int64, error) { return r.lastInsertID, nil }
func (r result) RowsAffected() (int64, error) { return r.rowsAffected, nil }
