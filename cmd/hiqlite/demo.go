package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite"
)

// Demo timing: how long the whole demo may take, and how long one wait
// (an election, a catch-up) may take before the demo gives up.
const (
	demoTimeout = time.Minute
	demoWait    = 20 * time.Second
)

func cmdDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("demo", "[--dir DIR]", stderr)
	dir := fs.String("dir", "", "an empty or new directory for the nodes' data, kept afterwards (default: a temporary one, removed at the end)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// A node logs raft's and memberlist's errors to stderr, and a failover
	// is a stream of them (heartbeats to the stopped leader fail). The demo
	// explains what happens instead; HIQLITE_LOG still turns them on.
	if os.Getenv("HIQLITE_LOG") == "" {
		os.Setenv("HIQLITE_LOG", "off")
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	if *dir != "" {
		d, err := demo(ctx, stdout, *dir)
		if err != nil {
			return err
		}
		d.printKept()
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
	_, err = demo(ctx, stdout, tmp)
	return err
}

// demoRun is the state the steps of the demo share.
type demoRun struct {
	localCluster
	w     io.Writer
	notes int64 // rows committed to notes so far

	lastBeforeFailover int64 // the last note id when the leader stopped
}

// demo starts a three-node cluster on loopback in dir, which must be empty
// or not exist, and walks through it in numbered steps printed to w. It
// stops every node before it returns.
func demo(ctx context.Context, w io.Writer, dir string) (*demoRun, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("--dir %s is not empty: the demo needs a new directory (or leave out --dir)", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	d := &demoRun{w: w, localCluster: localCluster{dir: abs}}
	defer d.closeAll()
	began := time.Now()
	fmt.Fprintln(w, "hiqlite demo: a cluster of three nodes, in this process, on 127.0.0.1.")
	fmt.Fprintln(w, "Each node is what an application embeds: a full SQLite copy, a Raft log and")
	fmt.Fprintln(w, "gossip membership. Writes go through Raft; reads are local.")
	fmt.Fprintf(w, "Data: %s, one directory per node.\n", d.dir)
	if os.Getenv("HIQLITE_LOG") == "off" {
		fmt.Fprintln(w, "The nodes' own logs are off; HIQLITE_LOG=warn shows them.")
	}
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"Start three nodes and let them elect a leader", d.start},
		{"Write through a follower: it forwards the write to the leader", d.writeThroughFollower},
		{"Read on every node: local reads, identical data", d.readEverywhere},
		{"A linearizable read on a follower, right after a write", d.linearizable},
		{"A write transaction through a follower, and one rolled back", d.transactions},
		{"Stop the leader: the other two elect a new one and keep writing", d.failover},
		{"Restart the old leader: it rejoins as a follower and catches up", d.rejoin},
		{"Extensions: notifications, a replicated cache, a distributed lock", d.extensions},
		{"The cluster as SQL sees it, then stop every node", d.status},
	}
	for i, s := range steps {
		fmt.Fprintf(w, "\n%d. %s\n", i+1, s.title)
		if err := s.run(ctx); err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
	}
	fmt.Fprintf(w, "\nDone: every step worked (%s).\n", round(time.Since(began)))
	return d, nil
}

// printKept tells where the data of a --dir run stays and how to look at it.
func (d *demoRun) printKept() {
	fmt.Fprintf(d.w, "\nThe data stays in %s, one directory per node. Each node's database is a\n", d.dir)
	fmt.Fprintln(d.w, "plain SQLite file; look at one with any SQLite tool, for example:")
	fmt.Fprintf(d.w, "   sqlite3 -readonly %s 'SELECT * FROM notes'\n", filepath.Join(d.nodes[0].dir, "hiqlite.db"))
	fmt.Fprintln(d.w, "To run the cluster again, start the three nodes together, each with its DSN, for")
	fmt.Fprintln(d.w, "example hiqlite shell --dsn 'DSN' in three terminals (a node waits until a")
	fmt.Fprintln(d.w, "majority runs; the ports must still be free):")
	for _, n := range d.nodes {
		fmt.Fprintf(d.w, "   %s\n", n.dsn)
	}
}

// result prints the conclusion of a step.
func (d *demoRun) result(format string, args ...any) {
	fmt.Fprintf(d.w, "   => "+format+"\n", args...)
}

func (d *demoRun) say(format string, args ...any) {
	if format == "" {
		fmt.Fprintln(d.w)
		return
	}
	fmt.Fprintf(d.w, "   "+format+"\n", args...)
}

// showSQL prints a statement the way the step runs it, on node n.
func (d *demoRun) showSQL(n *localNode, q string) {
	q = strings.ReplaceAll(strings.Join(strings.Fields(q), " "), "( ", "(")
	d.say("%s> %s", n.name, q)
}

// table runs a query on n and prints the result.
func (d *demoRun) table(ctx context.Context, n *localNode, q string, args ...any) error {
	d.showSQL(n, q)
	rows, err := n.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	_, err = printRows(d.w, rows, "   ")
	return err
}

func (d *demoRun) start(ctx context.Context) error {
	d.say("Why: in production each node runs inside one application process, on its own")
	d.say("machine. Here three run in one process, each with a data directory and two ports.")
	if err := d.create(3); err != nil {
		return err
	}
	n1 := d.nodes[0]
	d.say("Each node is db, err := sql.Open(%q, dsn). The DSN of %s is its data", hiqlite.DriverName, n1.name)
	d.say("directory, '?', then parameters joined by '&':")
	for _, p := range [][2]string{
		{n1.dir, "its data directory"},
		{"_node=" + n1.name, "its id in the cluster"},
		{"_listen=" + n1.listen, "TCP port for Raft and forwarded requests"},
		{"_gossip=" + n1.gossip, "gossip: how nodes find each other"},
		{"_join=" + strings.Join(d.seeds(), ","), "where to look for the others"},
		{"_expect=3", "how many nodes bootstrap the cluster"},
		{"_secret_file=" + dsnEscaper.Replace(d.secretFile), "the secret that authenticates the nodes"},
	} {
		const width = 34
		if len(p[0]) > width {
			d.say("  %s", p[0])
			d.say("  %-*s  %s", width, "", p[1])
		} else {
			d.say("  %-*s  %s", width, p[0], p[1])
		}
	}
	d.say("node2 and node3 differ in their directory, _node, _listen and _gossip.")
	if err := d.openAll(ctx); err != nil {
		return err
	}
	d.say("")
	d.say("waiting for the nodes to find each other and elect a leader (node.WaitReady)...")
	began := time.Now()
	if err := d.waitReady(ctx); err != nil {
		return err
	}
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	d.say("ready after %s: %s was elected leader; the others follow it.", round(time.Since(began)), leader.name)
	ms, err := leader.node.Members()
	if err != nil {
		return err
	}
	d.say("")
	d.say("node.Members(), the Raft configuration (what a majority is counted from):")
	var cells [][]string
	for _, m := range ms {
		cells = append(cells, []string{m.ID, m.Address, fmt.Sprint(m.Voter), fmt.Sprint(m.IsLeader)})
	}
	printTable(d.w, "   ", []string{"id", "address", "voter", "leader"}, cells)
	if len(ms) != 3 {
		return fmt.Errorf("want 3 members, got %d", len(ms))
	}
	d.result("3 voters; %s leads.", leader.name)
	return nil
}

func (d *demoRun) writeThroughFollower(ctx context.Context) error {
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	f := d.followers(leader)[0]
	d.say("Why: only the leader writes, but the application never has to find it. %s", f.name)
	d.say("is a follower (IsLeader() = %v): it sends each write to %s over the cluster", f.node.IsLeader(), leader.name)
	d.say("port and returns the leader's result. DDL is a write like any other.")
	before := leader.node.AppliedIndex()
	q := `CREATE TABLE notes(
		id      INTEGER PRIMARY KEY AUTOINCREMENT,
		body    TEXT NOT NULL,
		created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`
	d.showSQL(f, q)
	if _, err := f.db.ExecContext(ctx, q); err != nil {
		return err
	}
	q = `INSERT INTO notes(body) VALUES (?) RETURNING id, created`
	d.showSQL(f, q)
	for _, body := range []string{"buy milk", "write the docs"} {
		var id int64
		var created string
		if err := f.db.QueryRowContext(ctx, q, body).Scan(&id, &created); err != nil {
			return err
		}
		d.notes++
		d.say("  %-16q -> RETURNING id=%d created=%s", body, id, created)
	}
	q = `INSERT INTO notes(body) VALUES (?)`
	d.showSQL(f, q)
	res, err := f.db.ExecContext(ctx, q, "ship it")
	if err != nil {
		return err
	}
	d.notes++
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return err
	}
	d.say("  %-16q -> LastInsertId()=%d RowsAffected()=%d", "ship it", id, affected)
	d.say("These results are the leader's: %s's applied index (the Raft index of the last", leader.name)
	d.say("command in its database) went %d -> %d, one command per write.", before, leader.node.AppliedIndex())
	n, err := countNotes(ctx, f.db)
	if err != nil {
		return err
	}
	d.say("A write returns once %s has applied it too, so %s reads its own writes at", f.name, f.name)
	d.say("once: %d notes there.", n)
	if n != d.notes {
		return fmt.Errorf("%s reads %d notes after its own writes, want %d", f.name, n, d.notes)
	}
	d.result("written through %s, a follower; forwarded to %s, the leader, and applied there.", f.name, leader.name)
	return nil
}

func (d *demoRun) readEverywhere(ctx context.Context) error {
	d.say("Why: every node holds the whole database, so a read runs on the local copy: no")
	d.say("network, no leader. A follower can lag a few milliseconds; here each waits until")
	d.say("it has applied the leader's last index (AppliedIndex()), then reads.")
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	idx := leader.node.AppliedIndex()
	d.say("waiting for every node to apply index %d...", idx)
	if err := d.waitApplied(ctx, idx); err != nil {
		return err
	}
	last := d.followers(leader)[1] // the follower that took no part in step 2
	if err := d.table(ctx, last, `SELECT id, body, created FROM notes ORDER BY id`); err != nil {
		return err
	}
	if err := d.compareNodes(ctx); err != nil {
		return err
	}

	d.say("")
	d.say("random() and 'now' would differ on every node if each ran them itself. In a")
	d.say("write they are fed by the Raft command (a seed and the leader's clock), so every")
	d.say("node stores the same values. DEFAULT CURRENT_TIMESTAMP (created, above) too.")
	f := d.followers(leader)[0]
	for _, q := range []string{
		`CREATE TABLE draws(r INTEGER, at TEXT)`,
		`INSERT INTO draws VALUES (random(), datetime('now', 'subsec'))`,
	} {
		d.showSQL(f, q)
		if _, err := f.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if err := d.waitApplied(ctx, leader.node.AppliedIndex()); err != nil {
		return err
	}
	d.say("SELECT r, at FROM draws, on each node:")
	var cells [][]string
	var stored []string
	for _, n := range d.running() {
		var r int64
		var at string
		if err := n.db.QueryRowContext(ctx, `SELECT r, at FROM draws`).Scan(&r, &at); err != nil {
			return err
		}
		cells = append(cells, []string{n.name, fmt.Sprint(r), at})
		stored = append(stored, fmt.Sprint(r, at))
	}
	printTable(d.w, "   ", []string{"node", "r (random())", "at (datetime('now', 'subsec'))"}, cells)
	for _, v := range stored {
		if v != stored[0] {
			return fmt.Errorf("draws differ between nodes: %q", stored)
		}
	}
	d.say("A read is not replicated: in a SELECT, random() is plain SQLite, run by each")
	d.say("node on its own:")
	d.say("SELECT random(), on each node:")
	cells = nil
	for _, n := range d.running() {
		var r int64
		if err := n.db.QueryRowContext(ctx, `SELECT random()`).Scan(&r); err != nil {
			return err
		}
		cells = append(cells, []string{n.name, fmt.Sprint(r)})
	}
	printTable(d.w, "   ", []string{"node", "random()"}, cells)
	d.result("the same rows and the same stored random() and 'now' values on all %d nodes.", len(d.running()))
	return nil
}

// compareNodes checks that all running nodes hold the same rows, value
// for value, and prints one line per node.
func (d *demoRun) compareNodes(ctx context.Context) error {
	count, err := d.sameEverywhere(ctx)
	if err != nil {
		return err
	}
	var cells [][]string
	for _, n := range d.running() {
		c, err := countNotes(ctx, n.db)
		if err != nil {
			return err
		}
		cells = append(cells, []string{n.name, n.role(), fmt.Sprint(n.node.AppliedIndex()), fmt.Sprint(c)})
	}
	printTable(d.w, "   ", []string{"node", "role", "applied index", "notes"}, cells)
	on := fmt.Sprintf("all %d nodes", len(cells))
	if len(cells) == 2 {
		on = "both running nodes"
	}
	d.say("The tables are identical on %s, row for row and value for value.", on)
	if count != d.notes {
		return fmt.Errorf("%d notes, want %d", count, d.notes)
	}
	return nil
}

func (d *demoRun) linearizable(ctx context.Context) error {
	d.say("Why: a local read may miss a write that another node has just made. When that")
	d.say("matters, ask for a linearizable read: the node asks the leader for its commit")
	d.say("index (confirming it still leads), waits until it has applied that index, then")
	d.say("reads locally. It sees every write that finished before it started.")
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	f := d.followers(leader)[1]
	q := `INSERT INTO notes(body) VALUES ('read me at once')`
	d.showSQL(leader, q)
	if _, err := leader.db.ExecContext(ctx, q); err != nil {
		return err
	}
	d.notes++
	target := leader.node.AppliedIndex()
	seen := f.node.AppliedIndex()
	d.say("and at once on %s, with ctx = hiqlite.WithConsistency(ctx, hiqlite.Linearizable):", f.name)
	d.showSQL(f, `SELECT count(*) FROM notes`)
	lctx := hiqlite.WithConsistency(ctx, hiqlite.Linearizable)
	n, err := countNotes(lctx, f.db)
	if err != nil {
		return err
	}
	d.say("  -> %d notes, including the new one.", n)
	if seen < target {
		d.say("When the read began, %s had applied index %d, the leader %d: a local read", f.name, seen, target)
		d.say("could have missed the write; the linearizable one waited for it.")
	} else {
		d.say("This time %s had already applied index %d when the read began (on loopback", f.name, target)
		d.say("followers lag by milliseconds); the linearizable read guarantees it every time.")
	}
	if n != d.notes {
		return fmt.Errorf("the linearizable read on %s saw %d notes, want %d", f.name, n, d.notes)
	}
	d.result("the linearizable read on %s saw the write made on %s just before.", f.name, leader.name)
	return nil
}

func (d *demoRun) transactions(ctx context.Context) error {
	d.say("Why: a write transaction behaves as in SQLite, wherever it starts. Its statements")
	d.say("run at once on the leader's writer (over one session from a follower), so they")
	d.say("return results and see their own writes; COMMIT replicates them as one command.")
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	f := d.followers(leader)[0]
	// Step 4 wrote on the leader: let f apply it, so that its local reads
	// below count it.
	if err := d.waitApplied(ctx, leader.node.AppliedIndex()); err != nil {
		return err
	}
	d.say("tx, _ := db.BeginTx(ctx, nil) on %s (a follower)", f.name)
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := `INSERT INTO notes(body) VALUES ('written in a transaction') RETURNING id`
	d.showSQL(f, q)
	var id int64
	if err := tx.QueryRowContext(ctx, q).Scan(&id); err != nil {
		return err
	}
	d.say("  -> id=%d, at once", id)
	d.showSQL(f, `SELECT count(*) FROM notes`)
	inside, err := countNotes(ctx, tx)
	if err != nil {
		return err
	}
	outside, err := countNotes(ctx, f.db)
	if err != nil {
		return err
	}
	d.say("  -> %d notes inside the transaction (it sees its own write),", inside)
	d.say("     %d outside it (nothing is committed yet)", outside)
	if inside != d.notes+1 || outside != d.notes {
		return fmt.Errorf("want %d notes inside and %d outside", d.notes+1, d.notes)
	}
	before := leader.node.AppliedIndex()
	d.say("tx.Commit()")
	if err := tx.Commit(); err != nil {
		return err
	}
	d.notes++
	d.say("  -> the leader's applied index %d -> %d: the whole transaction is one command.", before, leader.node.AppliedIndex())

	d.say("")
	d.say("tx, _ = db.BeginTx(ctx, nil) on %s again", f.name)
	tx2, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx2.Rollback()
	before = leader.node.AppliedIndex()
	q = `INSERT INTO notes(body) VALUES ('never stored')`
	d.showSQL(f, q)
	if _, err := tx2.ExecContext(ctx, q); err != nil {
		return err
	}
	inside, err = countNotes(ctx, tx2)
	if err != nil {
		return err
	}
	d.say("  -> %d notes inside the transaction", inside)
	d.say("tx.Rollback()")
	if err := tx2.Rollback(); err != nil {
		return err
	}
	after := leader.node.AppliedIndex()
	d.say("  -> the leader's applied index stays %d: nothing was replicated.", after)
	if inside != d.notes+1 || after != before {
		return fmt.Errorf("want %d notes inside and applied index %d, got %d and %d", d.notes+1, before, inside, after)
	}
	for _, n := range d.running() {
		var never int64
		if err := n.db.QueryRowContext(ctx, `SELECT count(*) FROM notes WHERE body = 'never stored'`).Scan(&never); err != nil {
			return err
		}
		if never != 0 {
			return fmt.Errorf("%s holds the rolled-back row", n.name)
		}
	}
	if err := d.compareNodes(ctx); err != nil {
		return err
	}
	d.result("the committed transaction is on every node; the rolled-back one left no trace.")
	return nil
}

func (d *demoRun) failover(ctx context.Context) error {
	d.say("Why: a node can crash at any time, the leader too. With three voters, two are a")
	d.say("majority: they elect a new leader and go on accepting writes.")
	old, err := d.leader(ctx)
	if err != nil {
		return err
	}
	d.say("db.Close() on %s, the leader. Closing the last *sql.DB of a node stops it", old.name)
	d.say("without leaving the cluster: to the others it looks like a crash, and it stays a")
	d.say("member (a dead node is only removed after minutes), so it can come back.")
	if err := old.db.QueryRowContext(ctx, `SELECT max(id) FROM notes`).Scan(&d.lastBeforeFailover); err != nil {
		return err
	}
	if err := old.stop(); err != nil {
		return err
	}
	stopped := time.Now()
	rest := d.running()
	d.say("%s stopped. waiting for the election between %s and %s...", old.name, rest[0].name, rest[1].name)
	d.say("(a follower waits 0.5 to 1 s without a heartbeat before it stands for election)")
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	d.say("%s was elected leader %s after %s stopped.", leader.name, round(time.Since(stopped)), old.name)
	ms, err := leader.node.Members()
	if err != nil {
		return err
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	d.say("The members are still %s: %s is expected back.", strings.Join(ids, ", "), old.name)
	if !slices.Contains(ids, old.name) {
		return fmt.Errorf("%s is no longer a member", old.name)
	}

	f := d.followers(leader)[0]
	q := `INSERT INTO notes(body) VALUES (?)`
	d.showSQL(f, q)
	var firstWrite time.Duration
	for i := range 3 {
		body := fmt.Sprintf("written while %s is down (%d)", old.name, i+1)
		if _, err := f.db.ExecContext(ctx, q, body); err != nil {
			return err
		}
		d.notes++
		if i == 0 {
			firstWrite = time.Since(stopped)
			d.say("  %q: accepted %s after %s stopped", body, round(firstWrite), old.name)
		} else {
			d.say("  %q", body)
		}
	}
	if err := d.compareNodes(ctx); err != nil {
		return err
	}
	d.result("%s took over from %s: first write accepted %s after %s stopped.",
		leader.name, old.name, round(firstWrite), old.name)
	return nil
}

func (d *demoRun) rejoin(ctx context.Context) error {
	var old *localNode
	for _, n := range d.nodes {
		if n.db == nil {
			old = n
		}
	}
	d.say("Why: a node that was down has missed writes. It must come back as the member it")
	d.say("was and catch up, not start a cluster of its own. %s opens its data directory", old.name)
	d.say("again with the same DSN: same node id, its database and Raft log as it left them.")
	d.say("It finds the others through gossip; the leader sends it every entry it missed.")
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	d.say("sql.Open(%q, dsn of %s)", hiqlite.DriverName, old.name)
	began := time.Now()
	if err := old.open(ctx); err != nil {
		return err
	}
	behind := old.node.AppliedIndex()
	d.say("%s starts at applied index %d; the leader %s is at %d.", old.name, behind, leader.name, leader.node.AppliedIndex())
	d.say("waiting for %s to rejoin and catch up (node.WaitReady)...", old.name)
	wctx, cancel := context.WithTimeout(ctx, demoWait)
	err = old.node.WaitReady(wctx)
	cancel()
	if err != nil {
		return err
	}
	if leader, err = d.leader(ctx); err != nil {
		return err
	}
	if _, err := d.sameEverywhere(ctx); err != nil {
		return err
	}
	lid, _ := old.node.Leader()
	d.say("%s is back after %s, as a %s of %s.", old.name, round(time.Since(began)), old.role(), lid)
	if old.node.IsLeader() {
		return fmt.Errorf("%s came back as the leader", old.name)
	}
	d.say("Its applied index went %d -> %d, the leader's %d. The rows it missed:", behind, old.node.AppliedIndex(), leader.node.AppliedIndex())
	if err := d.table(ctx, old, fmt.Sprintf(`SELECT id, body FROM notes WHERE id > %d ORDER BY id`, d.lastBeforeFailover)); err != nil {
		return err
	}
	if err := d.compareNodes(ctx); err != nil {
		return err
	}
	d.result("%s rejoined as a follower and caught up: applied index %d, as on the leader.", old.name, old.node.AppliedIndex())
	return nil
}

func (d *demoRun) extensions(ctx context.Context) error {
	d.say("Why: applications often need more than tables: telling other processes that")
	d.say("something changed, sharing short-lived values, and making sure only one process")
	d.say("does a job. Every node offers these too, replicated like the writes.")
	leader, err := d.leader(ctx)
	if err != nil {
		return err
	}
	fs := d.followers(leader)
	listeners := make([]*hiqlite.Listener, len(d.nodes))
	for i, n := range d.nodes {
		if listeners[i], err = n.node.Listen(ctx, "notes"); err != nil {
			return err
		}
		defer listeners[i].Close()
	}
	d.say("Every node listens on channel 'notes' (node.Listen). A trigger notifies on insert:")
	q := `CREATE TRIGGER note_added AFTER INSERT ON notes BEGIN SELECT hiqlite_notify('notes', NEW.body); END`
	d.showSQL(fs[0], q)
	if _, err := fs[0].db.ExecContext(ctx, q); err != nil {
		return err
	}
	q = `INSERT INTO notes(body) VALUES ('tell everyone')`
	d.showSQL(fs[0], q)
	if _, err := fs[0].db.ExecContext(ctx, q); err != nil {
		return err
	}
	d.notes++
	for i, n := range d.nodes {
		m, err := listeners[i].Next(ctx)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", n.name, err)
		}
		if m.Payload != "tell everyone" {
			return fmt.Errorf("%s got %q on 'notes', want %q", n.name, m.Payload, "tell everyone")
		}
		d.say("  %s got %q (the write's Raft index %d)", n.name, m.Payload, m.Index)
	}
	d.say("A notification raised in a transaction that rolls back is never delivered.")

	d.say("")
	d.say("A cache: node.Cache(\"sessions\").Set on %s, with a TTL; Get is local on every node:", fs[1].name)
	if err := fs[1].node.Cache("sessions").Set(ctx, "ada", []byte("logged in"), time.Minute); err != nil {
		return err
	}
	for _, n := range d.nodes {
		var v []byte
		ok := false
		for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); {
			if v, ok = n.node.Cache("sessions").Get("ada"); !ok {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
		if !ok {
			return fmt.Errorf("the cache entry did not reach %s", n.name)
		}
		d.say("  %s: Get(\"ada\") = %q", n.name, v)
	}

	d.say("")
	d.say("A lock: node.Lock(ctx, \"nightly-report\", ttl) on two nodes in turn. Each lease")
	d.say("carries a fencing token that grows from one holder to the next:")
	var last uint64
	for _, n := range []*localNode{fs[0], leader} {
		lease, err := n.node.Lock(ctx, "nightly-report", 10*time.Second)
		if err != nil {
			return err
		}
		d.say("  %s holds the lock, token %d", n.name, lease.Token())
		if lease.Token() <= last {
			return fmt.Errorf("token %d after %d", lease.Token(), last)
		}
		last = lease.Token()
		if err := lease.Unlock(ctx); err != nil {
			return err
		}
	}
	d.result("every node got the notification, the cache entry, and the lock in turn.")
	return nil
}

func (d *demoRun) status(ctx context.Context) error {
	d.say("Why: any SQL tool can see the cluster from any node: hiqlite_nodes lists the")
	d.say("members (applied_index and state are known for the node you ask), and")
	d.say("functions tell this node's id, its leader, whether it leads, its applied index.")
	n := d.nodes[0]
	if err := d.table(ctx, n, `SELECT node_id, raft_addr, voter, state, is_leader, applied_index FROM hiqlite_nodes`); err != nil {
		return err
	}
	if err := d.table(ctx, n, `SELECT hiqlite_node_id() AS node, hiqlite_leader_id() AS leader,
		hiqlite_is_leader() AS is_leader, hiqlite_applied_index() AS applied`); err != nil {
		return err
	}
	d.say("")
	d.say("db.Close() on every node: each stops, its data stays in its directory.")
	for _, n := range d.nodes {
		if err := n.stop(); err != nil {
			return fmt.Errorf("stop %s: %w", n.name, err)
		}
	}
	d.say("all three stopped.")
	return nil
}

// round shortens a duration for printing.
func round(t time.Duration) time.Duration {
	if t < time.Second {
		return t.Round(time.Millisecond)
	}
	return t.Round(10 * time.Millisecond)
}
