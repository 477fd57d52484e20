package replication_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// smApplier applies commands to a state machine at increasing indexes, as
// raft would.
type smApplier struct {
	t     *testing.T
	sm    *replication.StateMachine
	index uint64
}

func newApplier(t *testing.T) *smApplier { return newApplierWith(t, replication.Options{}) }

func newApplierWith(t *testing.T, opts replication.Options) *smApplier {
	t.Helper()
	sm, err := replication.Open(filepath.Join(t.TempDir(), "db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	a := &smApplier{t: t, sm: sm}
	a.must(a.exec(replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, v UNIQUE)`))
	return a
}

func (a *smApplier) apply(cmd *replication.Command) *replication.Response {
	a.t.Helper()
	data, err := cmd.MarshalBinary()
	if err != nil {
		a.t.Fatal(err)
	}
	a.index++
	out := a.sm.ApplyBatch([]*raft.Log{{Index: a.index, Term: 1, Type: raft.LogCommand, Data: data}})
	return out[0].(*replication.Response)
}

func (a *smApplier) exec(o replication.Origin, sql string, args ...any) *replication.Response {
	a.t.Helper()
	st := replication.Statement{SQL: sql}
	for i, v := range args {
		st.Args = append(st.Args, replication.Arg{Ordinal: i + 1, Value: v})
	}
	return a.apply(&replication.Command{Kind: replication.KindExec, Time: 1e18, Seed: a.index, Origin: o, Stmts: []replication.Statement{st}})
}

func (a *smApplier) fence(o replication.Origin) *replication.Response {
	a.t.Helper()
	return a.apply(&replication.Command{Kind: replication.KindFence, Time: 1e18, Origin: o})
}

func (a *smApplier) must(r *replication.Response) *replication.Response {
	a.t.Helper()
	if r.Err != nil {
		a.t.Fatalf("index %d: %v", r.Index, r.Err)
	}
	return r
}

func (a *smApplier) count() int64 {
	a.t.Helper()
	r := a.must(a.exec(replication.Origin{}, `SELECT count(*) FROM t`))
	return r.Results[0].Rows[0][0].(int64)
}

func TestExactlyOnceRetriedExec(t *testing.T) {
	a := newApplier(t)
	o := replication.Origin{Node: "n1", Session: 7, Seq: 1}
	first := a.must(a.exec(o, `INSERT INTO t(v) VALUES (?) RETURNING id, v`, "x"))
	if first.Duplicate {
		t.Fatal("first apply reported as a duplicate")
	}
	// The reply was lost; the same write arrives again, later in the log.
	again := a.must(a.exec(o, `INSERT INTO t(v) VALUES (?) RETURNING id, v`, "x"))
	if !again.Duplicate || again.Index != first.Index {
		t.Fatalf("retry: duplicate=%v index=%d, want a duplicate of index %d", again.Duplicate, again.Index, first.Index)
	}
	if len(again.Results) != 1 || again.Results[0].LastInsertID != first.Results[0].LastInsertID ||
		again.Results[0].RowsAffected != 1 || len(again.Results[0].Rows) != 1 || again.Results[0].Rows[0][1] != "x" {
		t.Fatalf("retry results %+v, want the recorded %+v", again.Results, first.Results)
	}
	if n := a.count(); n != 1 {
		t.Fatalf("%d rows after a retried insert, want 1", n)
	}
	// The session goes on: the next write applies.
	o.Seq = 2
	a.must(a.exec(o, `INSERT INTO t(v) VALUES ('y')`))
	if n := a.count(); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	// A copy of seq 1 arriving after seq 2 is refused, not applied.
	o.Seq = 1
	late := a.exec(o, `INSERT INTO t(v) VALUES ('z')`)
	if !errors.Is(late.Err, nodeerr.ErrNotApplied) || !late.NotApplied {
		t.Fatalf("late copy: err=%v notApplied=%v, want ErrNotApplied", late.Err, late.NotApplied)
	}
	if n := a.count(); n != 2 {
		t.Fatalf("%d rows after a late copy, want 2", n)
	}
}

func TestExactlyOnceRecordsSQLErrors(t *testing.T) {
	a := newApplier(t)
	a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) VALUES ('dup')`))
	o := replication.Origin{Node: "n2", Session: 9, Seq: 5}
	first := a.must(a.exec(o, `INSERT INTO t(v) VALUES ('dup')`))
	again := a.must(a.exec(o, `INSERT INTO t(v) VALUES ('dup')`))
	if !again.Duplicate {
		t.Fatal("retry not recognised")
	}
	for _, r := range []*replication.Response{first, again} {
		if !errors.Is(r.Results[0].Err, sqlite3.CONSTRAINT_UNIQUE) {
			t.Fatalf("result error %v, want CONSTRAINT_UNIQUE", r.Results[0].Err)
		}
	}
}

func TestExactlyOnceFence(t *testing.T) {
	a := newApplier(t)
	// Fence first: the write is settled as never applied.
	o := replication.Origin{Node: "n1", Session: 1, Seq: 3}
	f := a.must(a.fence(o))
	if !f.NotApplied {
		t.Fatal("fence of an unknown write did not report it as not applied")
	}
	late := a.exec(o, `INSERT INTO t(v) VALUES ('fenced')`)
	if !errors.Is(late.Err, nodeerr.ErrNotApplied) {
		t.Fatalf("write after its fence: %v, want ErrNotApplied", late.Err)
	}
	if n := a.count(); n != 0 {
		t.Fatalf("%d rows, want 0: a fenced write was applied", n)
	}
	// Asking again gives the same answer.
	if f := a.must(a.fence(o)); !f.NotApplied {
		t.Fatal("second fence changed its answer")
	}

	// Write first: the fence reports where it was applied.
	o = replication.Origin{Node: "n1", Session: 2, Seq: 1}
	w := a.must(a.exec(o, `INSERT INTO t(v) VALUES ('kept')`))
	f = a.must(a.fence(o))
	if f.NotApplied || f.Index != w.Index {
		t.Fatalf("fence after the write: notApplied=%v index=%d, want applied at %d", f.NotApplied, f.Index, w.Index)
	}
	if n := a.count(); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestExactlyOnceTransaction(t *testing.T) {
	a := newApplier(t)
	o := replication.Origin{Node: "n3", Session: 4, Seq: 10}
	tx := &replication.Command{Kind: replication.KindTx, Time: 1e18, Origin: o, Stmts: []replication.Statement{
		{SQL: `INSERT INTO t(v) VALUES ('a')`}, {SQL: `INSERT INTO t(v) VALUES ('b')`},
	}}
	first := a.must(a.apply(tx))
	again := a.must(a.apply(tx))
	if !again.Duplicate || again.Index != first.Index {
		t.Fatalf("replayed transaction: duplicate=%v index=%d, want a duplicate of %d", again.Duplicate, again.Index, first.Index)
	}
	if n := a.count(); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	if f := a.must(a.fence(o)); f.NotApplied || f.Index != first.Index {
		t.Fatalf("fence: notApplied=%v index=%d, want applied at %d", f.NotApplied, f.Index, first.Index)
	}
}

// A transaction open on the leader's writer is aborted by a fence of its
// own origin applied first, and its COMMIT command then applies nothing.
func TestExactlyOnceFenceBeatsPendingCommit(t *testing.T) {
	a := newApplier(t)
	o := replication.Origin{Node: "n1", Session: 5, Seq: 1}
	if err := a.sm.BeginTx(o, 1e18, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.sm.ExecTx(context.Background(), o, replication.Statement{SQL: `INSERT INTO t(v) VALUES ('open')`}, false); err != nil {
		t.Fatal(err)
	}
	cmd, err := a.sm.CommitCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	if f := a.must(a.fence(o)); !f.NotApplied {
		t.Fatal("fence of an uncommitted transaction reported it applied")
	}
	if r := a.apply(cmd); !errors.Is(r.Err, nodeerr.ErrNotApplied) {
		t.Fatalf("commit after its fence: %v, want ErrNotApplied", r.Err)
	}
	if n := a.count(); n != 0 {
		t.Fatalf("%d rows, want 0", n)
	}
}

// Writes without a session are not tracked: each copy applies.
func TestExactlyOnceUntracked(t *testing.T) {
	a := newApplier(t)
	for range 2 {
		a.must(a.exec(replication.Origin{Node: "n1"}, `INSERT INTO t(v) VALUES (NULL)`))
	}
	if n := a.count(); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

func TestExactlyOnceSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	sm, err := replication.Open(path, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &smApplier{t: t, sm: sm}
	a.must(a.exec(replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`))
	o := replication.Origin{Node: "n1", Session: 3, Seq: 1}
	first := a.must(a.exec(o, `INSERT INTO t(v) VALUES (1)`))
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	sm, err = replication.Open(path, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	a.sm = sm
	again := a.must(a.exec(o, `INSERT INTO t(v) VALUES (1)`))
	if !again.Duplicate || again.Index != first.Index || again.Results[0].LastInsertID != first.Results[0].LastInsertID {
		t.Fatalf("after reopen: %+v, want a duplicate of %+v", again, first)
	}
}

// The state machine answers lookups from a copy of _hiqlite_sessions in
// memory. Client SQL cannot write the table (internal.go), directly or from
// a trigger; a trigger on the table itself that an older version let in
// fires on the state machine's own writes, and must not leave that copy
// behind: every node decides as one restarted (reading the table) would.
func TestExactlyOnceSessionTableWrittenByUser(t *testing.T) {
	a := newApplier(t)
	o1 := replication.Origin{Node: "n1", Session: 1, Seq: 1}
	insert := `INSERT INTO t(v) VALUES (?)`
	a.must(a.exec(o1, insert, "a")) // prepared and kept
	if r := a.must(a.exec(replication.Origin{}, `DELETE FROM _hiqlite_sessions`)); !errors.Is(r.Results[0].Err, sqlite3.AUTH) {
		t.Fatalf("DELETE FROM _hiqlite_sessions: %v, want SQLITE_AUTH", r.Results[0].Err)
	}
	if r := a.must(a.exec(o1, insert, "a")); !r.Duplicate {
		t.Fatal("a retried write was applied again after a refused DELETE of the records")
	}
	a.must(a.exec(replication.Origin{}, `CREATE TRIGGER wipe AFTER INSERT ON t WHEN NEW.v = 'wipe' BEGIN DELETE FROM _hiqlite_sessions WHERE session = 1; END`))
	if r := a.must(a.exec(replication.Origin{Node: "n1", Session: 2, Seq: 1}, insert, "wipe")); !errors.Is(r.Results[0].Err, sqlite3.AUTH) {
		t.Fatalf("write firing a trigger that deletes records: %v, want SQLITE_AUTH", r.Results[0].Err)
	}
	a.must(a.exec(replication.Origin{}, `DROP TRIGGER wipe`))
	if err := a.sm.CheckSessionMirror(); err != nil {
		t.Fatal(err)
	}
	if r := a.must(a.exec(o1, insert, "a")); !r.Duplicate {
		t.Fatal("a retried write was applied again")
	}
	if n := a.count(); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}

	// A trigger on the table itself, fired by the state machine's own
	// writes, every time.
	if err := a.sm.ExecUnguarded(`CREATE TRIGGER own AFTER UPDATE ON _hiqlite_sessions WHEN NEW.session = 5 BEGIN DELETE FROM _hiqlite_sessions WHERE session = 6; END`); err != nil {
		t.Fatal(err)
	}
	for i := range uint64(3) {
		o6 := replication.Origin{Node: "n1", Session: 6, Seq: 1}
		a.must(a.exec(replication.Origin{Node: "n1", Session: 5, Seq: 2 * i}, `SELECT 1`))
		a.must(a.exec(o6, `SELECT 1`))
		a.must(a.exec(replication.Origin{Node: "n1", Session: 5, Seq: 2*i + 1}, `SELECT 1`)) // deletes session 6
		if err := a.sm.CheckSessionMirror(); err != nil {
			t.Fatal(err)
		}
		if r := a.must(a.exec(o6, `SELECT 1`)); r.Duplicate {
			t.Fatalf("round %d: a write whose record the trigger deleted was taken for a duplicate", i)
		}
	}

	// The same after a reopen, where the trigger already exists when the
	// state machine prepares its own statements.
	path := a.sm.Path()
	if err := a.sm.Close(); err != nil {
		t.Fatal(err)
	}
	sm, err := replication.Open(path, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	a.sm = sm
	for i := range uint64(3) {
		o6 := replication.Origin{Node: "n1", Session: 6, Seq: 10 + i}
		a.must(a.exec(o6, `SELECT 1`))
		a.must(a.exec(replication.Origin{Node: "n1", Session: 5, Seq: 10 + i}, `SELECT 1`)) // deletes session 6
		if err := a.sm.CheckSessionMirror(); err != nil {
			t.Fatalf("after reopen, round %d: %v", i, err)
		}
		if r := a.must(a.exec(o6, `SELECT 1`)); r.Duplicate {
			t.Fatalf("after reopen, round %d: a write whose record the trigger deleted was taken for a duplicate", i)
		}
	}
}

// Session records are pruned from the table and from memory alike.
func TestExactlyOncePrune(t *testing.T) {
	a := newApplier(t)
	old := replication.Origin{Node: "n1", Session: 1, Seq: 1}
	st := replication.Statement{SQL: `INSERT INTO t(v) VALUES (NULL)`}
	a.must(a.apply(&replication.Command{Kind: replication.KindExec, Time: 1e18, Origin: old, Stmts: []replication.Statement{st}}))
	later := int64(1e18) + int64(25*time.Hour)
	for a.index%4096 != 4095 {
		a.index++
	}
	a.must(a.apply(&replication.Command{Kind: replication.KindExec, Time: later, Origin: replication.Origin{Node: "n1", Session: 2, Seq: 1}, Stmts: []replication.Statement{st}}))
	if err := a.sm.CheckSessionMirror(); err != nil {
		t.Fatal(err)
	}
	if r := a.must(a.apply(&replication.Command{Kind: replication.KindExec, Time: later, Origin: old, Stmts: []replication.Statement{st}})); r.Duplicate {
		t.Fatal("a pruned session's write was taken for a duplicate")
	}
}
