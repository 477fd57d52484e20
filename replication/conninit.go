package replication

import (
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// ConnInit is the application's hook (Config.ConnInit of the root
// package): it registers the application's functions, collations and
// extensions on one connection of the node. The state machine runs it on
// its writer and on every connection that reads the database file (the
// snapshot's reader, the checks of a snapshot's copy); the database/sql
// face runs it on every read connection.
type ConnInit func(*sqlite3.Conn) error

// runConnInit runs init on conn (nothing when init is nil), wrapping its
// error.
func runConnInit(conn *sqlite3.Conn, init ConnInit) error {
	if init == nil {
		return nil
	}
	if err := init(conn); err != nil {
		return fmt.Errorf("hiqlite: Config.ConnInit: %w", err)
	}
	return nil
}

// RunConnInit runs init on a read connection: the same wrapping as on the
// writer.
func RunConnInit(conn *sqlite3.Conn, init ConnInit) error { return runConnInit(conn, init) }

// funcKey names one function of PRAGMA function_list: SQLite keys a
// function by name and number of arguments.
type funcKey struct {
	name string
	narg int
}

// funcInfo is one row of PRAGMA function_list.
type funcInfo struct {
	funcKey
	builtin bool
	kind    string // "s" scalar, "a" aggregate, "w" window
	flags   int
}

// functionList reads PRAGMA function_list on conn.
func functionList(conn *sqlite3.Conn) ([]funcInfo, error) {
	stmt, _, err := conn.Prepare(`SELECT name, builtin, type, narg, flags FROM pragma_function_list`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	var out []funcInfo
	for stmt.Step() {
		out = append(out, funcInfo{
			funcKey: funcKey{stmt.ColumnText(0), stmt.ColumnInt(3)},
			builtin: stmt.ColumnBool(1),
			kind:    stmt.ColumnText(2),
			flags:   stmt.ColumnInt(4),
		})
	}
	return out, stmt.Err()
}

// installConnInit runs init on the writer and refuses in writes every
// function it defined without sqlite3.DETERMINISTIC: every node replays a
// write, so a function whose result may differ from node to node would
// store different rows on each. The functions of a fresh connection (the
// ncruces driver's own) and those hiqlite registers afterwards
// (RegisterFeatures, InstallDeterministic: they replace any function of
// the same name and number of arguments) are not the hook's.
//
// The refusal replaces the function on the writer only: read connections
// keep the real one, so reads may call it. Reads inside a write
// transaction run on the writer and are refused too.
func installConnInit(w *sqlite3.Conn, init ConnInit) error {
	if init == nil {
		return nil
	}
	before, err := functionList(w)
	if err != nil {
		return fmt.Errorf("hiqlite: list functions: %w", err)
	}
	had := make(map[funcKey]bool, len(before))
	for _, f := range before {
		if !f.builtin {
			had[f.funcKey] = true
		}
	}
	if err := runConnInit(w, init); err != nil {
		return err
	}
	after, err := functionList(w)
	if err != nil {
		return fmt.Errorf("hiqlite: list functions: %w", err)
	}
	for _, f := range after {
		if f.builtin || had[f.funcKey] || f.flags&int(sqlite3.DETERMINISTIC) != 0 {
			continue
		}
		if err := refuseInWrites(w, f); err != nil {
			return fmt.Errorf("hiqlite: guard function %s/%d: %w", f.name, f.narg, err)
		}
	}
	return nil
}

// nondeterministic is the error of a write that called name, a function
// of the hook not flagged deterministic. SQLite passes on its text only.
func nondeterministic(name string) error {
	return fmt.Errorf("hiqlite: function %q is not deterministic, so it cannot run in a write (every node replays writes); register it with sqlite3.DETERMINISTIC if it is", name)
}

// refuseInWrites replaces f on w with a function of the same kind, name
// and number of arguments that fails with the error of nondeterministic.
func refuseInWrites(w *sqlite3.Conn, f funcInfo) error {
	flag := sqlite3.FunctionFlag(f.flags) & (sqlite3.INNOCUOUS | sqlite3.DIRECTONLY)
	refusal := nondeterministic(f.name)
	switch f.kind {
	case "a":
		return w.CreateWindowFunction(f.name, f.narg, flag, func() sqlite3.AggregateFunction { return refusedAggregate{refusal} })
	case "w":
		return w.CreateWindowFunction(f.name, f.narg, flag, func() sqlite3.AggregateFunction { return refusedWindow{refusedAggregate{refusal}} })
	}
	return w.CreateFunction(f.name, f.narg, flag, func(ctx sqlite3.Context, _ ...sqlite3.Value) {
		ctx.ResultError(refusal)
	})
}

// refusedAggregate is an aggregate that fails with its error.
type refusedAggregate struct{ err error }

func (r refusedAggregate) Step(sqlite3.Context, ...sqlite3.Value) {}
func (r refusedAggregate) Value(ctx sqlite3.Context)              { ctx.ResultError(r.err) }

// refusedWindow is a window function that fails with its error.
type refusedWindow struct{ refusedAggregate }

func (refusedWindow) Inverse(sqlite3.Context, ...sqlite3.Value) {}
