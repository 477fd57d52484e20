package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
)

// A single node in a directory of its own: open it, create a table, insert
// with RETURNING, and query.
func Example() {
	dir, err := os.MkdirTemp("", "hiqlite-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := sql.Open("hiqlite", dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// The node elects itself within moments; the first write waits for
	// that (up to its context's deadline or _timeout), so no WaitReady.
	ctx := context.Background()

	_, err = db.ExecContext(ctx, `CREATE TABLE users(
		id   INTEGER PRIMARY KEY AUTOINCREMENT,
		name TEXT NOT NULL UNIQUE)`)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"ada", "grace"} {
		var id int64
		err := db.QueryRowContext(ctx, `INSERT INTO users(name) VALUES (?) RETURNING id`, name).Scan(&id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("inserted", name, "with id", id)
	}

	// SQL errors are SQLite's own, wherever the write ran.
	_, err = db.ExecContext(ctx, `INSERT INTO users(name) VALUES ('ada')`)
	fmt.Println("duplicate is a constraint error:", errors.Is(err, sqlite3.CONSTRAINT))

	rows, err := db.QueryContext(ctx, `SELECT id, name FROM users ORDER BY id`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			log.Fatal(err)
		}
		fmt.Println(id, name)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// inserted ada with id 1
	// inserted grace with id 2
	// duplicate is a constraint error: true
	// 1 ada
	// 2 grace
}

// A write transaction runs each statement at once on the leader and reads
// its own writes; COMMIT replicates it as one Raft command, Rollback
// leaves no trace.
func Example_transaction() {
	dir, err := os.MkdirTemp("", "hiqlite-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("hiqlite", dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE accounts(name TEXT PRIMARY KEY, balance INTEGER NOT NULL)`); err != nil {
		log.Fatal(err)
	}
	balances := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) string {
		var s sql.NullString
		if err := q.QueryRowContext(ctx, `SELECT group_concat(name || '=' || balance, ' ') FROM (SELECT * FROM accounts ORDER BY name)`).Scan(&s); err != nil {
			log.Fatal(err)
		}
		if !s.Valid {
			return "(none)"
		}
		return s.String
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts VALUES ('alice', 100), ('bob', 0)`); err != nil {
		log.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = balance + 30 WHERE name = 'bob'`); err != nil {
		log.Fatal(err)
	}
	fmt.Println("in the transaction:", balances(tx))
	fmt.Println("outside, before COMMIT:", balances(db))
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after COMMIT:", balances(db))

	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM accounts`); err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted in the transaction:", balances(tx))
	if err := tx.Rollback(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Rollback:", balances(db))
	// Output:
	// in the transaction: alice=100 bob=30
	// outside, before COMMIT: (none)
	// after COMMIT: alice=100 bob=30
	// deleted in the transaction: (none)
	// after Rollback: alice=100 bob=30
}

// NodeOf reaches the node behind a *sql.DB: its identity, leadership and
// progress. The same facts are SQL functions on every connection.
func ExampleNodeOf() {
	dir, err := os.MkdirTemp("", "hiqlite-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("hiqlite", dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	node, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	if err := node.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
	leaderID, _ := node.Leader()
	members, err := node.Members()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader:", node.IsLeader(), leaderID == node.ID())
	fmt.Println("members:", len(members))
	fmt.Println("data dir:", node.DataDir() == dir)

	before := node.AppliedIndex()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t(x)`); err != nil {
		log.Fatal(err)
	}
	fmt.Println("a write advances the applied index:", node.AppliedIndex() > before)

	var id string
	var isLeader bool
	var applied uint64
	err = db.QueryRowContext(ctx, `SELECT hiqlite_node_id(), hiqlite_is_leader(), hiqlite_applied_index()`).Scan(&id, &isLeader, &applied)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("in SQL:", id == node.ID(), isLeader, applied == node.AppliedIndex())
	// Output:
	// leader: true true
	// members: 1
	// data dir: true
	// a write advances the applied index: true
	// in SQL: true true true
}

// A Config and its DSN are interchangeable; FormatDSN is canonical.
func ExampleParseDSN() {
	cfg, err := hiqlite.ParseDSN("file:/var/lib/app?_timeout=3s&_busy=1s&_consistency=linearizable")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.DataDir, cfg.Timeout, cfg.Busy, cfg.TxIdle, cfg.Consistency)
	fmt.Println(cfg.FormatDSN())

	_, err = hiqlite.ParseDSN("/var/lib/app?_txidle=soon")
	fmt.Println(err)
	// Output:
	// /var/lib/app 3s 1s 5s linearizable
	// /var/lib/app?_busy=1s&_consistency=linearizable&_timeout=3s
	// hiqlite: invalid _txidle "soon": time: invalid duration "soon"
}

// A linearizable read waits until this node has applied everything the
// leader committed before it; a local read (the default) does not wait.
func ExampleWithConsistency() {
	dir, err := os.MkdirTemp("", "hiqlite-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("hiqlite", dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	if _, err := db.ExecContext(ctx, `CREATE TABLE events(id INTEGER PRIMARY KEY, what TEXT)`); err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO events(what) VALUES ('started')`); err != nil {
		log.Fatal(err)
	}

	var n int
	lctx := hiqlite.WithConsistency(ctx, hiqlite.Linearizable)
	if err := db.QueryRowContext(lctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("events:", n)
	// Output:
	// events: 1
}

// RetryTx runs a read-then-write transaction again when it fails with an
// error that proves it did not commit, such as SQLITE_BUSY_SNAPSHOT when
// another write committed between its read and its write (here on
// purpose, in the first attempt).
func ExampleRetryTx() {
	dir, err := os.MkdirTemp("", "hiqlite-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("hiqlite", dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE counter(n INTEGER NOT NULL); INSERT INTO counter VALUES (0)`); err != nil {
		log.Fatal(err)
	}

	attempts := 0
	err = hiqlite.RetryTx(ctx, db, nil, func(tx *sql.Tx) error {
		attempts++
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
			return err
		}
		if attempts == 1 { // another writer gets in first
			if _, err := db.ExecContext(ctx, `UPDATE counter SET n = 10`); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE counter SET n = ?`, n+1)
		return err // SQLITE_BUSY_SNAPSHOT in the first attempt
	})
	if err != nil {
		log.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("attempts:", attempts, "counter:", n)
	// Output:
	// attempts: 2 counter: 11
}
