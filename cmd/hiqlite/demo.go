package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite"
)

func cmdDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("demo", "[--dir DIR]", stderr)
	dir := fs.String("dir", "", "an empty or new data directory, kept afterwards (default: a temporary one, removed at the end)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if *dir != "" {
		if err := demo(ctx, stdout, *dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "The data stays in %s. Look at it: hiqlite shell --dsn %s\n", *dir, *dir)
		return nil
	}
	tmp, err := os.MkdirTemp("", "hiqlite-demo-*")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the temporary directory: %w", rerr))
			return
		}
		fmt.Fprintf(stdout, "\nRemoved the temporary directory %s.\n", tmp)
	}()
	return demo(ctx, stdout, tmp)
}

// demoRun is the state the steps of the demo share.
type demoRun struct {
	w    io.Writer
	dir  string
	db   *sql.DB
	node *hiqlite.Node

	notes int64 // notes committed so far
}

// demo walks through one node in dir, which must be empty or not exist,
// printing numbered steps to w. It closes the node before it returns.
func demo(ctx context.Context, w io.Writer, dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("--dir %s is not empty: the demo needs a new directory (or leave out --dir)", dir)
	}
	d := &demoRun{w: w, dir: dir}
	defer func() {
		if d.db != nil {
			d.db.Close()
		}
	}()
	fmt.Fprintln(w, "hiqlite demo: one node (the cluster arrives with a later issue), every write through Raft.")
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{fmt.Sprintf("Open a node: sql.Open(%q, %q)", hiqlite.DriverName, dir), d.open},
		{"Create a table (DDL is a write like any other: a Raft command)", d.createTable},
		{"Insert rows with INSERT ... RETURNING", d.insertReturning},
		{"An interactive transaction that commits", d.txCommit},
		{"A transaction that is rolled back", d.txRollback},
		{"random() and 'now' in a write are stored as concrete values", d.determinism},
		{"Read everything back (reads are local: no Raft, no network)", d.readBack},
		{"Ask the node about itself, in SQL", d.status},
		{"Close the node and open it again", d.reopen},
	}
	for i, s := range steps {
		fmt.Fprintf(w, "\n%d. %s\n", i+1, s.title)
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
	}
	fmt.Fprintln(w, "\nDone: every step worked.")
	return nil
}

func (d *demoRun) say(format string, args ...any) {
	fmt.Fprintf(d.w, "   "+format+"\n", args...)
}

// showSQL prints a statement the way the step runs it.
func (d *demoRun) showSQL(q string) {
	d.say("sql> %s", strings.ReplaceAll(strings.Join(strings.Fields(q), " "), "( ", "("))
}

func (d *demoRun) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	d.showSQL(q)
	return d.db.ExecContext(ctx, q, args...)
}

func (d *demoRun) table(ctx context.Context, q string, args ...any) error {
	d.showSQL(q)
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	_, err = printRows(d.w, rows, "   ")
	return err
}

func countNotes(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&n)
	return n, err
}

// openDB opens the node and waits until it leads.
func (d *demoRun) openDB(ctx context.Context) error {
	db, err := sql.Open(hiqlite.DriverName, d.dir)
	if err != nil {
		return err
	}
	d.db = db
	if d.node, err = hiqlite.NodeOf(ctx, db); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.node.WaitReady(wctx)
}

func (d *demoRun) open(ctx context.Context) error {
	if err := d.openDB(ctx); err != nil {
		return err
	}
	n := d.node
	d.say("node id:    %s (generated once, kept in %s)", n.ID(), "node-id")
	d.say("is leader:  %v (a single voter elects itself at once)", n.IsLeader())
	if !n.IsLeader() {
		return errors.New("the node did not become the leader")
	}
	d.say("data dir:   %s", n.DataDir())
	entries, err := os.ReadDir(n.DataDir())
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		names = append(names, name)
	}
	slices.Sort(names)
	d.say("files:      %s", strings.Join(names, " "))
	d.say("            hiqlite.db is the SQLite database, raft/ the Raft log, snapshots/ the")
	d.say("            Raft snapshots, LOCK keeps other processes out of the directory.")
	return nil
}

func (d *demoRun) createTable(ctx context.Context) error {
	before := d.node.AppliedIndex()
	_, err := d.exec(ctx, `CREATE TABLE notes(
		id      INTEGER PRIMARY KEY AUTOINCREMENT,
		body    TEXT NOT NULL,
		created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`)
	if err != nil {
		return err
	}
	d.say("applied index: %d -> %d (the Raft index of the last command in the database;", before, d.node.AppliedIndex())
	d.say("               each election adds a no-op command, so the index starts above 0)")
	return nil
}

func (d *demoRun) insertReturning(ctx context.Context) error {
	for _, body := range []string{"buy milk", "write the docs", "ship it"} {
		q := `INSERT INTO notes(body) VALUES (?) RETURNING id, created`
		if body == "buy milk" {
			d.showSQL(q)
		}
		var id int64
		var created string
		if err := d.db.QueryRowContext(ctx, q, body).Scan(&id, &created); err != nil {
			return err
		}
		d.notes++
		d.say("  %-16q -> id=%d created=%s", body, id, created)
	}
	d.say("created came from DEFAULT CURRENT_TIMESTAMP: the leader's clock, carried in the command.")
	return nil
}

func (d *demoRun) txCommit(ctx context.Context) error {
	d.say("tx, _ := db.BeginTx(ctx, nil)")
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := `INSERT INTO notes(body) VALUES ('written in a transaction')`
	d.showSQL(q)
	res, err := tx.ExecContext(ctx, q)
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	d.say("  -> LastInsertId %d, at once: the statement ran on the leader's writer", id)
	inside, err := countNotes(ctx, tx)
	if err != nil {
		return err
	}
	outside, err := countNotes(ctx, d.db)
	if err != nil {
		return err
	}
	d.say("inside the transaction:  %d notes (it reads its own write)", inside)
	d.say("outside the transaction: %d notes (nothing is committed yet)", outside)
	if inside != d.notes+1 || outside != d.notes {
		return fmt.Errorf("want %d notes inside and %d outside", d.notes+1, d.notes)
	}
	d.say("tx.Commit(): the transaction's statements become one Raft command")
	if err := tx.Commit(); err != nil {
		return err
	}
	d.notes++
	after, err := countNotes(ctx, d.db)
	if err != nil {
		return err
	}
	d.say("after COMMIT:            %d notes, applied index %d", after, d.node.AppliedIndex())
	if after != d.notes {
		return fmt.Errorf("want %d notes after COMMIT, got %d", d.notes, after)
	}
	return nil
}

func (d *demoRun) txRollback(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	before := d.node.AppliedIndex()
	q := `INSERT INTO notes(body) VALUES ('never stored')`
	d.showSQL(q)
	if _, err := tx.ExecContext(ctx, q); err != nil {
		return err
	}
	inside, err := countNotes(ctx, tx)
	if err != nil {
		return err
	}
	d.say("inside the transaction: %d notes", inside)
	d.say("tx.Rollback(): nothing was replicated, nothing remains")
	if err := tx.Rollback(); err != nil {
		return err
	}
	after, err := countNotes(ctx, d.db)
	if err != nil {
		return err
	}
	d.say("after ROLLBACK:         %d notes, applied index still %d", after, d.node.AppliedIndex())
	if inside != d.notes+1 || after != d.notes || d.node.AppliedIndex() != before {
		return fmt.Errorf("want %d notes inside, %d after and applied index %d, got %d, %d and %d",
			d.notes+1, d.notes, before, inside, after, d.node.AppliedIndex())
	}
	return nil
}

func (d *demoRun) determinism(ctx context.Context) error {
	if _, err := d.exec(ctx, `CREATE TABLE samples(n INTEGER PRIMARY KEY, r INTEGER, b TEXT, at TEXT)`); err != nil {
		return err
	}
	if _, err := d.exec(ctx, `INSERT INTO samples
		SELECT value, random(), hex(randomblob(4)), strftime('%Y-%m-%d %H:%M:%f', 'now')
		FROM generate_series(1, 3)`); err != nil {
		return err
	}
	read := func() ([][3]string, error) {
		rows, err := d.db.QueryContext(ctx, `SELECT r, b, at FROM samples ORDER BY n`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][3]string
		for rows.Next() {
			var r [3]string
			if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, rows.Err()
	}
	first, err := read()
	if err != nil {
		return err
	}
	if err := d.table(ctx, `SELECT * FROM samples`); err != nil {
		return err
	}
	again, err := read()
	if err != nil {
		return err
	}
	if !slices.Equal(first, again) {
		return fmt.Errorf("stored values changed between two reads: %v, then %v", first, again)
	}
	if len(first) != 3 || first[0][2] != first[1][2] || first[1][2] != first[2][2] {
		return fmt.Errorf("want three rows sharing one 'now', got %v", first)
	}
	d.say("On the writer, random(), randomblob() and 'now' are replaced by functions fed")
	d.say("by the Raft command: a seed and the leader's clock. Every node that applies the")
	d.say("command stores these same values; reading them again gives the same values.")
	d.say("random() differs per row (a PRNG keyed by the seed); 'now' is one instant per command.")
	var r1, r2 int64
	if err := d.db.QueryRowContext(ctx, `SELECT random(), random()`).Scan(&r1, &r2); err != nil {
		return err
	}
	d.say("A read is not replicated, so SELECT random(), random() is plain SQLite: %d, %d", r1, r2)
	return nil
}

func (d *demoRun) readBack(ctx context.Context) error {
	return d.table(ctx, `SELECT id, body, created FROM notes ORDER BY id`)
}

func (d *demoRun) status(ctx context.Context) error {
	if err := d.table(ctx, `SELECT * FROM hiqlite_nodes`); err != nil {
		return err
	}
	if err := d.table(ctx, `SELECT hiqlite_node_id() AS node_id, hiqlite_is_leader() AS is_leader, hiqlite_applied_index() AS applied_index`); err != nil {
		return err
	}
	d.say("From Go: hiqlite.NodeOf(ctx, db) gives ID()=%s, IsLeader()=%v, AppliedIndex()=%d",
		d.node.ID(), d.node.IsLeader(), d.node.AppliedIndex())
	return nil
}

func (d *demoRun) reopen(ctx context.Context) error {
	id, applied := d.node.ID(), d.node.AppliedIndex()
	before, err := countNotes(ctx, d.db)
	if err != nil {
		return err
	}
	d.say("db.Close() stops the node (this was the last *sql.DB of its data dir)")
	err = d.db.Close()
	d.db = nil
	if err != nil {
		return err
	}
	d.say("sql.Open(%q, %q) starts it again from its files", hiqlite.DriverName, d.dir)
	if err := d.openDB(ctx); err != nil {
		return err
	}
	after, err := countNotes(ctx, d.db)
	if err != nil {
		return err
	}
	d.say("node id %s, leader %v, applied index %d (was %d)", d.node.ID(), d.node.IsLeader(), d.node.AppliedIndex(), applied)
	d.say("%d notes survived the restart (%d before)", after, before)
	switch {
	case d.node.ID() != id:
		return fmt.Errorf("the node id changed from %s to %s", id, d.node.ID())
	case after != before:
		return fmt.Errorf("%d notes before the restart, %d after", before, after)
	case d.node.AppliedIndex() < applied:
		return fmt.Errorf("applied index went back from %d to %d", applied, d.node.AppliedIndex())
	}
	return nil
}
