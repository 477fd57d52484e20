package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
)

func TestTxCommitAndRollback(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE acct(id INTEGER PRIMARY KEY, owner TEXT, bal INT)`)

	// The GORM shape: BEGIN; INSERT ... RETURNING; SELECT that row; COMMIT.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := tx.QueryRow(`INSERT INTO acct(owner, bal) VALUES ('ann', 100) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var owner string
	if err := tx.QueryRow(`SELECT owner FROM acct WHERE id = ?`, id).Scan(&owner); err != nil || owner != "ann" {
		t.Fatalf("read own write: %q, %v", owner, err)
	}
	r := mustExec(t, tx, `UPDATE acct SET bal = bal - 10 WHERE id = ?`, id)
	if n, _ := r.RowsAffected(); n != 1 {
		t.Errorf("RowsAffected in tx = %d", n)
	}
	// Not visible outside before COMMIT.
	if n := count(t, db, `SELECT count(*) FROM acct`); n != 0 {
		t.Errorf("uncommitted row visible outside: %d", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT bal FROM acct WHERE id = ?`, id); n != 90 {
		t.Errorf("balance after commit = %d, want 90", n)
	}
	if err := tx.Commit(); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("second commit: %v", err)
	}

	// ROLLBACK leaves no trace.
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO acct(owner, bal) VALUES ('bob', 5)`)
	mustExec(t, tx, `DELETE FROM acct WHERE owner = 'ann'`)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM acct WHERE owner = 'ann'`); n != 1 {
		t.Errorf("rollback lost ann: %d", n)
	}
	if n := count(t, db, `SELECT count(*) FROM acct WHERE owner = 'bob'`); n != 0 {
		t.Errorf("rollback kept bob: %d", n)
	}

	// Savepoints: ROLLBACK TO undoes only what followed the savepoint,
	// including a savepoint taken before the first write.
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `SAVEPOINT outer_sp`)
	mustExec(t, tx, `INSERT INTO acct(owner, bal) VALUES ('cy', 1)`)
	mustExec(t, tx, `SAVEPOINT inner_sp`)
	mustExec(t, tx, `INSERT INTO acct(owner, bal) VALUES ('dee', 2)`)
	mustExec(t, tx, `ROLLBACK TO inner_sp`)
	mustExec(t, tx, `RELEASE outer_sp`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got := count(t, db, `SELECT count(*) FROM acct WHERE owner IN ('cy', 'dee')`)
	if got != 1 || count(t, db, `SELECT count(*) FROM acct WHERE owner = 'cy'`) != 1 {
		t.Errorf("after savepoints: %d rows of cy/dee, want only cy", got)
	}

	// A failed statement inside a transaction does not end it.
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO acct(id, owner) VALUES (?, 'dup')`, id); !errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY) {
		t.Errorf("duplicate key in tx: %v", err)
	}
	mustExec(t, tx, `INSERT INTO acct(owner, bal) VALUES ('eve', 3)`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM acct WHERE owner = 'eve'`); n != 1 {
		t.Errorf("eve rows = %d", n)
	}
}

func TestTxSQLControl(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExecCtx(t, c, `CREATE TABLE q(x)`)
	mustExecCtx(t, c, `BEGIN`)
	mustExecCtx(t, c, `INSERT INTO q VALUES (1)`)
	var n int
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM q`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("own write in SQL transaction: %d %v", n, err)
	}
	mustExecCtx(t, c, `COMMIT`)
	mustExecCtx(t, c, `BEGIN IMMEDIATE`)
	mustExecCtx(t, c, `INSERT INTO q VALUES (2)`)
	mustExecCtx(t, c, `ROLLBACK`)
	if n := count(t, db, `SELECT count(*) FROM q`); n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}
	if _, err := c.ExecContext(ctx, `COMMIT`); !errors.Is(err, sqlite3.ERROR) {
		t.Errorf("COMMIT without a transaction: %v", err)
	}
}

func mustExecCtx(t *testing.T, c *sql.Conn, q string) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestTxOptions(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE o(x); INSERT INTO o VALUES (1)`)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, tx, `SELECT count(*) FROM o`); n != 1 {
		t.Errorf("read-only tx read %d", n)
	}
	if _, err := tx.Exec(`INSERT INTO o VALUES (2)`); !errors.Is(err, sqlite3.READONLY) {
		t.Errorf("write in read-only tx: %v", err)
	}
	tx.Rollback()
	for _, lvl := range []sql.IsolationLevel{sql.LevelReadCommitted, sql.LevelSnapshot, sql.LevelLinearizable} {
		_, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: lvl})
		if err == nil || !strings.Contains(err.Error(), lvl.String()) {
			t.Errorf("isolation %v: %v", lvl, err)
		}
	}
	tx, err = db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
}

// TestTxSnapshot: a transaction that read keeps its snapshot, and may not
// write once another write committed after that snapshot.
func TestTxSnapshot(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE sn(x); INSERT INTO sn VALUES (1)`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, tx, `SELECT count(*) FROM sn`); n != 1 {
		t.Fatalf("first read %d", n)
	}
	mustExec(t, db, `INSERT INTO sn VALUES (2)`)
	if n := count(t, tx, `SELECT count(*) FROM sn`); n != 1 {
		t.Errorf("the snapshot moved: %d", n)
	}
	_, err = tx.Exec(`INSERT INTO sn VALUES (3)`)
	if !errors.Is(err, sqlite3.BUSY_SNAPSHOT) || !errors.Is(err, sqlite3.BUSY) {
		t.Errorf("write after a concurrent commit: %v, want BUSY_SNAPSHOT", err)
	}
	tx.Rollback()

	// Without a concurrent commit, read then write is fine.
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	n := count(t, tx, `SELECT count(*) FROM sn`)
	mustExec(t, tx, `INSERT INTO sn VALUES (?)`, n+1)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM sn`); got != 3 {
		t.Errorf("rows = %d, want 3", got)
	}
}

// TestTxBusy: while a write transaction is open, other writers wait up to
// _busy and then get SQLITE_BUSY; after COMMIT they proceed.
func TestTxBusy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openDir(t, dir)
	impatient := openDir(t, dir, "_busy=100ms")
	mustExec(t, db, `CREATE TABLE b(x)`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO b VALUES (1)`)
	_, err = impatient.Exec(`INSERT INTO b VALUES (2)`)
	if !errors.Is(err, sqlite3.BUSY) {
		t.Errorf("autocommit write during a write tx: %v, want BUSY", err)
	}
	tx2, err := impatient.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx2.Exec(`INSERT INTO b VALUES (3)`); !errors.Is(err, sqlite3.BUSY) {
		t.Errorf("second write tx: %v, want BUSY", err)
	}
	tx2.Rollback()
	// Reads never wait.
	if n := count(t, impatient, `SELECT count(*) FROM b`); n != 0 {
		t.Errorf("read during write tx: %d", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, impatient, `INSERT INTO b VALUES (4)`)
	if n := count(t, db, `SELECT count(*) FROM b`); n != 2 {
		t.Errorf("rows = %d, want 2", n)
	}
}

// TestTxIdle: a write transaction left idle is rolled back after _txidle and
// frees the write slot for the writer waiting on it.
func TestTxIdle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idle := openDir(t, dir, "_txidle=200ms")
	patient := openDir(t, dir, "_busy=30s")
	mustExec(t, idle, `CREATE TABLE i(x)`)
	tx, err := idle.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO i VALUES ('abandoned')`)
	// This write can only enter once the idle transaction is gone.
	mustExec(t, patient, `INSERT INTO i VALUES ('next')`)
	err = tx.Commit()
	if !errors.Is(err, hiqlite.ErrTxIdle) {
		t.Errorf("commit after idle timeout: %v, want ErrTxIdle", err)
	}
	var v string
	if err := patient.QueryRow(`SELECT group_concat(x) FROM i`).Scan(&v); err != nil || v != "next" {
		t.Errorf("rows = %q, %v; want only next", v, err)
	}
}

// TestTxContextCancel: cancelling a transaction's context rolls it back and
// frees the write slot.
func TestTxContextCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openDir(t, dir)
	patient := openDir(t, dir, "_busy=30s")
	mustExec(t, db, `CREATE TABLE cc(x)`)
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO cc VALUES ('cancelled')`); err != nil {
		t.Fatal(err)
	}
	cancel()
	mustExec(t, patient, `INSERT INTO cc VALUES ('next')`)
	if err := tx.Commit(); err == nil {
		t.Error("commit after cancel succeeded")
	}
	var v string
	if err := patient.QueryRow(`SELECT group_concat(x) FROM cc`).Scan(&v); err != nil || v != "next" {
		t.Errorf("rows = %q, %v; want only next", v, err)
	}
}

// TestTxConflictRollback: ON CONFLICT ROLLBACK ends the transaction inside
// SQLite; the driver reports it and nothing of the transaction remains.
func TestTxConflictRollback(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE cr(x UNIQUE ON CONFLICT ROLLBACK); INSERT INTO cr VALUES (1)`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO cr VALUES (2)`)
	_, err = tx.Exec(`INSERT INTO cr VALUES (1)`)
	if !errors.Is(err, sqlite3.CONSTRAINT) || !errors.Is(err, hiqlite.ErrTxAborted) {
		t.Errorf("conflict: %v", err)
	}
	if err := tx.Commit(); err == nil {
		t.Error("commit after SQLite rolled back succeeded")
	}
	if n := count(t, db, `SELECT count(*) FROM cr`); n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}
	// The slot is free again.
	mustExec(t, db, `INSERT INTO cr VALUES (3)`)
}

func TestTxLongReadInWriteTx(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	mustExec(t, db, `CREATE TABLE lr(x)`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	mustExec(t, tx, `INSERT INTO lr SELECT value FROM generate_series(1, 1000)`)
	rows, err := tx.Query(`SELECT x FROM lr ORDER BY x`)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for rows.Next() {
		var x int
		rows.Scan(&x)
		sum += x
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if sum != 500500 {
		t.Errorf("sum = %d", sum)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
