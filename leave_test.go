package hiqlite_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestLeaveDecommissions takes the leader of a three-node cluster out with
// Leave: it hands leadership over, the new leader removes it (well before
// the five minutes after which a dead node is reaped), and the two left
// keep taking writes, SQL and cache alike.
func TestLeaveDecommissions(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE lv(k INTEGER PRIMARY KEY)`)
	gone := c.Members[l]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gone.Node.Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if gone.Node.IsLeader() {
		t.Fatal("the node that left still leads")
	}
	c.Kill(l)

	var rest []*clustertest.Member
	for i, m := range c.Members {
		if i != l {
			rest = append(rest, m)
		}
	}
	c.WaitFor("every remaining node's configuration without the node that left", 30*time.Second, func() bool {
		for _, m := range rest {
			ms, err := m.Node.Members()
			if err != nil || len(ms) != 2 {
				return false
			}
			for _, s := range ms {
				if s.ID == gone.ID {
					return false
				}
			}
		}
		return true
	})
	for i, m := range rest {
		if _, err := m.DB.Exec(`INSERT INTO lv VALUES (?)`, i); err != nil {
			t.Fatalf("write through %s after the leave: %v", m.ID, err)
		}
		if err := m.Node.Cache("c").Set(ctx, "k", []byte{byte(i)}, 0); err != nil {
			t.Fatalf("cache set through %s after the leave: %v", m.ID, err)
		}
	}
	var n int
	if err := rest[0].DB.QueryRowContext(hiqlite.WithConsistency(ctx, hiqlite.Linearizable), `SELECT count(*) FROM lv`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows after the leave: %d, %v; want 2", n, err)
	}
}

// TestLeaveRefusesLastVoter: a node alone, without gossip, has nobody to
// leave to; Leave says so and the node keeps working.
func TestLeaveRefusesLastVoter(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("hiqlite", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	node, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = node.Leave(ctx)
	if err == nil || !strings.Contains(err.Error(), "gossip") {
		t.Fatalf("leave of a lone node: %v, want an error about gossip", err)
	}
	mustExec(t, db, `CREATE TABLE still(x)`)
}
