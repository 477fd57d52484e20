package replication

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// detNowLayout is how the command time replaces 'now'. The trailing Z marks
// the value as UTC, as SQLite marks its own 'now': without it the 'utc'
// modifier would treat the time as local and shift it by the node's offset,
// where datetime('now','utc') leaves 'now' unchanged.
const detNowLayout = "2006-01-02 15:04:05.000Z"

// errEnvClosed is the error of a replaced function called after Env.Close.
var errEnvClosed = errors.New("hiqlite: deterministic function called after Env.Close")

// Env is what the deterministic SQL functions installed by
// [installDeterministic] read: the time and the random seed of the command
// being applied, and whether they run in live mode.
//
// # Contract
//
// Env has no lock of its own. The state machine owns it together with the
// writer and the reference connection, and touches all three only under its
// writer lock (StateMachine.mu): it calls [Env.Reset] before preparing and
// executing a command's statements, [Env.SetLive] around statements that are
// not replicated, and SQLite calls the installed functions from inside the
// writer's Prepare and Step, on the goroutine holding that lock. Nothing here
// blocks or starts goroutines.
//
// Env caches prepared statements on the reference connection; [Env.Close]
// finalizes them and must be called before the reference connection is
// closed (SQLite refuses to close a connection with live statements).
type Env struct {
	now     time.Time     // command time: UTC, millisecond precision
	nowText string        // now in detNowLayout
	rng     *rand.ChaCha8 // keyed from the command's seed
	live    bool
	uuid7   uuid7State // the command's last uuid7; cleared by Reset

	ref    *sqlite3.Conn
	stmts  map[detKey]*sqlite3.Stmt
	memo   map[string]string // current_* results for now; cleared by Reset
	closed bool
}

// uuid7State is the random part of the last version 7 UUID of a command:
// rand_a (12 bits) and rand_b (62 bits), read as one 74-bit counter.
type uuid7State struct {
	ok   bool
	a, b uint64
}

// detKey names a cached statement on the reference connection: a built-in
// called with nArg parameters.
type detKey struct {
	name string
	nArg int
}

// newEnv returns an Env in command mode at the Unix epoch with seed 0, so a
// state machine that forgets Reset is still deterministic.
func newEnv() *Env {
	e := &Env{
		rng:   rand.NewChaCha8([32]byte{}),
		stmts: map[detKey]*sqlite3.Stmt{},
		memo:  map[string]string{},
	}
	e.Reset(time.Unix(0, 0), 0)
	return e
}

// Reset starts a command: 'now' becomes now (the leader's clock, truncated
// to milliseconds as SQLite's own 'now' is, in UTC) and the PRNG restarts
// from seed. The PRNG is ChaCha8 keyed with the SHA-256 of the seed's 8
// little-endian bytes; both are specified outside Go, so every Go version
// and every node produce the same sequence.
func (e *Env) Reset(now time.Time, seed uint64) {
	e.now = now.UTC().Truncate(time.Millisecond)
	e.nowText = e.now.Format(detNowLayout)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	e.rng.Seed(sha256.Sum256(b[:]))
	clear(e.memo)
	e.uuid7 = uuid7State{}
}

// SetLive switches live mode. In live mode every replaced function behaves
// exactly as SQLite's built-in, with the real clock and real randomness; the
// state machine uses it for read-only statements inside a write transaction,
// which are not replicated. SetLive(false) restores command mode.
func (e *Env) SetLive(live bool) { e.live = live }

// Now returns the command time as SQL sees it: UTC, millisecond precision.
func (e *Env) Now() time.Time { return e.now }

// Close finalizes the statements cached on the reference connection. Call it
// before closing that connection; the installed functions fail afterwards.
// Close is idempotent.
func (e *Env) Close() error {
	e.closed = true
	var errs []error
	for k, s := range e.stmts {
		errs = append(errs, s.Close())
		delete(e.stmts, k)
	}
	return errors.Join(errs...)
}

// installDeterministic replaces SQLite's non-deterministic built-ins on
// writer with functions that read env: current_timestamp, current_date,
// current_time, date, time, datetime, julianday, unixepoch, strftime,
// timediff, random and randomblob; and the UUID functions of
// [RegisterFeatures] (uuid4, gen_random_uuid, uuid7, uuid).
//
// In command mode (the default) 'now', wherever SQLite reads a time value
// (and the no-argument forms), is the command time of the last [Env.Reset],
// and random/randomblob draw from the command's PRNG, as do the UUID
// functions, whose version 7 takes the command time for its timestamp. Date and time functions
// are evaluated by the real built-in on ref, with only 'now' swapped for the
// command time, so every modifier keeps SQLite's exact semantics and result
// type, and ref's errors become the function's error. In live mode
// ([Env.SetLive]) every call is evaluated on ref unchanged.
//
// ref must be a connection with SQLite's untouched built-ins (for example
// sqlite3.Open(":memory:")), used for nothing else. The caller owns writer
// and ref, uses them only under the lock that guards env (see [Env]), and at
// shutdown calls env.Close before ref.Close. One Env serves one ref; it may
// be installed on several writers that share its lock.
//
// Flags mirror the built-ins. date, time, datetime, julianday, unixepoch,
// strftime and timediff are INNOCUOUS|DETERMINISTIC, so they keep working in
// schemas (expression indexes, generated columns, CHECK). current_*,
// random/randomblob and the UUID functions are INNOCUOUS only: like the built-ins they may appear in
// DEFAULT clauses but not in indexes or generated columns. (Marking
// current_* DETERMINISTIC would let the writer accept a generated column
// that every other connection then rejects as a malformed schema.)
//
// Known differences from the built-ins, all in command mode: 'now',
// 'localtime' and 'utc' inside an index expression or generated column are
// evaluated instead of failing with "non-deterministic use of date()" (a
// function cannot tell where it is called from); and 'localtime' reads the
// node's time zone, so it is deterministic only if all nodes share one.
// SQLite (built with STAT4) may also call the DETERMINISTIC functions while
// preparing a statement, to estimate selectivity: such calls see the Env of
// that moment, so Reset before preparing a command's statements.
func installDeterministic(writer, ref *sqlite3.Conn, env *Env) error {
	if writer == nil || ref == nil || env == nil {
		return errors.New("hiqlite: installDeterministic needs a writer, a reference connection and an Env")
	}
	if writer == ref {
		return errors.New("hiqlite: the reference connection must not be the writer")
	}
	if env.ref != nil && env.ref != ref {
		return errors.New("hiqlite: Env is already installed with another reference connection")
	}
	if env.closed {
		return errEnvClosed
	}
	env.ref = ref

	const pure = sqlite3.INNOCUOUS | sqlite3.DETERMINISTIC
	funcs := []struct {
		name string
		nArg int
		flag sqlite3.FunctionFlag
		fn   sqlite3.ScalarFunction
	}{
		{"current_timestamp", 0, sqlite3.INNOCUOUS, env.current("current_timestamp", "datetime")},
		{"current_date", 0, sqlite3.INNOCUOUS, env.current("current_date", "date")},
		{"current_time", 0, sqlite3.INNOCUOUS, env.current("current_time", "time")},
		{"date", -1, pure, env.timeFunc("date", 0)},
		{"time", -1, pure, env.timeFunc("time", 0)},
		{"datetime", -1, pure, env.timeFunc("datetime", 0)},
		{"julianday", -1, pure, env.timeFunc("julianday", 0)},
		{"unixepoch", -1, pure, env.timeFunc("unixepoch", 0)},
		{"strftime", -1, pure, env.timeFunc("strftime", 1)},
		{"timediff", 2, pure, env.timediff},
		{"random", 0, sqlite3.INNOCUOUS, env.random},
		{"randomblob", 1, sqlite3.INNOCUOUS, env.randomblob},
	}
	for _, f := range funcs {
		fn := func(ctx sqlite3.Context, args ...sqlite3.Value) {
			defer GuardOOM(ctx)
			if env.closed {
				ctx.ResultError(errEnvClosed)
				return
			}
			f.fn(ctx, args...)
		}
		if err := writer.CreateFunction(f.name, f.nArg, f.flag, fn); err != nil {
			return fmt.Errorf("hiqlite: replace %s(): %w", f.name, err)
		}
	}
	return registerUUID(writer, env.uuid)
}

// uuid returns a UUID of version ver (4 or 7) for the command: its random
// bits from the command's PRNG and, for version 7, the command time in
// milliseconds as its timestamp. The version 7 UUIDs of one command
// increase in the order they are made (RFC 9562 §6.2, method 2): the first
// draws its 74 random bits with the top one clear, each next one adds a
// random 32-bit step plus one, so a command never runs out. Commands with
// the same millisecond order their UUIDs at random, as two writers would.
// In live mode it is a UUID of the node's clock and randomness.
func (e *Env) uuid(ver int) string {
	if e.live {
		return localUUID(ver)
	}
	if ver == 4 {
		return formatUUID(4, 0, e.rng.Uint64(), e.rng.Uint64())
	}
	const bBits = 62
	u := &e.uuid7
	if !u.ok {
		*u = uuid7State{ok: true, a: e.rng.Uint64() & 0x7ff, b: e.rng.Uint64() & (1<<bBits - 1)}
	} else {
		u.b += e.rng.Uint64()>>32 + 1
		if u.b >= 1<<bBits {
			u.b -= 1 << bBits
			u.a++
		}
	}
	return formatUUID(7, e.now.UnixMilli(), u.a, u.b)
}

// current returns current_timestamp, current_date or current_time: in
// command mode base(now), computed once per command.
func (e *Env) current(name, base string) sqlite3.ScalarFunction {
	return func(ctx sqlite3.Context, args ...sqlite3.Value) {
		if e.live {
			e.evalLive(ctx, name, args)
			return
		}
		if s, ok := e.memo[name]; ok {
			ctx.ResultText(s)
			return
		}
		stmt, ok := e.evalStmt(ctx, base, nil, 0, 0, true)
		if !ok {
			return
		}
		defer stmt.Reset()
		if stmt.ColumnType(0) != sqlite3.TEXT {
			detResult(ctx, stmt) // NULL for a time SQLite cannot represent
			return
		}
		s := stmt.ColumnText(0)
		e.memo[name] = s
		ctx.ResultText(s)
	}
}

// timeFunc returns one of the variadic date and time functions whose time
// value is argument first (0, or 1 for strftime); when the call stops
// before it, the time value is 'now'.
func (e *Env) timeFunc(name string, first int) sqlite3.ScalarFunction {
	return func(ctx sqlite3.Context, args ...sqlite3.Value) {
		if e.live {
			e.evalLive(ctx, name, args)
			return
		}
		e.eval(ctx, name, args, first, first+1, len(args) == first)
	}
}

// timediff: both arguments are time values.
func (e *Env) timediff(ctx sqlite3.Context, args ...sqlite3.Value) {
	if e.live {
		e.evalLive(ctx, "timediff", args)
		return
	}
	e.eval(ctx, "timediff", args, 0, 2, false)
}

// random returns a 64-bit random integer. Like SQLite, a negative draw r
// becomes -(r & MaxInt64), so the result is never math.MinInt64 (whose abs()
// would overflow).
func (e *Env) random(ctx sqlite3.Context, args ...sqlite3.Value) {
	if e.live {
		e.evalLive(ctx, "random", args)
		return
	}
	r := int64(e.rng.Uint64())
	if r < 0 {
		r = -(r & math.MaxInt64)
	}
	ctx.ResultInt64(r)
}

// randomblob returns a blob of max(N, 1) random bytes, N read as an integer
// as SQLite does ('3' is 3, 2.9 is 2, NULL is 0). The bytes are successive
// PRNG outputs in little-endian order, the tail of the last one dropped.
// Above the writer's length limit it fails with "string or blob too big".
func (e *Env) randomblob(ctx sqlite3.Context, args ...sqlite3.Value) {
	if e.live {
		e.evalLive(ctx, "randomblob", args)
		return
	}
	n := args[0].Int64()
	if n < 1 {
		n = 1
	}
	if n > int64(ctx.Conn().Limit(sqlite3.LIMIT_LENGTH, -1)) {
		ctx.ResultError(sqlite3.TOOBIG)
		return
	}
	b := make([]byte, 0, (n+7)&^7)
	for int64(len(b)) < n {
		b = binary.LittleEndian.AppendUint64(b, e.rng.Uint64())
	}
	ctx.ResultBlob(b[:n])
}

// evalLive sets ctx's result to the built-in name evaluated on ref with
// args unchanged: ref's own clock and randomness.
func (e *Env) evalLive(ctx sqlite3.Context, name string, args []sqlite3.Value) {
	e.eval(ctx, name, args, 0, 0, false)
}

// eval sets ctx's result to the built-in name evaluated on ref with args;
// see evalStmt for from, to and appendNow.
func (e *Env) eval(ctx sqlite3.Context, name string, args []sqlite3.Value, from, to int, appendNow bool) {
	stmt, ok := e.evalStmt(ctx, name, args, from, to, appendNow)
	if !ok {
		return
	}
	detResult(ctx, stmt)
	stmt.Reset()
}

// evalStmt runs the built-in name on ref with args bound with their own
// types, except that an argument at an index in [from, to) that SQLite
// would read as 'now' is replaced by the command time, and appendNow adds
// the command time as a last argument. It returns the statement positioned
// on its row, which the caller resets, or sets ctx's error and returns false.
func (e *Env) evalStmt(ctx sqlite3.Context, name string, args []sqlite3.Value, from, to int, appendNow bool) (*sqlite3.Stmt, bool) {
	n := len(args)
	if appendNow {
		n++
	}
	stmt, err := e.stmt(name, n)
	if err != nil {
		ctx.ResultError(err)
		return nil, false
	}
	for i, a := range args {
		if i >= from && i < to && detIsNow(a) {
			err = stmt.BindText(i+1, e.nowText)
		} else {
			err = detBind(stmt, i+1, a)
		}
		if err != nil {
			break
		}
	}
	if err == nil && appendNow {
		err = stmt.BindText(n, e.nowText)
	}
	if err == nil && !stmt.Step() {
		if err = stmt.Err(); err == nil {
			err = fmt.Errorf("hiqlite: %s() returned no row on the reference connection", name)
		}
	}
	if err != nil {
		stmt.Reset()
		ctx.ResultError(err)
		return nil, false
	}
	return stmt, true
}

// stmt returns the cached statement calling the built-in name with n
// parameters on ref, preparing it on first use.
func (e *Env) stmt(name string, n int) (*sqlite3.Stmt, error) {
	k := detKey{name, n}
	if s := e.stmts[k]; s != nil {
		return s, nil
	}
	var sql strings.Builder
	sql.WriteString("SELECT ")
	sql.WriteString(name)
	if !strings.HasPrefix(name, "current_") { // keywords, not calls
		sql.WriteByte('(')
		for i := range n {
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteByte('?')
		}
		sql.WriteByte(')')
	}
	s, _, err := e.ref.PrepareFlags(sql.String(), sqlite3.PREPARE_PERSISTENT)
	if err != nil {
		return nil, err
	}
	e.stmts[k] = s
	return s, nil
}

// detIsNow reports whether SQLite reads v as the time value 'now': text (or
// a blob, which SQLite reads as text) equal to "now" in any ASCII case, up
// to the first NUL byte. ' now' is not 'now'.
func detIsNow(v sqlite3.Value) bool {
	var b []byte
	switch v.Type() {
	case sqlite3.TEXT:
		b = v.RawText()
	case sqlite3.BLOB:
		b = v.RawBlob() // not RawText: that would convert the value in place
	default:
		return false
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return len(b) == 3 &&
		b[0]|0x20 == 'n' && b[1]|0x20 == 'o' && b[2]|0x20 == 'w'
}

// detBind binds v to parameter i of stmt (on another connection) with its
// own type. Empty blobs stay empty blobs, not NULL.
func detBind(stmt *sqlite3.Stmt, i int, v sqlite3.Value) error {
	switch v.Type() {
	case sqlite3.INTEGER:
		return stmt.BindInt64(i, v.Int64())
	case sqlite3.FLOAT:
		return stmt.BindFloat(i, v.Float())
	case sqlite3.TEXT:
		return stmt.BindText(i, string(v.RawText()))
	case sqlite3.BLOB:
		if b := v.RawBlob(); len(b) > 0 {
			return stmt.BindBlob(i, b)
		}
		return stmt.BindZeroBlob(i, 0)
	}
	return stmt.BindNull(i)
}

// detResult copies column 0 of stmt's current row (on ref) into ctx's
// result with its type. Values cannot be passed between connections, so it
// goes type by type.
func detResult(ctx sqlite3.Context, stmt *sqlite3.Stmt) {
	switch stmt.ColumnType(0) {
	case sqlite3.INTEGER:
		ctx.ResultInt64(stmt.ColumnInt64(0))
	case sqlite3.FLOAT:
		ctx.ResultFloat(stmt.ColumnFloat(0))
	case sqlite3.TEXT:
		ctx.ResultText(stmt.ColumnText(0))
	case sqlite3.BLOB:
		if b := stmt.ColumnRawBlob(0); len(b) > 0 {
			ctx.ResultBlob(b)
		} else {
			ctx.ResultZeroBlob(0)
		}
	default:
		ctx.ResultNull()
	}
}
