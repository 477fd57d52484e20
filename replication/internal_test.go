package replication_test

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// internalWrites are statements that would change an object of hiqlite, in
// the spellings SQLite accepts. Every one must be refused by the writer's
// authorizer.
var internalWrites = []string{
	`DROP TABLE _hiqlite_sessions`,
	`DROP TABLE "_HIQLITE_SESSIONS"`,
	`DROP TABLE main._hiqlite_state`,
	`DROP TABLE IF EXISTS [_hiqlite_state]`,
	`ALTER TABLE _hiqlite_sessions ADD COLUMN x`,
	`ALTER TABLE _hiqlite_state RENAME TO s`,
	`ALTER TABLE t RENAME TO _hiqlite_x`,
	`ALTER TABLE main.t RENAME TO "_HIQLITE_y"`,
	`ALTER TABLE "t" /* c */ RENAME to [_hiqlite_z]`,
	`ALTER TABLE main."_hiqlite_sessions" RENAME COLUMN seq TO s`,
	`CREATE INDEX i ON _hiqlite_sessions(at)`,
	`CREATE INDEX _hiqlite_i ON t(v)`,
	`CREATE TABLE _hiqlite_mine(x)`,
	`CREATE TABLE _HiQlItE_state2 AS SELECT 1`,
	`CREATE VIEW _hiqlite_v AS SELECT 1`,
	`CREATE TABLE IF NOT EXISTS _hiqlite_sessions(x)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS i2 ON _hiqlite_sessions(node, session)`,
	`CREATE TRIGGER tr AFTER INSERT ON _hiqlite_sessions BEGIN DELETE FROM t; END`,
	`CREATE TRIGGER tr AFTER UPDATE ON main.[_hiqlite_state] BEGIN DELETE FROM t; END`,
	`CREATE TRIGGER _hiqlite_tr AFTER INSERT ON t BEGIN SELECT 1; END`,
	`INSERT INTO _hiqlite_sessions VALUES ('n', 1, 1, 1, 1, 1, NULL)`,
	`REPLACE INTO _hiqlite_state VALUES (1, 0, 0, 0)`,
	`INSERT OR REPLACE INTO "_hiqlite_state" VALUES (1, 0, 0, 0)`,
	`UPDATE _hiqlite_state SET applied_index = 0`,
	`UPDATE main._hiqlite_sessions SET seq = 0`,
	`DELETE FROM _hiqlite_sessions`,
	`delete from MAIN."_Hiqlite_Sessions"`,
	`WITH x AS (SELECT 1) DELETE FROM _hiqlite_sessions`,
	`WITH x AS (SELECT 1) INSERT INTO _hiqlite_state SELECT * FROM _hiqlite_state`,
	`INSERT INTO temp._hiqlite_notify VALUES (1, 1, 'c', 'p')`,
	`DELETE FROM temp._hiqlite_notify`,
	`DROP TABLE temp._hiqlite_notify`,
	`INSERT INTO t(v) VALUES ('multi'); DROP TABLE _hiqlite_sessions`,
	`SELECT 1; DELETE FROM _hiqlite_state`,
}

// An entry already in the log (written by a version that did not refuse
// these statements) must fail as that command's SQL error on every node
// alike, and never stop the state machine: the commands after it apply, and
// exactly-once keeps working.
func TestInternalObjectsRefusedInLog(t *testing.T) {
	a := newApplier(t)
	first := replication.Origin{Node: "n1", Session: 1, Seq: 1}
	a.must(a.exec(first, `INSERT INTO t(v) VALUES ('first')`))

	for i, sql := range internalWrites {
		r := a.exec(replication.Origin{Node: "n2", Session: 2, Seq: uint64(i + 1)}, sql)
		if r.Err != nil {
			t.Fatalf("%s: command error %v (fault: %v), want a statement error", sql, r.Err, a.sm.Fault())
		}
		if err := a.sm.Fault(); err != nil {
			t.Fatalf("%s: state machine stopped: %v", sql, err)
		}
		err := r.Results[len(r.Results)-1].Err
		var ie *replication.InternalObjectError
		if !errors.Is(err, sqlite3.AUTH) || !errors.Is(err, nodeerr.ErrRefused) || !errors.As(err, &ie) {
			t.Errorf("%s: error %v, want an InternalObjectError matching sqlite3.AUTH", sql, err)
		}
	}

	// A trigger on a user table whose body writes an internal table may be
	// created (its body is compiled only when it fires), but the writes it
	// would fire are refused.
	a.must(a.exec(replication.Origin{}, `CREATE TRIGGER wipe AFTER INSERT ON t BEGIN DELETE FROM _hiqlite_sessions; END`))
	r := a.must(a.exec(replication.Origin{Node: "n3", Session: 3, Seq: 1}, `INSERT INTO t(v) VALUES ('fires')`))
	if err := r.Results[0].Err; !errors.Is(err, sqlite3.AUTH) {
		t.Errorf("write that fires the trigger: %v, want SQLITE_AUTH", err)
	}
	// So may a view over an internal table, but not an INSTEAD OF trigger's
	// writes.
	a.must(a.exec(replication.Origin{}, `CREATE VIEW sessions AS SELECT * FROM _hiqlite_sessions`))
	a.must(a.exec(replication.Origin{}, `CREATE TRIGGER viewdel INSTEAD OF DELETE ON sessions BEGIN DELETE FROM _hiqlite_sessions; END`))
	r = a.must(a.exec(replication.Origin{}, `DELETE FROM sessions`))
	if err := r.Results[0].Err; !errors.Is(err, sqlite3.AUTH) {
		t.Errorf("delete through the view: %v, want SQLITE_AUTH", err)
	}
	// Reading stays allowed, and dropping what an older version let in.
	if r := a.must(a.exec(replication.Origin{}, `SELECT count(*) FROM _hiqlite_sessions`)); r.Results[0].Err != nil {
		t.Errorf("read of _hiqlite_sessions: %v", r.Results[0].Err)
	}
	a.must(a.exec(replication.Origin{}, `DROP TRIGGER wipe`))
	// A trigger an older version let onto an internal table can be
	// dropped; ANALYZE and REINDEX, which only rebuild what SQLite derives,
	// pass too.
	if err := a.sm.ExecUnguarded(`CREATE TRIGGER old AFTER UPDATE ON _hiqlite_state BEGIN DELETE FROM t; END`); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`DROP TRIGGER old`, `ANALYZE`, `REINDEX`} {
		if r := a.must(a.exec(replication.Origin{}, sql)); r.Results[0].Err != nil {
			t.Errorf("%s: %v", sql, r.Results[0].Err)
		}
	}

	// A committed transaction of an older leader that wrote an internal
	// table: it fails as a whole, as the command's error.
	txo := replication.Origin{Node: "n4", Session: 4, Seq: 1}
	tx := &replication.Command{Kind: replication.KindTx, Time: 1e18, Origin: txo, Stmts: []replication.Statement{
		{SQL: `INSERT INTO t(v) VALUES ('tx')`}, {SQL: `DELETE FROM _hiqlite_sessions`},
	}}
	rtx := a.apply(tx)
	if !errors.Is(rtx.Err, sqlite3.AUTH) || !rtx.NotApplied {
		t.Errorf("transaction: %v (not applied %v), want SQLITE_AUTH, not applied", rtx.Err, rtx.NotApplied)
	}
	if err := a.sm.Fault(); err != nil {
		t.Fatalf("transaction: state machine stopped: %v", err)
	}
	// A leader of this version refused the statement too (it is recorded
	// as failed): the replay fails it alike and keeps the rest.
	tx = &replication.Command{Kind: replication.KindTx, Time: 1e18, Origin: replication.Origin{Node: "n4", Session: 4, Seq: 2}, Stmts: []replication.Statement{
		{SQL: `INSERT INTO t(v) VALUES ('tx2')`}, {SQL: `DELETE FROM _hiqlite_sessions`, Failed: true},
	}}
	a.must(a.apply(tx))

	// The same statements in one batch with good commands around them.
	var logs []*raft.Log
	for i, sql := range []string{`INSERT INTO t(v) VALUES ('b1')`, `DROP TABLE _hiqlite_sessions`, `INSERT INTO t(v) VALUES ('b2')`} {
		data, err := (&replication.Command{Kind: replication.KindExec, Time: 1e18, Origin: replication.Origin{Node: "n5", Session: 5, Seq: uint64(i + 1)}, Stmts: []replication.Statement{{SQL: sql}}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		a.index++
		logs = append(logs, &raft.Log{Index: a.index, Term: 1, Type: raft.LogCommand, Data: data})
	}
	for i, out := range a.sm.ApplyBatch(logs) {
		r := out.(*replication.Response)
		if r.Err != nil {
			t.Fatalf("batch entry %d: %v", i, r.Err)
		}
		if failed := r.Results[0].Err != nil; failed != (i == 1) {
			t.Errorf("batch entry %d: %v", i, r.Results[0].Err)
		}
	}
	if err := a.sm.Fault(); err != nil {
		t.Fatalf("batch: state machine stopped: %v", err)
	}

	// Exactly-once still holds: the first write is known, and new ones apply once.
	if r := a.must(a.exec(first, `INSERT INTO t(v) VALUES ('first')`)); !r.Duplicate {
		t.Fatal("retry of the first write applied again")
	}
	next := replication.Origin{Node: "n1", Session: 1, Seq: 2}
	a.must(a.exec(next, `INSERT INTO t(v) VALUES ('next')`))
	if r := a.must(a.exec(next, `INSERT INTO t(v) VALUES ('next')`)); !r.Duplicate {
		t.Fatal("retry of a later write applied again")
	}
	if err := a.sm.CheckSessionMirror(); err != nil {
		t.Fatal(err)
	}
	// first, multi (the statement before the refused one stays, as in
	// SQLite), tx2, b1, b2, next.
	if n := a.count(); n != 6 {
		t.Fatalf("%d rows, want 6", n)
	}
}

// hiqlite_notify writes the writer's temp._hiqlite_notify from inside client
// SQL; after a schema change SQLite prepares that INSERT again, under the
// authorizer, and the guard must let the state machine's own statement
// through. So must the cleanup of a failed statement's notifications.
func TestGuardLetsStateMachineStatementsThrough(t *testing.T) {
	var got []replication.Notification
	a := newApplierWith(t, replication.Options{NotifySink: func(ns []replication.Notification) { got = append(got, ns...) }})
	r := a.must(a.exec(replication.Origin{}, `CREATE TABLE x(a); SELECT hiqlite_notify('c', 'after DDL')`))
	if err := r.Results[0].Err; err != nil {
		t.Fatalf("notify after a schema change: %v", err)
	}
	a.must(a.exec(replication.Origin{}, `CREATE TABLE y(a)`))
	r = a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) SELECT hiqlite_notify('c', 'dropped') UNION ALL SELECT 1 UNION ALL SELECT 1`))
	if !errors.Is(r.Results[0].Err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Fatalf("failing statement: %v, want CONSTRAINT_UNIQUE", r.Results[0].Err)
	}
	if len(got) != 1 || got[0].Payload != "after DDL" {
		t.Fatalf("notifications %+v, want the one after DDL", got)
	}
	if err := a.sm.Fault(); err != nil {
		t.Fatal(err)
	}
}

// _hiqlite_migrations is Migrate's: a command with FlagNotMigrate (every
// write of the driver but Migrate's) that would write it fails as its SQL
// error and stops nothing; a command without the flag (Migrate's, or one
// an older version logged) writes it, as it did when it was logged.
func TestMigrationsTableByFlag(t *testing.T) {
	a := newApplier(t)
	exec := func(flags replication.Flags, sql string) *replication.Response {
		return a.apply(&replication.Command{Kind: replication.KindExec, Time: 1e18, Flags: flags, Stmts: []replication.Statement{{SQL: sql}}})
	}
	a.must(exec(0, `CREATE TABLE _hiqlite_migrations(version INTEGER PRIMARY KEY, name TEXT)`))
	a.must(exec(0, `INSERT INTO _hiqlite_migrations VALUES (1, 'old')`))
	for _, q := range []string{
		`INSERT INTO _hiqlite_migrations VALUES (2, 'client')`,
		`DELETE FROM _hiqlite_migrations`,
		`CREATE TABLE x(a); INSERT INTO x VALUES (1); UPDATE _hiqlite_migrations SET name = ''`,
	} {
		r := a.must(exec(replication.FlagNotMigrate, q))
		var internal *replication.InternalObjectError
		if err := r.Results[len(r.Results)-1].Err; !errors.As(err, &internal) {
			t.Errorf("%q with FlagNotMigrate: %v, want the refusal", q, err)
		}
	}
	if err := a.sm.Fault(); err != nil {
		t.Fatalf("stopped: %v", err)
	}
	r := a.must(exec(0, `SELECT count(*), min(name) FROM _hiqlite_migrations`))
	if row := r.Results[0].Rows[0]; row[0] != int64(1) || row[1] != "old" {
		t.Fatalf("_hiqlite_migrations holds %v, want the one row written without the flag", row)
	}
}
