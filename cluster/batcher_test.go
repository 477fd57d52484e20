package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// Concurrent autocommit writes through the leader and the followers, which
// the leader carries in batches: every acknowledged write is in every
// node's database exactly once, with the id it returned; a write that fails
// (one rolls back the whole SQLite transaction it shares with its batch)
// leaves nothing and takes none of its neighbours with it; a retry of a
// write gets its recorded result; interactive transactions committed
// meanwhile keep their rows; and the nodes hold the same rows.
func TestBatchedWritesAppliedOnce(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	var leader *Node
	for _, nd := range nodes {
		if nd.IsLeader() {
			leader = nd
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	mustNodeExec(t, leader, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE ON CONFLICT ROLLBACK, w)`)
	mustNodeExec(t, leader, replication.Origin{}, `INSERT INTO t(v) VALUES ('taken')`)
	const writers, writes = 8, 30
	var mu sync.Mutex
	acked := map[string]int64{} // value -> id
	var wg sync.WaitGroup
	for i, nd := range nodes {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				session := uint64(i*100 + w + 1)
				for seq := uint64(1); seq <= writes; seq++ {
					v := fmt.Sprintf("%s-w%d-%d", nd.ID(), w, seq)
					if seq%7 == 0 {
						v = "taken" // ON CONFLICT ROLLBACK: the whole SQLite transaction
					}
					o := replication.Origin{Node: nd.ID(), Session: session, Seq: seq}
					st := stmt(`INSERT INTO t(v, w) VALUES (?, random()) RETURNING id`, v)
					resp, err := nd.Exec(context.Background(), 10*time.Second, o, 0, st)
					if err != nil {
						t.Errorf("%s: %v", v, err)
						return
					}
					res := resp.Results[0]
					if v == "taken" {
						if !errors.Is(res.Err, sqlite3.CONSTRAINT_UNIQUE) {
							t.Errorf("%s seq %d: %v, want a UNIQUE constraint error", nd.ID(), seq, res.Err)
						}
						continue
					}
					if res.Err != nil || len(res.Rows) != 1 || res.Rows[0][0] != res.LastInsertID {
						t.Errorf("%s: %+v", v, res)
						continue
					}
					if seq%10 == 3 {
						// The reply was lost: the same write again.
						again, err := nd.Exec(context.Background(), 10*time.Second, o, 0, st)
						if err != nil || again.Results[0].LastInsertID != res.LastInsertID || again.Index != resp.Index {
							t.Errorf("%s retried: %+v, %v; want id %d at index %d", v, again, err, res.LastInsertID, resp.Index)
						}
					}
					mu.Lock()
					acked[v] = res.LastInsertID
					mu.Unlock()
				}
			}()
		}
	}
	// Interactive transactions meanwhile, on the leader and through a
	// follower: the gate holds the batched writes off while each runs.
	for i, nd := range []*Node{leader, follower(t, nodes)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 5 {
				o := replication.Origin{Node: nd.ID(), Session: uint64(1000 + i), Seq: uint64(k + 1)}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				tx, err := nd.BeginTx(ctx, 10*time.Second, 10*time.Second, o, 0, SnapshotCheck{})
				if err != nil {
					cancel()
					t.Errorf("tx on %s: %v", nd.ID(), err)
					return
				}
				var ids []int64
				for j := range 2 {
					v := fmt.Sprintf("%s-tx%d-%d", nd.ID(), k, j)
					res, err := tx.Exec(ctx, stmt(`INSERT INTO t(v) VALUES (?)`, v)[0], false)
					if err != nil || res.Err != nil {
						t.Errorf("tx insert %s: %v %v", v, err, res.Err)
					}
					ids = append(ids, res.LastInsertID)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Errorf("tx commit on %s: %v", nd.ID(), err)
				} else {
					mu.Lock()
					for j, id := range ids {
						acked[fmt.Sprintf("%s-tx%d-%d", nd.ID(), k, j)] = id
					}
					mu.Unlock()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if leader.batch.batches.Load() == 0 {
		t.Log("the leader batched no writes") // timing: still a valid run
	}
	t.Logf("%d writes acknowledged; %d batches carried %d writes", len(acked), leader.batch.batches.Load(), leader.batch.batched.Load())
	for _, nd := range nodes {
		if nd != leader {
			t.Logf("%s forwarded %d writes in %d batch requests", nd.ID(), nd.fwd.batched.Load(), nd.fwd.batches.Load())
		}
	}
	want := leader.AppliedIndex()
	var first string
	for _, nd := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := nd.sm.WaitApplied(want, ctx.Done())
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", nd.ID(), err)
		}
		rows := readRows(t, nd)
		if len(rows) != len(acked)+1 {
			t.Errorf("%s: %d rows, want %d", nd.ID(), len(rows), len(acked)+1)
		}
		byV := map[string]int64{}
		for _, r := range rows {
			byV[r.v] = r.id
		}
		for v, id := range acked {
			if byV[v] != id {
				t.Errorf("%s: %q has id %d, acknowledged with %d", nd.ID(), v, byV[v], id)
			}
		}
		if dump := fmt.Sprint(rows); first == "" {
			first = dump
		} else if dump != first {
			t.Errorf("%s holds other rows than %s", nd.ID(), nodes[0].ID())
		}
	}
}

type row struct {
	id int64
	v  string
	w  int64
}

// readRows reads table t from nd's database file, in id order.
func readRows(t *testing.T, nd *Node) []row {
	t.Helper()
	c, err := sqlite3.OpenFlags(nd.DBPath(), sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, _, err := c.Prepare(`SELECT id, v, w FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var rows []row
	for st.Step() {
		rows = append(rows, row{st.ColumnInt64(0), st.ColumnText(1), st.ColumnInt64(2)})
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
