package hiqlite_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestRemovedDataDir removes the DATA_DIR of a running follower of three
// in-process nodes, then kills the leader, so that an election runs, and
// writes more than a log segment. The follower fails to save its new term
// (the cache group's cache/raft-stable) or to create its next log segment,
// whichever comes first: hashicorp/raft panicked on the first and took the
// whole test process with it. The follower now stops with a fault that
// Node.Fault and its writes return, the test process goes on, the others
// keep taking writes once the leader is back, and closing the follower's
// *sql.DB returns.
func TestRemovedDataDir(t *testing.T) {
	c := clustertest.New(t, 3, "_log_segment=1MiB")
	leader := c.Leader()
	db := c.Members[leader].DB
	if _, err := db.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)`); err != nil {
		t.Fatal(err)
	}
	victim := (leader + 1) % 3
	other := (leader + 2) % 3
	v := c.Members[victim]
	// A connection opened before: a new one needs the removed directory.
	vc, err := v.DB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if err := os.RemoveAll(v.Dir); err != nil {
		t.Fatal(err)
	}
	c.Kill(leader)
	c.Start(leader) // the survivors elected a leader meanwhile, or elect one now
	db = c.Members[other].DB
	blob := make([]byte, 64<<10)
	for i := 0; i < 48 && v.Node.Fault() == nil; i++ { // 3 MiB of entries at most
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := db.ExecContext(ctx, `INSERT INTO t(b) VALUES (?)`, blob)
		cancel()
		if err != nil {
			t.Fatalf("write %d through %s: %v", i, c.Members[other].ID, err)
		}
	}
	c.WaitFor(v.ID+"'s fault", 30*time.Second, func() bool { return v.Node.Fault() != nil })
	fault := v.Node.Fault()
	t.Logf("%s: %v", v.ID, fault)
	if !errors.Is(fault, hiqlite.ErrStopped) {
		t.Errorf("fault %v, want ErrStopped", fault)
	}
	if _, err := vc.ExecContext(context.Background(), `INSERT INTO t(b) VALUES (x'00')`); !errors.Is(err, hiqlite.ErrStopped) {
		t.Errorf("a write through %s: %v, want its fault", v.ID, err)
	}
	tx, err := vc.BeginTx(context.Background(), nil)
	if err == nil {
		_, err = tx.Exec(`INSERT INTO t(b) VALUES (x'00')`)
		tx.Rollback()
	}
	if !errors.Is(err, hiqlite.ErrStopped) {
		t.Errorf("a transaction's write through %s: %v, want its fault", v.ID, err)
	}
	// The other two go on; closing the stopped node returns.
	vc.Close()
	c.Kill(victim)
	if _, err := db.Exec(`INSERT INTO t(b) VALUES (x'01')`); err != nil {
		t.Fatal(err)
	}
	c.EnsureSame()
}
