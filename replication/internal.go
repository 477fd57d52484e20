package replication

import (
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/ncruces/go-sqlite3"
)

// Internal objects. Every table, index, trigger, view and savepoint whose
// name starts with _hiqlite belongs to hiqlite: the state machine's
// bookkeeping (_hiqlite_state, _hiqlite_sessions, temp._hiqlite_notify, the
// savepoint _hiqlite_cmd), the migrator's record (_hiqlite_migrations), and
// whatever a later version adds. Client SQL may read them, nothing more: a
// statement that would create, alter, drop, write, index or put a trigger on
// one is refused by SQLite's authorizer while it compiles, in whatever
// spelling it names the object (quotes, case, a schema prefix), from
// whatever it is reached (a CTE, a trigger body, a view's INSTEAD OF
// trigger). A trigger that an older version let in on an internal table may
// be dropped.
//
// The same Guard runs on the writer, for every command (so an entry that an
// older version wrote to the log is refused there, as that command's SQL
// error on every node alike), and on each database/sql connection's read
// connection, which refuses the statement before it is sent.

// internalPrefix starts the name of every object that belongs to hiqlite
// (compared case-insensitively, as SQLite compares names).
const internalPrefix = "_hiqlite"

// MigrationsTable is where the root package's Migrate records what it
// applied. The state machine does not depend on it: the writer refuses it
// to commands with FlagNotMigrate (every write of the database/sql face
// but Migrate's), and lets commands without the flag, Migrate's and those
// of earlier versions, write it.
const MigrationsTable = "_hiqlite_migrations"

// InternalObjectError is a statement refused because it would change an
// object that belongs to hiqlite. errors.Is matches it with ErrRefused and
// with sqlite3.AUTH.
type InternalObjectError struct {
	Name string // the object, as SQLite named it to the authorizer
}

func (e *InternalObjectError) Error() string {
	return "hiqlite: " + e.Name + " is internal to hiqlite and cannot be modified"
}

// Unwrap returns ErrRefused and sqlite3.AUTH.
func (e *InternalObjectError) Unwrap() []error { return []error{nodeerr.ErrRefused, sqlite3.AUTH} }

// renamedTo returns the new name of an ALTER TABLE ... RENAME TO statement,
// or "". SQLite shows the authorizer only the old name of a renamed table
// (SQLITE_ALTER_TABLE), so for this one case ClassifySQL, which runs on
// every statement on both sides, reads the new name from the tokens.
func (st *parsedStmt) renamedTo() string {
	if !st.tok(0).Is("ALTER") || !st.tok(1).Is("TABLE") {
		return ""
	}
	i := 3 // after ALTER TABLE name
	if st.tok(3).IsPunct('.') {
		i = 5 // after ALTER TABLE schema.name
	}
	if !st.tok(i).Is("RENAME") || !st.tok(i+1).Is("TO") {
		return ""
	}
	name, _ := st.tok(i + 2).Name()
	return name
}

// isInternal reports whether name is that of an object of hiqlite.
func isInternal(name string) bool {
	return len(name) >= len(internalPrefix) && equalFold(name[:len(internalPrefix)], internalPrefix)
}

// Guard is the authorizer that keeps client SQL away from internal objects.
// Its zero value refuses, as a read connection's must. The state machine's
// is suspended, so that its own statements pass, except while execText runs
// a command's client SQL. A Guard belongs to one connection and is used
// from the goroutine that uses the connection.
type Guard struct {
	// Migrations lets statements write MigrationsTable.
	Migrations bool
	// suspended: statements of hiqlite itself compile now.
	suspended bool
	// denied is the object the last refusal named.
	denied string
}

// Authorize is a sqlite3.AuthorizerCallback.
func (g *Guard) Authorize(action sqlite3.AuthorizerActionCode, name3rd, name4th, _, _ string) sqlite3.AuthorizerReturnCode {
	if g.suspended {
		return sqlite3.AUTH_OK
	}
	if name := internalTarget(action, name3rd, name4th); name != "" && !(g.Migrations && equalFold(name, MigrationsTable)) {
		g.denied = name
		return sqlite3.AUTH_DENY
	}
	return sqlite3.AUTH_OK
}

// internalTarget returns the internal object that action would change, or
// "". Reads (SQLITE_READ, SELECT, functions) change nothing; REINDEX and
// ANALYZE rebuild what SQLite derives from the data; dropping a trigger
// takes away what should never have been on an internal table.
func internalTarget(action sqlite3.AuthorizerActionCode, name3rd, name4th string) string {
	var names [2]string
	switch action {
	case sqlite3.AUTH_CREATE_TABLE, sqlite3.AUTH_CREATE_TEMP_TABLE,
		sqlite3.AUTH_DROP_TABLE, sqlite3.AUTH_DROP_TEMP_TABLE,
		sqlite3.AUTH_CREATE_VIEW, sqlite3.AUTH_CREATE_TEMP_VIEW,
		sqlite3.AUTH_DROP_VIEW, sqlite3.AUTH_DROP_TEMP_VIEW,
		sqlite3.AUTH_CREATE_VTABLE, sqlite3.AUTH_DROP_VTABLE,
		sqlite3.AUTH_DROP_TRIGGER, sqlite3.AUTH_DROP_TEMP_TRIGGER,
		sqlite3.AUTH_INSERT, sqlite3.AUTH_UPDATE, sqlite3.AUTH_DELETE:
		names[0] = name3rd // the object (for UPDATE, name4th is a column)
	case sqlite3.AUTH_CREATE_INDEX, sqlite3.AUTH_CREATE_TEMP_INDEX,
		sqlite3.AUTH_DROP_INDEX, sqlite3.AUTH_DROP_TEMP_INDEX,
		sqlite3.AUTH_CREATE_TRIGGER, sqlite3.AUTH_CREATE_TEMP_TRIGGER:
		names = [2]string{name4th, name3rd} // the table, then the index or trigger
	case sqlite3.AUTH_ALTER_TABLE, sqlite3.AUTH_SAVEPOINT:
		names[0] = name4th // the table (name3rd is its schema); the savepoint
	}
	for _, n := range names {
		if isInternal(n) {
			return n
		}
	}
	return ""
}

// Reset forgets the last refusal; call it before compiling or running a
// statement whose error Check will look at.
func (g *Guard) Reset() { g.denied = "" }

// Refusal returns the InternalObjectError of the last refusal since Reset,
// or nil.
func (g *Guard) Refusal() error {
	if g.denied == "" {
		return nil
	}
	return &InternalObjectError{Name: g.denied}
}

// Check returns err, or the InternalObjectError that explains it when the
// guard refused a statement since the last Reset.
func (g *Guard) Check(err error) error {
	if err != nil && g.denied != "" {
		return g.Refusal()
	}
	return err
}

// authorize is the writer's authorizer: the guard, then the session
// mirror's watch for writes to _hiqlite_sessions (sessions.go).
func (sm *StateMachine) authorize(action sqlite3.AuthorizerActionCode, name3rd, name4th, schema, inner string) sqlite3.AuthorizerReturnCode {
	if r := sm.guard.Authorize(action, name3rd, name4th, schema, inner); r != sqlite3.AUTH_OK {
		return r
	}
	return sm.sess.authorize(action, name3rd, name4th, schema, inner)
}
