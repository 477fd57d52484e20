package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// internalWrites are statements that would change an object of hiqlite
// (every _hiqlite* table: the state machine's, the writer's notify table,
// Migrate's), in the spellings SQLite accepts.
var internalWrites = []string{
	`DROP TABLE _hiqlite_sessions`,
	`DROP TABLE "_HIQLITE_SESSIONS"`,
	`DROP TABLE main._hiqlite_state`,
	`DROP TABLE IF EXISTS [_hiqlite_state]`,
	`DROP TABLE _hiqlite_migrations`,
	`ALTER TABLE _hiqlite_sessions ADD COLUMN x`,
	`ALTER TABLE _hiqlite_state RENAME TO s`,
	`ALTER TABLE t RENAME TO _hiqlite_x`,
	`ALTER TABLE main.t RENAME TO "_HIQLITE_y"`,
	`ALTER TABLE "t" /* c */ RENAME to [_hiqlite_z]`,
	`ALTER TABLE main."_hiqlite_sessions" RENAME COLUMN seq TO s`,
	`ALTER TABLE _hiqlite_migrations DROP COLUMN name`,
	`CREATE INDEX i ON _hiqlite_sessions(at)`,
	`CREATE INDEX i ON "_hiqlite_state"(seen_index)`,
	`CREATE INDEX i ON _hiqlite_migrations(name)`,
	`CREATE INDEX _hiqlite_i ON t(v)`,
	`CREATE TABLE _hiqlite_mine(x)`,
	`CREATE TABLE _HiQlItE_state2 AS SELECT 1`,
	`CREATE VIEW _hiqlite_v AS SELECT 1`,
	`CREATE TABLE IF NOT EXISTS _hiqlite_sessions(x)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS i2 ON _hiqlite_sessions(node, session)`,
	`CREATE TRIGGER tr AFTER INSERT ON _hiqlite_sessions BEGIN DELETE FROM t; END`,
	`CREATE TRIGGER tr AFTER UPDATE ON main.[_hiqlite_state] BEGIN DELETE FROM t; END`,
	`CREATE TRIGGER tr BEFORE DELETE ON _hiqlite_migrations BEGIN SELECT 1; END`,
	`CREATE TRIGGER _hiqlite_tr AFTER INSERT ON t BEGIN SELECT 1; END`,
	`INSERT INTO _hiqlite_sessions VALUES ('n', 1, 1, 1, 1, 1, NULL)`,
	`REPLACE INTO _hiqlite_state VALUES (1, 0, 0, 0)`,
	`INSERT OR REPLACE INTO "_hiqlite_state" VALUES (1, 0, 0, 0)`,
	`INSERT INTO _hiqlite_migrations VALUES (99, 'x', 'x', 'x')`,
	`UPDATE _hiqlite_state SET applied_index = 0`,
	`UPDATE main._hiqlite_sessions SET seq = 0`,
	`UPDATE _hiqlite_migrations SET checksum = ''`,
	`DELETE FROM _hiqlite_sessions`,
	`delete from MAIN."_Hiqlite_Sessions"`,
	`DELETE FROM _hiqlite_migrations`,
	`WITH x AS (SELECT 1) DELETE FROM _hiqlite_sessions`,
	`WITH x AS (SELECT 1) INSERT INTO _hiqlite_state SELECT * FROM _hiqlite_state`,
	`INSERT INTO _hiqlite_sessions SELECT * FROM _hiqlite_sessions RETURNING *`,
	`DELETE FROM _hiqlite_sessions RETURNING node`,
	`INSERT INTO t(v) VALUES ('multi'); DROP TABLE _hiqlite_sessions`,
	`INSERT INTO t(v) VALUES ('multi'); CREATE TABLE m(x); DELETE FROM _hiqlite_state`,
	`SELECT 1; DELETE FROM _hiqlite_state`,
	`INSERT INTO t(v) VALUES ('multi'); ALTER TABLE t RENAME TO _hiqlite_t`,
}

// isInternalRefusal reports whether err is the clear refusal of a
// statement that would change an internal object.
func isInternalRefusal(err error) bool {
	return errors.Is(err, sqlite3.AUTH) && errors.Is(err, hiqlite.ErrRefused) &&
		strings.Contains(err.Error(), "is internal to hiqlite and cannot be modified")
}

// No client SQL reaches an object of hiqlite, from the leader or from a
// follower, in Exec, Query or a transaction: each statement fails at once
// with a clear error matching sqlite3.AUTH, and the cluster keeps taking
// writes, with every node identical and none stopped.
func TestClusterInternalObjectsOutOfReach(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l, f := c.Leader(), c.Follower()
	ctx := context.Background()
	migrations := fstest.MapFS{"001_init.sql": {Data: []byte(`CREATE TABLE t(v);`)}}
	if err := hiqlite.Migrate(ctx, c.Members[l].DB, migrations); err != nil {
		t.Fatal(err)
	}

	for _, node := range []struct {
		name string
		db   *sql.DB
	}{{"leader", c.Members[l].DB}, {"follower", c.Members[f].DB}} {
		db := node.db
		before := c.Members[l].Node.AppliedIndex()
		for _, q := range internalWrites {
			if _, err := db.Exec(q); !isInternalRefusal(err) {
				t.Errorf("%s: Exec(%q): %v, want the refusal", node.name, q, err)
			}
			if err := drainQuery(db, q); !isInternalRefusal(err) {
				t.Errorf("%s: Query(%q): %v, want the refusal", node.name, q, err)
			}
		}
		// Refused where they were prepared: nothing reached the log.
		if after := c.Members[l].Node.AppliedIndex(); after != before {
			t.Errorf("%s: the refused statements moved the applied index from %d to %d", node.name, before, after)
		}
		// In a transaction, before and after its first write; the
		// transaction goes on and commits.
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`DELETE FROM _hiqlite_sessions`); !isInternalRefusal(err) {
			t.Errorf("%s: in a transaction before its first write: %v, want the refusal", node.name, err)
		}
		if _, err := tx.Exec(`INSERT INTO t(v) VALUES ('tx')`); err != nil {
			t.Fatal(err)
		}
		for _, q := range internalWrites {
			if _, err := tx.Exec(q); !isInternalRefusal(err) {
				t.Errorf("%s: in a transaction: Exec(%q): %v, want the refusal", node.name, q, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("%s: commit after refused statements: %v", node.name, err)
		}

		// A trigger on a user table whose body writes an internal table,
		// and a view over one with an INSTEAD OF trigger, may be created;
		// what would fire them is refused.
		// A connection that ran the text before the trigger existed kept
		// its class and does not prepare it again: the writer refuses it.
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		insert := `INSERT INTO t(v) VALUES (?)`
		if _, err := conn.ExecContext(ctx, insert, node.name); err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, `CREATE TRIGGER wipe AFTER INSERT ON t BEGIN DELETE FROM _hiqlite_sessions; END`)
		if _, err := db.Exec(`INSERT INTO t(v) VALUES ('fires')`); !isInternalRefusal(err) {
			t.Errorf("%s: write that fires a trigger writing _hiqlite_sessions: %v, want the refusal", node.name, err)
		}
		logged := c.Members[l].Node.AppliedIndex()
		if _, err := conn.ExecContext(ctx, insert, "fires"); !isInternalRefusal(err) {
			t.Errorf("%s: write of a cached text that fires the trigger: %v, want the refusal", node.name, err)
		}
		if c.Members[l].Node.AppliedIndex() == logged {
			t.Errorf("%s: the write of a cached text was refused before the writer", node.name)
		}
		conn.Close()
		mustExec(t, db, `DROP TRIGGER wipe`)
		mustExec(t, db, `CREATE VIEW sv AS SELECT * FROM _hiqlite_sessions`)
		mustExec(t, db, `CREATE TRIGGER svd INSTEAD OF DELETE ON sv BEGIN DELETE FROM _hiqlite_sessions; END`)
		if _, err := db.Exec(`DELETE FROM sv`); !isInternalRefusal(err) {
			t.Errorf("%s: delete through a view's INSTEAD OF trigger: %v, want the refusal", node.name, err)
		}
		mustExec(t, db, `DROP VIEW sv`)

		// Reading stays allowed.
		if n := count(t, db, `SELECT count(*) FROM _hiqlite_sessions`); n == 0 {
			t.Errorf("%s: _hiqlite_sessions reads empty", node.name)
		}
	}

	// Migrate still records what it applies.
	migrations["002_more.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE more(x);`)}
	if err := hiqlite.Migrate(ctx, c.Members[f].DB, migrations); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c.Members[l].DB, `SELECT count(*) FROM _hiqlite_migrations`); n != 2 {
		t.Errorf("%d migrations recorded, want 2", n)
	}
	c.EnsureSame()
	for _, i := range c.Alive() {
		if err := c.Members[i].Node.Fault(); err != nil {
			t.Errorf("%s stopped: %v", c.Members[i].ID, err)
		}
	}
	// tx, leader, tx, follower; the statements before a refused one of a
	// multi-statement text never ran.
	if n := count(t, c.Members[f].DB, `SELECT count(*) FROM t`); n != 4 {
		t.Errorf("%d rows in t, want 4", n)
	}

	// A follower rebuilt from the log applies the entries the writer
	// refused again, with the same outcome, and does not stop.
	c.Kill(f)
	c.Wipe(f)
	c.Start(f)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()
	if err := c.Members[f].Node.Fault(); err != nil {
		t.Errorf("%s stopped after its rebuild: %v", c.Members[f].ID, err)
	}
}

// drainQuery runs q as a query and reads all its rows.
func drainQuery(db *sql.DB, q string) error {
	rows, err := db.Query(q)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	err = rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// Only Migrate writes _hiqlite_migrations, also where the read
// connection's guard cannot see the statement that would: after a
// statement that does not prepare before the text's earlier ones ran, and
// in a trigger that fires from a text the connection cached before the
// trigger existed. The writer refuses both, as the write's error.
func TestMigrationsTableOnlyForMigrate(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	if err := hiqlite.Migrate(ctx, db, fstest.MapFS{"001_init.sql": {Data: []byte(`CREATE TABLE t(v);`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE x(a); INSERT INTO x VALUES (1); DELETE FROM _hiqlite_migrations`); !isInternalRefusal(err) {
		t.Errorf("a text whose last statement empties _hiqlite_migrations: %v, want the refusal", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	insert := `INSERT INTO t(v) VALUES (?)`
	if _, err := conn.ExecContext(ctx, insert, 1); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `CREATE TRIGGER w AFTER INSERT ON t BEGIN INSERT INTO _hiqlite_migrations VALUES (99, 'x', 'x', 'x'); END`)
	if _, err := conn.ExecContext(ctx, insert, 2); !isInternalRefusal(err) {
		t.Errorf("a cached text whose new trigger writes _hiqlite_migrations: %v, want the refusal", err)
	}
	if n := count(t, db, `SELECT count(*) FROM _hiqlite_migrations`); n != 1 {
		t.Errorf("%d migrations recorded, want 1", n)
	}
	// Migrate itself goes on recording.
	mustExec(t, db, `DROP TRIGGER w`)
	if err := hiqlite.Migrate(ctx, db, fstest.MapFS{"001_init.sql": {Data: []byte(`CREATE TABLE t(v);`)}, "002_more.sql": {Data: []byte(`CREATE TABLE more(x);`)}}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM _hiqlite_migrations`); n != 2 {
		t.Errorf("%d migrations recorded after Migrate, want 2", n)
	}
}
