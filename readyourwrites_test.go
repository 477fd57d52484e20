package hiqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// A write through a follower returns once the leader committed and applied
// it; the follower applies it when it learns the commit, a moment later.
// Every read on that follower after the write returns sees it, on any of
// its connections: plain reads, prepared statements, read-only
// transactions, and reads of a table the write created (which the read
// connection cannot even prepare before the follower applies it).
func TestReadYourWritesOnFollower(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	fol := c.Members[c.Follower()].DB
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := fol.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := fol.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	if _, err := w.ExecContext(ctx, `CREATE TABLE ryw(k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	sel, err := r.PrepareContext(ctx, `SELECT count(*) FROM ryw`)
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	const rows = 150
	for i := 1; i <= rows; i++ {
		if _, err := w.ExecContext(ctx, `INSERT INTO ryw(k) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		var n int
		switch i % 3 {
		case 0:
			err = r.QueryRowContext(ctx, `SELECT count(*) FROM ryw`).Scan(&n)
		case 1:
			err = sel.QueryRowContext(ctx).Scan(&n)
		case 2:
			n, err = readOnlyCount(ctx, r)
		}
		if err != nil {
			t.Fatalf("read after write %d: %v", i, err)
		}
		if n != i {
			t.Fatalf("read after write %d on another connection of the follower sees %d rows", i, n)
		}
	}
	for i := range 20 {
		name := fmt.Sprintf("ryw_new%d", i)
		if _, err := w.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s(v); INSERT INTO %[1]s VALUES (%d)`, name, i)); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := r.QueryRowContext(ctx, `SELECT v FROM `+name).Scan(&v); err != nil || v != i {
			t.Fatalf("read of table %s right after the write that created it: %d, %v", name, v, err)
		}
	}

	// The writes did not wait for the follower: some reads had to.
	node, err := hiqlite.NodeOf(ctx, fol)
	if err != nil {
		t.Fatal(err)
	}
	if waits, _ := metricValue(scrape(t, node.MetricsHandler()), "hiqlite_read_own_write_waits_total"); waits == 0 {
		t.Errorf("no read waited for the follower's own writes: the writes were acknowledged only once applied here")
	}
	c.EnsureSame()
}

// readOnlyCount counts the rows in a read-only transaction.
func readOnlyCount(ctx context.Context, c *sql.Conn) (int, error) {
	tx, err := c.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM ryw`).Scan(&n)
	return n, err
}
