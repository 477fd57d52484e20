package replication

import (
	"errors"

	"github.com/ncruces/go-sqlite3"
)

// SQLite runs in a WebAssembly module whose memory is capped (256 MiB per
// connection). When an allocation fails, go-sqlite3 panics rather than
// returning SQLITE_NOMEM: in its wrapper once a call into SQLite returned
// NOMEM (SQLite itself handled the failure and is consistent), or inside a
// Go SQL function that asked for more memory than is left (randomblob of
// 300 MiB), where the panic would unwind through SQLite's own frames.
// Either way one statement, which the log replays on every node, would
// kill every node's process, again at every start.
//
// So the Go SQL functions turn the failure into their NOMEM result before
// it unwinds anything (GuardOOM), and the statements that run them turn
// the wrapper's panic into an error (RecoverOOM).

// oomText is the text of go-sqlite3's out-of-memory panic value.
const oomText = "sqlite3: out of memory"

// isOOM reports whether a recovered panic value is go-sqlite3's
// out-of-memory panic.
func isOOM(r any) bool {
	e, ok := r.(error)
	return ok && e.Error() == oomText
}

// OutOfMemoryError is a statement that needed more memory than its
// connection has. It wraps sqlite3.NOMEM (so the code survives forwarding),
// but a statement provoked it: it is that statement's error, alike on every
// node, not a fault of the node (isNodeFault looks for it first).
type OutOfMemoryError struct{}

func (*OutOfMemoryError) Error() string {
	return "hiqlite: out of memory: the statement needs more memory than a connection has (256 MiB)"
}

// Unwrap returns sqlite3.NOMEM.
func (*OutOfMemoryError) Unwrap() error { return sqlite3.NOMEM }

// RecoverOOM, deferred, turns go-sqlite3's out-of-memory panic into an
// *OutOfMemoryError in *err; other panics go on.
func RecoverOOM(err *error) {
	if r := recover(); r != nil {
		if !isOOM(r) {
			panic(r)
		}
		*err = &OutOfMemoryError{}
	}
}

// GuardOOM, deferred first in a Go SQL function, makes an allocation that
// failed in it the function's SQLITE_NOMEM result (which allocates
// nothing), so that the panic does not unwind through SQLite.
func GuardOOM(ctx sqlite3.Context) {
	if r := recover(); r != nil {
		if !isOOM(r) {
			panic(r)
		}
		ctx.ResultError(sqlite3.NOMEM)
	}
}

// execTextGuarded is execTextCached with a statement that ran out of
// memory (preparing it, or running it) as its error.
func (sm *StateMachine) execTextGuarded(st Statement, parsed *parsedStmt) (res Result, err error) {
	defer RecoverOOM(&err)
	return sm.execTextCached(st, parsed)
}

// runStmtGuarded is runStmt with running out of memory as its error; the
// caller resets stmt as after any error.
func runStmtGuarded(stmt *sqlite3.Stmt, args []Arg, res *Result) (err error) {
	defer clearOOM(stmt, &err)
	defer RecoverOOM(&err)
	return runStmt(stmt, args, res)
}

// StepGuarded is s.Step with running out of memory as an error instead of a
// panic; s is then reset, as any later step would start it again.
func StepGuarded(s *sqlite3.Stmt) (ok bool, err error) {
	defer clearOOM(s, &err)
	defer RecoverOOM(&err)
	return s.Step(), nil
}

// ExecGuarded is s.Exec with running out of memory as an error.
func ExecGuarded(s *sqlite3.Stmt) (err error) {
	defer clearOOM(s, &err)
	defer RecoverOOM(&err)
	return s.Exec()
}

// clearOOM, deferred after RecoverOOM, resets s when *err says it ran out
// of memory: sqlite3_reset reports the failure once more (and go-sqlite3
// panics once more), after which s is clean and its later Reset and Close
// succeed.
func clearOOM(s *sqlite3.Stmt, err *error) {
	var oom *OutOfMemoryError
	if *err == nil || !errors.As(*err, &oom) {
		return
	}
	func() {
		defer func() {
			if r := recover(); r != nil && !isOOM(r) {
				panic(r)
			}
		}()
		s.Reset()
	}()
}
