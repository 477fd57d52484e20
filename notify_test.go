package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// receive reads n notifications from l, failing the test after timeout.
func receive(t testing.TB, l *hiqlite.Listener, n int, timeout time.Duration) []hiqlite.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []hiqlite.Notification
	for len(got) < n {
		m, err := l.Next(ctx)
		if err != nil {
			t.Fatalf("%s: after %d of %d notifications: %v", l.Channel(), len(got), n, err)
		}
		got = append(got, m)
	}
	return got
}

// payloads renders notifications as "payload" or "payload+missed".
func payloads(ns []hiqlite.Notification) []string {
	var out []string
	for _, n := range ns {
		s := n.Payload
		if n.Missed > 0 {
			s += fmt.Sprintf("+%d", n.Missed)
		}
		out = append(out, s)
	}
	return out
}

// nothingPending fails the test if l holds a notification right now.
func nothingPending(t testing.TB, l *hiqlite.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := l.Next(ctx); err == nil {
		t.Fatalf("%s: unexpected notification %+v", l.Channel(), m)
	}
}

func nodeOf(t testing.TB, db *sql.DB) *hiqlite.Node {
	t.Helper()
	n, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// notifySchema has a trigger that notifies on "orders" for each inserted
// row, and a table whose conflicts roll the whole transaction back.
const notifySchema = `CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT UNIQUE);
CREATE TRIGGER orders_notify AFTER INSERT ON orders BEGIN SELECT hiqlite_notify('orders', NEW.item); END;
CREATE VIEW notify_view AS SELECT hiqlite_notify('orders', 'from a view') AS x;`

// checkTriggerNotify runs writes that commit, fail or roll back on db and
// checks that l (on node n, or elsewhere) gets exactly the committed ones.
func checkTriggerNotify(t *testing.T, db *sql.DB, listeners ...*hiqlite.Listener) {
	t.Helper()
	mustExec(t, db, `INSERT INTO orders(item) VALUES ('a'), ('b')`)
	// A failing statement: its rows and their notifications are undone.
	if _, err := db.Exec(`INSERT INTO orders(item) VALUES ('c'), ('a')`); err == nil {
		t.Fatal("duplicate item inserted")
	}
	// A text of several statements whose second fails: the first stands.
	if _, err := db.Exec(`INSERT INTO orders(item) VALUES ('d'); INSERT INTO orders(item) VALUES ('b')`); err == nil {
		t.Fatal("duplicate item inserted")
	}
	expect(t, listeners, "a", "b", "d")
	// A transaction rolled back notifies nothing; a committed one notifies
	// at COMMIT what survived its savepoints and failed statements.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO orders(item) VALUES ('rolled back')`)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO orders(item) VALUES ('e')`)
	mustExec(t, tx, `SAVEPOINT s`)
	mustExec(t, tx, `INSERT INTO orders(item) VALUES ('undone')`)
	mustExec(t, tx, `ROLLBACK TO s`)
	if _, err := tx.Exec(`INSERT INTO orders(item) VALUES ('e')`); err == nil {
		t.Fatal("duplicate item inserted in a transaction")
	}
	mustExec(t, tx, `SELECT hiqlite_notify('orders', 'f')`)
	for _, l := range listeners {
		nothingPending(t, l)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// SELECT hiqlite_notify(...) is a write of its own.
	mustExec(t, db, `SELECT hiqlite_notify('orders', ?)`, "g")
	var x any
	if err := db.QueryRow(`SELECT x FROM notify_view`).Scan(&x); err == nil || !strings.Contains(err.Error(), "only in a write") {
		t.Fatalf("hiqlite_notify in a read: %v, want an error saying it works only in a write", err)
	}
	expect(t, listeners, "e", "f", "g")
}

// expect checks that each listener gets want next.
func expect(t *testing.T, listeners []*hiqlite.Listener, want ...string) {
	t.Helper()
	for _, l := range listeners {
		if got := payloads(receive(t, l, len(want), 30*time.Second)); !slices.Equal(got, want) {
			t.Fatalf("%s: got %q, want %q", l.Channel(), got, want)
		}
	}
}

func TestNotifySingleNode(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	n := nodeOf(t, db)
	mustExec(t, db, notifySchema)
	ctx := context.Background()
	l, err := n.Listen(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkTriggerNotify(t, db, l)

	// Notify, reached through conn.Raw as well, returns once delivered here.
	ch, err := n.Listen(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, "jobs", "1"); err != nil {
		t.Fatal(err)
	}
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = sc.Raw(func(dc any) error { return dc.(hiqlite.NodeConn).Node().Notify(ctx, "jobs", "2") })
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := payloads(receive(t, ch, 2, time.Second)); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("jobs: %q", got)
	}
	nothingPending(t, l) // another channel

	// A listener whose context ends is closed.
	lctx, cancel := context.WithCancel(ctx)
	short, err := n.Listen(lctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := short.Next(ctx); !errors.Is(err, hiqlite.ErrListenerClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after the listener's context ended: %v", err)
	}
	if err := n.Notify(ctx, "", "x"); err == nil {
		t.Fatal("Notify accepted an empty channel")
	}
}

// The missed-message count: a listener that does not read keeps its newest
// notifications and is told how many older ones it lost.
func TestNotifyMissed(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	n := nodeOf(t, db)
	ctx := context.Background()
	slow, err := n.Listen(ctx, "tick", hiqlite.ListenBuffer(4))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := n.Notify(ctx, "tick", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	// 0..5 were dropped (6 of them); 6 says so.
	if got, want := payloads(receive(t, slow, 4, time.Second)), []string{"6+6", "7", "8", "9"}; !slices.Equal(got, want) {
		t.Fatalf("slow listener got %q, want %q", got, want)
	}
	nothingPending(t, slow)
	if err := n.Notify(ctx, "tick", "10"); err != nil {
		t.Fatal(err)
	}
	if got := payloads(receive(t, slow, 1, time.Second)); !slices.Equal(got, []string{"10"}) {
		t.Fatalf("after catching up: %q", got)
	}
}

// Notifications from every node, by Notify and by SQL, reach every node
// in the same order; trigger notifications only when their write commits.
func TestClusterNotify(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	ctx := context.Background()
	var all, orders []*hiqlite.Listener
	for _, m := range c.Members {
		l, err := m.Node.Listen(ctx, "all", hiqlite.ListenBuffer(1000))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, l)
		o, err := m.Node.Listen(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	fol := c.Members[c.Follower()].DB
	mustExec(t, fol, notifySchema)
	mustExec(t, fol, `CREATE TRIGGER all_notify AFTER INSERT ON orders BEGIN SELECT hiqlite_notify('all', 'row ' || NEW.item); END`)
	checkTriggerNotify(t, fol, orders...)

	// Concurrent Notify and SQL writes from every node.
	const perNode = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(c.Members))
	for i, m := range c.Members {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range perNode {
				if err := m.Node.Notify(ctx, "all", fmt.Sprintf("n%d-%d", i, j)); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for j := range perNode / 4 {
				if _, err := m.DB.Exec(`INSERT INTO orders(item) VALUES (?)`, fmt.Sprintf("o%d-%d", i, j)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := len("abde") + len(c.Members)*(perNode+perNode/4) // rows a, b, d, e, then the concurrent ones
	ref := receive(t, all[0], want, 30*time.Second)
	for i := 1; i < len(all); i++ {
		got := receive(t, all[i], want, 30*time.Second)
		if !slices.Equal(got, ref) {
			t.Fatalf("%s got\n%v\n%s got\n%v", c.Members[0].ID, ref, c.Members[i].ID, got)
		}
	}
	if !slices.IsSortedFunc(ref, func(a, b hiqlite.Notification) int { return int(a.Index) - int(b.Index) }) {
		t.Fatalf("not in log order: %v", ref)
	}
	// Each sender's notifications arrive in the order it sent them.
	last := map[int]int{}
	for _, n := range ref {
		var node, seq int
		if _, err := fmt.Sscanf(n.Payload, "n%d-%d", &node, &seq); err != nil {
			continue // a row's notification
		}
		if p, ok := last[node]; ok && seq != p+1 {
			t.Fatalf("node %d: notification %d after %d", node, seq, p)
		}
		last[node] = seq
	}
	for _, l := range orders {
		receive(t, l, len(c.Members)*perNode/4, 30*time.Second)
	}
}
