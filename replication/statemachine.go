package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/ncruces/go-sqlite3"
)

// Errors of the state machine.
var (
	// ErrInterrupted: Interrupt cut short the entry being applied (the
	// node is closing). The entry is not recorded as applied, here or as
	// the command's own error: the next start applies it again, as every
	// other node applies it.
	ErrInterrupted = errors.New("hiqlite: apply interrupted by Close; the entry is applied again at the next start")
)

// metaSchema is the state machine's own bookkeeping, updated in the same
// SQLite transaction as every command it applies.
//
// applied_index is the Raft index of the last command in the database;
// seen_index that of the last entry the state machine was given, command or
// configuration change, so that a restart or a snapshot install knows how
// far the database got without counting configuration entries as missing.
const metaSchema = `CREATE TABLE IF NOT EXISTS _hiqlite_state(
	id INTEGER PRIMARY KEY CHECK (id = 1),
	applied_index INTEGER NOT NULL,
	applied_term INTEGER NOT NULL,
	seen_index INTEGER NOT NULL
);
INSERT OR IGNORE INTO _hiqlite_state VALUES (1, 0, 0, 0);`

// StateMachine is the deterministic SQLite state machine. It owns the only
// write connection to the database file and implements raft.FSM.
//
// # Lock protocol
//
// mu guards the writer, the reference connection, env, the statement cache,
// the session mirror and statements, the guard, pending and fkOn. Raft's FSM goroutine takes it in Apply, Snapshot and
// Restore; the leader's transaction owner takes it per statement in BeginTx,
// ExecTx and RollbackTx. No method holds mu while waiting for anything other
// than SQLite. applied and fault are atomics, readable without mu.
type StateMachine struct {
	path     string
	memory   bool     // the database is in memory (OpenMemory); path is its URI
	connInit ConnInit // Options.ConnInit

	mu      sync.Mutex
	w       *sqlite3.Conn // the writer
	ref     *sqlite3.Conn // untouched built-ins for the deterministic functions
	env     *Env
	cache   map[string]*sqlite3.Stmt
	setMeta *sqlite3.Stmt
	setSeen *sqlite3.Stmt
	fkOn    bool
	pending *pendingTx
	closed  bool
	batch   batch    // the group commit of the ApplyBatch call in progress
	nt      notifier // hiqlite_notify (notify.go)
	// guard keeps client SQL off internal objects (internal.go); it is
	// enforced only while execText runs a command's statements.
	guard Guard

	// sess mirrors _hiqlite_sessions (sessions.go); getResults reads a
	// session's recorded results, updSession and putSession write its row.
	sess                               sessionMirror
	getResults, updSession, putSession *sqlite3.Stmt
	// ctl holds the writer's transaction control statements, prepared once
	// (parsing them per command cost a tenth of the apply CPU).
	ctl map[string]*sqlite3.Stmt

	// stopping ends with Interrupt; it is the writer's interrupt context
	// whenever no transaction statement sets its own.
	stopping  context.Context
	interrupt context.CancelFunc

	applied atomic.Uint64 // index of the last command in the database
	seen    atomic.Uint64 // index of the last entry applied, command or not
	// logBytes counts the bytes of the entries applied since the last
	// snapshot (or since start); see LogBytes.
	logBytes   atomic.Uint64
	logEntries atomic.Uint64 // the number of those entries
	logLimit   uint64        // logBytes that make logFull fire; 0 = never
	logFull    chan struct{} // buffered 1; see LogFull
	fault      atomic.Pointer[error]
	stopped    chan struct{} // closed with the first fault; see Stopped
	stopOnce   sync.Once

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced whenever seen moves
}

// pendingTx is an interactive write transaction open on the writer: the
// statements it ran, so that COMMIT can replicate them.
type pendingTx struct {
	origin Origin
	time   int64
	seed   uint64
	flags  Flags
	stmts  []Statement
	size   int         // statementsSize(stmts)
	intr   txInterrupt // the writer's interrupt context for its statements
}

// Options configure a state machine; they are fixed at Open.
type Options struct {
	// NotifySink receives the notifications of each committed
	// transaction, in order. It is called on raft's FSM goroutine (or the
	// leader's transaction owner) with the state machine locked, right
	// after the COMMIT: it must not block nor call the state machine. It
	// owns the slice. Nil: notifications are dropped.
	NotifySink func([]Notification)
	// LogLimit makes LogFull signal once the entries applied since the
	// last snapshot add up to LogLimit bytes or more (the log-size
	// compaction threshold). 0: never.
	LogLimit uint64
	// ConnInit, when set, registers the application's functions and
	// collations on the writer and on every other connection the state
	// machine opens on the database (see installConnInit).
	ConnInit ConnInit
}

// Open opens (creating if needed) the database at path as a state machine.
// It checks the database first (PRAGMA quick_check): for a damaged one it
// fails with an error that IsCorrupt recognises.
func Open(path string, opts Options) (*StateMachine, error) {
	w, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: open state database %s: %w", path, err)
	}
	sm := &StateMachine{path: path, w: w, env: newEnv(), cache: map[string]*sqlite3.Stmt{}, waitCh: make(chan struct{}), stopped: make(chan struct{}),
		logLimit: opts.LogLimit, connInit: opts.ConnInit}
	if opts.LogLimit > 0 {
		sm.logFull = make(chan struct{}, 1)
	}
	sm.nt.sink = opts.NotifySink
	// The state machine's own statements pass; execText enforces the guard
	// for client SQL. MigrationsTable is Migrate's, not the state machine's:
	// each command says whether it may write it (FlagNotMigrate).
	sm.guard = Guard{suspended: true, Migrations: true}
	sm.stopping, sm.interrupt = context.WithCancel(context.Background())
	w.SetInterrupt(sm.stopping)
	if err := sm.init(); err != nil {
		sm.closeConns()
		return nil, err
	}
	return sm, nil
}

func (sm *StateMachine) init() error {
	// synchronous=NORMAL in WAL mode: a crash can lose the last commits of
	// the database but never corrupts it; the Raft log (fsynced) holds them
	// and the applied index tells which to replay.
	if err := sm.w.Exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;`); err != nil {
		return fmt.Errorf("hiqlite: configure state database: %w", err)
	}
	// Defensive mode: no statement may corrupt the database on purpose
	// (writable_schema, writes to virtual tables' shadow tables such as
	// FTS5's, sqlite_dbpage). Such a statement is that command's error on
	// every node; corruption it could cause would stop every node.
	if _, err := sm.w.Config(sqlite3.DBCONFIG_DEFENSIVE, true); err != nil {
		return fmt.Errorf("hiqlite: configure state database: %w", err)
	}
	// The application's functions and collations come before anything
	// reads the schema, which may use them (an index with a collation of
	// the application's, a generated column calling one of its functions);
	// hiqlite's own, registered below, replace any of the same name.
	if err := installConnInit(sm.w, sm.connInit); err != nil {
		return err
	}
	// A damaged database is found before anything is applied to it: the
	// caller moves it aside and rebuilds it (see IsCorrupt).
	if err := quickCheck(sm.w, sm.path); err != nil {
		return err
	}
	if err := sm.w.Exec(metaSchema); err != nil {
		return fmt.Errorf("hiqlite: create state table: %w", err)
	}
	// After quick_check, which needs no module (see RegisterFeatures).
	if err := RegisterFeatures(sm.w); err != nil {
		return err
	}
	ref, err := sqlite3.Open(":memory:")
	if err != nil {
		return err
	}
	sm.ref = ref
	if err := installDeterministic(sm.w, sm.ref, sm.env); err != nil {
		return fmt.Errorf("hiqlite: install deterministic functions: %w", err)
	}
	if err := sm.installNotify(); err != nil {
		return err
	}
	sm.setMeta, _, err = sm.w.PrepareFlags(`UPDATE _hiqlite_state SET applied_index = ?1, applied_term = ?2, seen_index = ?3 WHERE id = 1`, sqlite3.PREPARE_PERSISTENT)
	if err != nil {
		return err
	}
	sm.setSeen, _, err = sm.w.PrepareFlags(`UPDATE _hiqlite_state SET seen_index = ? WHERE id = 1`, sqlite3.PREPARE_PERSISTENT)
	if err != nil {
		return err
	}
	if err := sm.prepareSessions(); err != nil {
		return err
	}
	return sm.loadState()
}

// loadState sets the applied and seen indexes from the database.
func (sm *StateMachine) loadState() error {
	st, err := readState(sm.w)
	if err != nil {
		return err
	}
	sm.applied.Store(st.applied)
	sm.seen.Store(max(st.seen, st.applied))
	return nil
}

// dbState is the row of _hiqlite_state.
type dbState struct {
	applied, term, seen uint64
}

// readState reads _hiqlite_state on conn (in its current transaction, if
// any).
func readState(conn *sqlite3.Conn) (st dbState, err error) {
	stmt, _, err := conn.Prepare(`SELECT applied_index, applied_term, seen_index FROM _hiqlite_state WHERE id = 1`)
	if err != nil {
		return st, err
	}
	defer stmt.Close()
	if stmt.Step() {
		st = dbState{uint64(stmt.ColumnInt64(0)), uint64(stmt.ColumnInt64(1)), uint64(stmt.ColumnInt64(2))}
	}
	return st, stmt.Err()
}

// ReadAppliedIndex returns the applied index as seen by conn's current
// read transaction: with a read transaction open, it is the index of the
// snapshot that transaction reads.
func ReadAppliedIndex(conn *sqlite3.Conn) (uint64, error) {
	st, err := readState(conn)
	return st.applied, err
}

// ResetIndex forgets the applied index, for a database that outlived its
// Raft log: the entries of a new log must all apply to it.
func (sm *StateMachine) ResetIndex() error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if err := sm.w.Exec(`UPDATE _hiqlite_state SET applied_index = 0, applied_term = 0, seen_index = 0`); err != nil {
		return err
	}
	sm.applied.Store(0)
	sm.seen.Store(0)
	return nil
}

// Interrupt stops the statement the writer runs now, and every later one,
// so that a closing node need not wait for a long write: call it before
// raft's Shutdown, which waits for the entry being applied. The entry is
// left unapplied (the state machine stops with ErrInterrupted) and is
// applied again at the next start. It may be called from any goroutine;
// only Close should call it.
func (sm *StateMachine) Interrupt() { sm.interrupt() }

// interrupted: err is the writer's interruption by Interrupt.
func (sm *StateMachine) interrupted(err error) bool {
	return sm.stopping.Err() != nil && errors.Is(err, sqlite3.INTERRUPT)
}

// Path is the database file.
func (sm *StateMachine) Path() string { return sm.path }

// AppliedIndex is the Raft index of the last command in the database.
func (sm *StateMachine) AppliedIndex() uint64 { return sm.applied.Load() }

// SeenIndex is the Raft index of the last entry applied, command or
// configuration change.
func (sm *StateMachine) SeenIndex() uint64 { return sm.seen.Load() }

// Fault returns the error that stopped the state machine, or nil.
func (sm *StateMachine) Fault() error {
	if p := sm.fault.Load(); p != nil {
		return *p
	}
	return nil
}

// WaitApplied blocks until the state machine has applied the Raft log up
// to index (command or not), done is closed, or the state machine stops.
func (sm *StateMachine) WaitApplied(index uint64, done <-chan struct{}) error {
	for {
		sm.waitMu.Lock()
		ch := sm.waitCh
		sm.waitMu.Unlock()
		if err := sm.Fault(); err != nil {
			return err
		}
		if sm.seen.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-done:
			return errors.New("hiqlite: gave up waiting for the state machine")
		}
	}
}

// broadcast wakes every WaitApplied.
func (sm *StateMachine) broadcast() {
	sm.waitMu.Lock()
	close(sm.waitCh)
	sm.waitCh = make(chan struct{})
	sm.waitMu.Unlock()
}

// Stop stops the state machine for a fault of its node outside it, such as
// Raft failing to persist its state: it applies nothing more, WaitApplied
// returns, and Fault reports cause wrapped in ErrStopped, as after a fault
// of its own. The first fault stays.
func (sm *StateMachine) Stop(cause error) error { return sm.stop(cause) }

func (sm *StateMachine) stop(err error) error {
	if IsCorrupt(err) {
		err = sm.corruptFault(err)
	}
	err = fmt.Errorf("%w: %w", nodeerr.ErrStopped, err)
	sm.fault.CompareAndSwap(nil, &err)
	sm.stopOnce.Do(func() { close(sm.stopped) })
	sm.broadcast()
	return err
}

// Stopped is closed once the state machine stops (Fault is then set).
func (sm *StateMachine) Stopped() <-chan struct{} { return sm.stopped }

// Response is what Apply returns for a command: the result of each SQL
// statement that ran, or Err when the command as a whole failed.
type Response struct {
	Index   uint64
	Results []Result
	Err     error
	// Duplicate: the command was a copy of its origin's write, applied
	// before at Index; Results are the recorded ones.
	Duplicate bool
	// NotApplied: the origin's write was not applied and never will be
	// (a KindFence, or a copy that came too late; Err is then ErrNotApplied).
	NotApplied bool
	// Batch holds the responses of a KindBatch's commands, in order; Err
	// is then set only when the entry failed as a whole (a node fault),
	// which fails every command in it.
	Batch []*Response
}

// setForeignKeys sets PRAGMA foreign_keys on the writer, outside any
// transaction (inside one it would do nothing).
func (sm *StateMachine) setForeignKeys(fk bool) error {
	if fk == sm.fkOn {
		return nil
	}
	q := `PRAGMA foreign_keys=OFF`
	if fk {
		q = `PRAGMA foreign_keys=ON`
	}
	if err := sm.w.Exec(q); err != nil {
		return err
	}
	sm.fkOn = fk
	return nil
}

// begin opens the writer's transaction for a command.
func (sm *StateMachine) begin(t int64, seed uint64, flags Flags) error {
	if err := sm.setForeignKeys(flags&FlagForeignKeys != 0); err != nil {
		return err
	}
	sm.env.Reset(time.Unix(0, t), seed)
	sm.w.SetLastInsertRowID(0)
	return sm.w.Exec(`BEGIN IMMEDIATE`)
}

// commitMeta records index in the open transaction and commits. A statement
// may have ended the transaction (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)); the
// index is then recorded in a transaction of its own.
func (sm *StateMachine) commitMeta(index, term uint64) error {
	if err := sm.ensureTx(); err != nil {
		return err
	}
	if err := sm.setMeta.BindInt64(1, int64(index)); err != nil {
		return err
	}
	if err := sm.setMeta.BindInt64(2, int64(term)); err != nil {
		return err
	}
	if err := sm.setMeta.BindInt64(3, int64(max(index, sm.seen.Load()))); err != nil {
		return err
	}
	if err := sm.setMeta.Exec(); err != nil {
		return err
	}
	return sm.commitTx(index)
}

// execCtl runs a transaction control statement (BEGIN IMMEDIATE, COMMIT,
// SAVEPOINT, RELEASE) on the writer from a prepared statement.
func (sm *StateMachine) execCtl(sql string) error {
	st := sm.ctl[sql]
	if st == nil {
		var err error
		if st, _, err = sm.w.PrepareFlags(sql, sqlite3.PREPARE_PERSISTENT); err != nil {
			return err
		}
		if sm.ctl == nil {
			sm.ctl = map[string]*sqlite3.Stmt{}
		}
		sm.ctl[sql] = st
	}
	err := st.Exec()
	st.Reset()
	return err
}

// ensureTx opens a transaction on the writer unless one is open: a
// statement may have ended the command's (ON CONFLICT ROLLBACK,
// RAISE(ROLLBACK)).
func (sm *StateMachine) ensureTx() error {
	if sm.w.GetAutocommit() {
		return sm.w.Exec(`BEGIN IMMEDIATE`)
	}
	return nil
}

// execText runs every SQL statement of st.SQL in order, as SQLite's
// sqlite3_exec does; arguments bind to the first statement only when the
// text holds one statement. It returns the result of the last statement.
//
// A statement that writes _hiqlite_sessions makes the session mirror stale
// and is not kept prepared, so that each run of it is seen again.
//
// The statements are client SQL: the guard refuses, as their error, those
// that would change an internal object (internal.go).
//
// A text that is one whole transaction (BEGIN; ...; COMMIT;, see
// TransactionBody) runs its statements in a savepoint of their own, rolled
// back when one fails: the text applies whole or not at all, as on SQLite.
func (sm *StateMachine) execText(st Statement) (Result, error) {
	// first, the first statement of what runs, is lexed here once: the check before
	// its prepare classifies what was read. A text in the statement cache is
	// not lexed at all (a transaction of 10,000 inserts of one text lexed it
	// 10,000 times on every node): it was cached as one statement that
	// checkReplicable let through, so it is no BEGIN, and transactionBody
	// would find it no whole transaction.
	var (
		body   string
		first  parsedStmt
		atomic bool
	)
	if sm.cache[st.SQL] == nil {
		var err error
		if body, first, atomic, err = transactionBody(st.SQL); err != nil {
			return Result{}, err
		}
	}
	if atomic {
		if err := sm.execCtl(`SAVEPOINT ` + textSavepoint); err != nil {
			return Result{}, err
		}
		st.SQL = body
	}
	sm.sess.touched = false
	sm.guard.denied, sm.guard.suspended = "", false
	res, err := sm.execTextGuarded(st, &first)
	sm.guard.suspended = true
	if atomic && !sm.w.GetAutocommit() && !isNodeFault(err) {
		if err != nil {
			if cerr := sm.execCtl(`ROLLBACK TO ` + textSavepoint); cerr != nil {
				return res, cerr
			}
		}
		if cerr := sm.execCtl(`RELEASE ` + textSavepoint); cerr != nil {
			return res, cerr
		}
	}
	err = sm.guard.Check(err)
	if sm.sess.touched {
		sm.sess.touched = false
		sm.sess.stale = true
		if stmt := sm.cache[st.SQL]; stmt != nil {
			stmt.Close()
			delete(sm.cache, st.SQL)
		}
	}
	return res, err
}

// execTextCached runs st.SQL; parsed is its first statement, as parseStatement read it.
func (sm *StateMachine) execTextCached(st Statement, parsed *parsedStmt) (Result, error) {
	var res Result
	if stmt := sm.cache[st.SQL]; stmt != nil {
		return res, sm.execOne(stmt, st.Args, &res)
	}
	sql := st.SQL
	for first := true; ; first = false {
		// Check before preparing: preparing a PRAGMA already applies it.
		if !first {
			p := parseStatement(sql)
			parsed = &p
		}
		if err := checkReplicable(sql, parsed); err != nil {
			return res, err
		}
		stmt, tail, err := sm.w.Prepare(sql)
		if err != nil {
			return res, err
		}
		if stmt == nil { // only white space or comments left
			return res, nil
		}
		single := first && IsBlank(tail)
		args := st.Args
		if !single && len(args) > 0 {
			stmt.Close()
			return res, errors.New("hiqlite: arguments cannot be bound to a text of several statements")
		}
		if single && len(sm.cache) < 512 {
			sm.cache[st.SQL] = stmt
			return res, sm.execOne(stmt, args, &res)
		}
		res = Result{}
		err = sm.execOne(stmt, args, &res)
		stmt.Close()
		if err != nil || IsBlank(tail) {
			return res, err
		}
		sql = tail
	}
}

// execOne runs one prepared statement into res. RowsAffected counts the
// rows the statement itself changed: sqlite3_changes keeps the count of the
// last INSERT, UPDATE or DELETE across statements that are none (DDL, CREATE
// TABLE ... AS), and that count would come from this node's history (the
// bookkeeping of the previous command, or a transaction the leader rolled
// back), which differs between nodes; the recorded results must not.
func (sm *StateMachine) execOne(stmt *sqlite3.Stmt, args []Arg, res *Result) error {
	before := sm.w.TotalChanges()
	mark := sm.nt.seq
	err := runStmtGuarded(stmt, args, res)
	stmt.Reset()
	stmt.ClearBindings()
	if err != nil {
		suspended := sm.guard.suspended
		sm.guard.suspended = true // statementFailed runs the state machine's own SQL
		cerr := sm.statementFailed(mark)
		sm.guard.suspended = suspended
		if cerr != nil {
			return cerr
		}
	}
	if err == nil && sm.w.TotalChanges() != before {
		res.RowsAffected = sm.w.Changes()
		if res.RowsAffected != 0 {
			res.LastInsertID = sm.w.LastInsertRowID()
		}
	}
	return err
}

// BeginTx opens an interactive write transaction on the writer for origin,
// with the command time and seed that COMMIT will replicate. The caller holds
// the exclusive write slot, so nothing else is applied while it is open,
// except entries of another leader (which abort it).
func (sm *StateMachine) BeginTx(origin Origin, t int64, seed uint64, flags Flags) error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if err := sm.usable(); err != nil {
		return err
	}
	if sm.pending != nil {
		return errors.New("hiqlite: a write transaction is already open on the writer")
	}
	if err := sm.begin(t, seed, flags); err != nil {
		if isNodeFault(err) {
			return sm.stop(err)
		}
		return err
	}
	sm.pending = &pendingTx{origin: origin, time: t, seed: seed, flags: flags}
	sm.nt.index = 0 // filled in by the command that commits it
	return nil
}

// ExecTx runs one statement in origin's open transaction and returns its
// result. Reads (readOnly) see the transaction's writes and are not
// recorded; writes are recorded for COMMIT, failed or not.
//
// When ctx ends while the statement runs, SQLite is interrupted and the
// whole transaction rolled back (as SQLite itself does for an interrupted
// write inside a transaction); the error matches both ErrTxAborted and
// ctx's error.
func (sm *StateMachine) ExecTx(ctx context.Context, origin Origin, st Statement, readOnly bool) (Result, error) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if err := sm.usable(); err != nil {
		return Result{}, err
	}
	p := sm.pending
	if p == nil || p.origin != origin {
		return Result{}, nodeerr.ErrTxAborted
	}
	if err := CheckSize(p.size, []Statement{st}); err != nil {
		// Not run and not recorded: the transaction goes on without it.
		return Result{}, err
	}
	if readOnly {
		sm.env.SetLive(true)
		defer sm.env.SetLive(false)
	}
	before := sm.w.TotalChanges()
	var res Result
	var err error
	sm.guard.Migrations = p.flags&FlagNotMigrate == 0
	if ctx.Done() != nil {
		// Interrupted by ctx, or by Interrupt.
		old := sm.w.SetInterrupt(p.intr.get(ctx, sm.stopping))
		res, err = sm.execText(st)
		sm.w.SetInterrupt(old)
	} else {
		res, err = sm.execText(st)
	}
	if err != nil && (ctx.Err() != nil || sm.interrupted(err)) {
		// Interrupted: not a fault of this node, but the transaction's
		// state is no longer what its statements say.
		sm.abortPending()
		why := ctx.Err()
		if why == nil {
			why = ErrInterrupted
		}
		return res, fmt.Errorf("%w: the statement was interrupted: %w", nodeerr.ErrTxAborted, why)
	}
	if readOnly && sm.w.TotalChanges() != before {
		// The caller's classification was wrong: what changed rows must
		// be replicated, or the nodes would diverge.
		readOnly = false
	}
	if isNodeFault(err) {
		sm.abortPending()
		return res, sm.stop(err)
	}
	if !readOnly {
		st.Failed = err != nil
		p.stmts = append(p.stmts, st)
		p.size += statementsSize([]Statement{st})
	}
	if sm.w.GetAutocommit() {
		// SQLite ended the transaction (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)).
		sm.endPending()
		if err == nil {
			err = nodeerr.ErrTxAborted
		}
		return res, fmt.Errorf("%w: %w", nodeerr.ErrTxAborted, err)
	}
	return res, err
}

// CommitCommand returns the command that commits origin's open transaction.
// The transaction stays open on the writer until that command is applied.
func (sm *StateMachine) CommitCommand(origin Origin) (*Command, error) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	p := sm.pending
	if p == nil || p.origin != origin {
		return nil, nodeerr.ErrTxAborted
	}
	return &Command{Kind: KindTx, Time: p.time, Seed: p.seed, Origin: p.origin, Flags: p.flags, Stmts: p.stmts}, nil
}

// RollbackTx rolls back origin's open transaction, if it is still open.
func (sm *StateMachine) RollbackTx(origin Origin) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if p := sm.pending; p != nil && p.origin == origin {
		sm.abortPending()
	}
}

func (sm *StateMachine) abortPending() {
	if sm.pending == nil {
		return
	}
	sm.endPending()
	if !sm.w.GetAutocommit() {
		if err := sm.w.Exec(`ROLLBACK`); err != nil && isNodeFault(err) {
			sm.stop(err)
		}
	}
}

func (sm *StateMachine) usable() error {
	if sm.closed {
		return errors.New("hiqlite: state machine closed")
	}
	return sm.Fault()
}

// Close rolls back any open transaction and closes the connections.
func (sm *StateMachine) Close() error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.closed {
		return nil
	}
	sm.closed = true
	sm.abortPending()
	return sm.closeConns()
}

func (sm *StateMachine) closeConns() error {
	for _, s := range sm.cache {
		s.Close()
	}
	sm.cache = nil
	sm.nt.close()
	for _, st := range sm.ctl {
		st.Close()
	}
	sm.ctl = nil
	for _, st := range []*sqlite3.Stmt{sm.setMeta, sm.setSeen, sm.getResults, sm.updSession, sm.putSession} {
		if st != nil {
			st.Close()
		}
	}
	// The functions' cached statements on ref must go before ref itself.
	errs := []error{sm.env.Close()}
	if sm.ref != nil {
		errs = append(errs, sm.ref.Close())
	}
	errs = append(errs, sm.w.Close())
	return errors.Join(errs...)
}

var _ raft.BatchingFSM = (*StateMachine)(nil)

// textSavepoint is the savepoint around the statements of a text that is
// one whole transaction.
const textSavepoint = `_hiqlite_text`

// checkReplicable refuses, as a second line of defence behind the driver's
// classification, statements that must never run on the writer: refused
// ones, and transaction control, which the state machine owns. It does not
// trust the client's classification, which the command does not carry.
//
// st is the first statement of sql, the text about to be prepared, as parseStatement
// read it: the statement is classified here, once, from what was read.
func checkReplicable(sql string, st *parsedStmt) error {
	cls, _, err := st.classifySQL()
	if err != nil {
		return err
	}
	switch cls.Kind {
	case Begin, Commit, Rollback:
		return &RefusedError{SQL: sql, Reason: "transaction control inside a replicated write; use BEGIN/COMMIT as statements of their own, or db.BeginTx"}
	case Local:
		switch cls.Pragma {
		case "journal_mode", "synchronous", "temp_store", "mmap_size":
			// Settings of the local reader: on the writer they would outlast the write.
			return &RefusedError{SQL: sql, Reason: "PRAGMA " + cls.Pragma + " applies to the local reader; run it in a text without writes"}
		}
	}
	return nil
}
