package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

// holdForwarding fills f's forwarding requests in flight, so that the
// writes forwarded meanwhile queue; the returned func lets them go, as the
// end of a request does.
func holdForwarding(f *Node) (release func()) {
	b := &f.fwd
	b.mu.Lock()
	b.inFlight += maxFwdInFlight
	b.mu.Unlock()
	return func() {
		for range maxFwdInFlight {
			b.done()
		}
	}
}

// waitGateWaiters waits until n writes wait for the write slot on leader.
func waitGateWaiters(t *testing.T, leader *Node, n int) {
	t.Helper()
	waitfor.Cond(t, fmt.Sprintf("%d writes waiting for the slot on the leader", n), 10*time.Second, func() bool {
		leader.gate.mu.Lock()
		defer leader.gate.mu.Unlock()
		return leader.gate.waiters == n
	})
}

func queued(f *Node) int {
	f.fwd.mu.Lock()
	defer f.fwd.mu.Unlock()
	return len(f.fwd.queue)
}

// Writes a follower forwards together travel in one request, and each gets
// the answer it would have got alone: its own id, its own statement error
// (which fails none of its neighbours), the recorded result of a write
// already applied (the retry of a lost reply), ErrNotApplied for a stale
// copy of a write its session has gone past; and each is applied on every
// node exactly once.
func TestForwardedWritesBatched(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE, w)`)
	mustNodeExec(t, f, replication.Origin{}, `INSERT INTO t(v) VALUES ('taken')`)
	// The retry's first copy, applied before the batch.
	first := mustNodeExec(t, f, replication.Origin{Node: f.ID(), Session: 99, Seq: 1}, `INSERT INTO t(v) VALUES ('retried')`)
	// The session the stale copy's is past.
	mustNodeExec(t, f, replication.Origin{Node: f.ID(), Session: 98, Seq: 2}, `INSERT INTO t(v) VALUES ('newer')`)

	const writes = 40
	type answer struct {
		resp *replication.Response
		err  error
	}
	answers := make([]answer, writes)
	release := holdForwarding(f)
	var wg sync.WaitGroup
	for i := range writes {
		o := replication.Origin{Node: f.ID(), Session: uint64(i + 1), Seq: 1}
		v := fmt.Sprintf("v%d", i)
		switch {
		case i == 7:
			o = replication.Origin{Node: f.ID(), Session: 99, Seq: 1}
			v = "retried"
		case i == 11:
			o = replication.Origin{Node: f.ID(), Session: 98, Seq: 1}
			v = "stale"
		case i%10 == 3:
			v = "taken"
		}
		wg.Go(func() {
			resp, err := f.Exec(context.Background(), 10*time.Second, o, 0, stmt(`INSERT INTO t(v) VALUES (?) RETURNING id`, v))
			answers[i] = answer{resp, err}
		})
	}
	waitfor.Cond(t, "every write queued", 10*time.Second, func() bool { return queued(f) == writes })
	leader := leaderOf(t, nodes)
	entries, carried := leader.batch.batches.Load(), leader.batch.batched.Load()
	release()
	wg.Wait()
	if got := f.fwd.batched.Load(); f.fwd.batches.Load() != 1 || got != writes {
		t.Fatalf("%d batch requests carried %d writes, want 1 with %d", f.fwd.batches.Load(), got, writes)
	}
	// Nothing else writes: the request's writes share one log entry.
	if e, c := leader.batch.batches.Load()-entries, leader.batch.batched.Load()-carried; e != 1 || c != writes {
		t.Errorf("the leader carried the request in %d batch entries of %d writes, want 1 of %d", e, c, writes)
	}
	want := map[int64]bool{}
	for i, a := range answers {
		if i == 11 {
			if !errors.Is(a.err, nodeerr.ErrNotApplied) {
				t.Errorf("stale write: %v, want ErrNotApplied", a.err)
			}
			continue
		}
		if a.err != nil {
			t.Fatalf("write %d: %v", i, a.err)
		}
		res := a.resp.Results[0]
		switch {
		case i == 7:
			if a.resp.Index != first.Index || res.LastInsertID != first.Results[0].LastInsertID {
				t.Errorf("retried write: index %d id %d, want the first copy's %d and %d", a.resp.Index, res.LastInsertID, first.Index, first.Results[0].LastInsertID)
			}
		case i%10 == 3:
			if !errors.Is(res.Err, sqlite3.CONSTRAINT_UNIQUE) {
				t.Errorf("write %d: %v, want a UNIQUE constraint error", i, res.Err)
			}
		default:
			if res.Err != nil || len(res.Rows) != 1 || res.Rows[0][0] != res.LastInsertID || want[res.LastInsertID] {
				t.Errorf("write %d: %+v", i, res)
			}
			want[res.LastInsertID] = true
		}
	}
	// 'taken', 'retried', 'newer', and the writes that succeeded, once each.
	for _, nd := range nodes {
		rows := readRowsAfter(t, nd, leader)
		if len(rows) != len(want)+3 {
			t.Errorf("%s: %d rows, want %d", nd.ID(), len(rows), len(want)+3)
		}
		for _, r := range rows {
			if r.v != "taken" && r.v != "retried" && r.v != "newer" && !want[r.id] {
				t.Errorf("%s: row %d %q was not acknowledged", nd.ID(), r.id, r.v)
			}
		}
	}
}

func leaderOf(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	for _, nd := range nodes {
		if nd.IsLeader() {
			return nd
		}
	}
	t.Fatal("no leader")
	return nil
}

// readRowsAfter reads nd's rows once it applied what leader has.
func readRowsAfter(t *testing.T, nd, leader *Node) []row {
	t.Helper()
	if err := nd.sm.WaitApplied(leader.AppliedIndex(), nil); err != nil {
		t.Fatal(err)
	}
	return readRows(t, nd)
}

// A queued write whose caller gives up before it is sent leaves the queue
// and is never applied; the writes behind it are sent.
func TestForwardedWriteGivenUpInQueue(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE, w)`)
	release := holdForwarding(f)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := f.Exec(ctx, time.Second, replication.Origin{Node: f.ID(), Session: 1, Seq: 1}, 0, stmt(`INSERT INTO t(v) VALUES ('gave up')`))
		gaveUp <- err
	}()
	waitfor.Cond(t, "the write queued", 10*time.Second, func() bool { return queued(f) == 1 })
	kept := make(chan error, 1)
	go func() {
		_, err := f.Exec(context.Background(), time.Second, replication.Origin{Node: f.ID(), Session: 2, Seq: 1}, 0, stmt(`INSERT INTO t(v) VALUES ('kept')`))
		kept <- err
	}()
	waitfor.Cond(t, "the second write queued", 10*time.Second, func() bool { return queued(f) == 2 })
	cancel()
	err := <-gaveUp
	if !errors.Is(err, context.Canceled) || errors.Is(err, nodeerr.ErrOutcomeUnknown) {
		t.Fatalf("the write given up in the queue: %v, want context.Canceled and a known outcome", err)
	}
	if n := queued(f); n != 1 {
		t.Fatalf("%d writes queued after one gave up, want 1", n)
	}
	release()
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	rows := readRowsAfter(t, f, leaderOf(t, nodes))
	if len(rows) != 1 || rows[0].v != "kept" {
		t.Errorf("rows %v, want only 'kept'", rows)
	}
	f.fwd.mu.Lock()
	defer f.fwd.mu.Unlock()
	if f.fwd.inFlight != 0 || len(f.fwd.queue) != 0 {
		t.Errorf("%d requests in flight and %d queued after all answered", f.fwd.inFlight, len(f.fwd.queue))
	}
}

// A batch that finds a transaction holding the leader's write slot waits
// for it write by write, each up to its own _busy, and is applied once the
// transaction commits, after the transaction's rows.
func TestForwardedBatchWaitsForTransaction(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	leader := leaderOf(t, nodes)
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE, w)`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := leader.BeginTx(ctx, time.Second, 20*time.Second, replication.Origin{}, 0, SnapshotCheck{})
	if err != nil {
		t.Fatal(err)
	}
	const writes = 10
	release := holdForwarding(f)
	errs := make([]error, writes)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			_, errs[i] = f.Exec(ctx, 20*time.Second, replication.Origin{Node: f.ID(), Session: uint64(i + 1), Seq: 1}, 0, stmt(`INSERT INTO t(v) VALUES (?)`, fmt.Sprint(i)))
		})
	}
	waitfor.Cond(t, "every write queued", 10*time.Second, func() bool { return queued(f) == writes })
	release()
	waitGateWaiters(t, leader, writes)
	if _, err := tx.Exec(ctx, stmt(`INSERT INTO t(v) VALUES ('tx')`)[0], false); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	rows := readRowsAfter(t, f, leader)
	if len(rows) != writes+1 || rows[0].v != "tx" {
		t.Errorf("rows %v, want the transaction's first and the %d writes", rows, writes)
	}
	if f.fwd.batches.Load() != 1 {
		t.Errorf("%d batch requests, want 1", f.fwd.batches.Load())
	}
}

// The caller of a write that sent its batch (the first queued, whose turn
// it was) may give up while the request is in flight: it learns at once
// that the outcome is unknown, and its neighbours still get their answers.
func TestForwardedBatchSenderGivesUp(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	leader := leaderOf(t, nodes)
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE, w)`)
	bg, cancelAll := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelAll()
	// The transaction holds the batch on the leader until it commits.
	tx, err := leader.BeginTx(bg, time.Second, 20*time.Second, replication.Origin{}, 0, SnapshotCheck{})
	if err != nil {
		t.Fatal(err)
	}
	release := holdForwarding(f)
	ctx, cancel := context.WithCancel(bg)
	first := make(chan error, 1)
	go func() {
		_, err := f.Exec(ctx, 20*time.Second, replication.Origin{Node: f.ID(), Session: 1, Seq: 1}, 0, stmt(`INSERT INTO t(v) VALUES ('first')`))
		first <- err
	}()
	waitfor.Cond(t, "the first write queued", 10*time.Second, func() bool { return queued(f) == 1 })
	second := make(chan error, 1)
	go func() {
		_, err := f.Exec(bg, 20*time.Second, replication.Origin{Node: f.ID(), Session: 2, Seq: 1}, 0, stmt(`INSERT INTO t(v) VALUES ('second')`))
		second <- err
	}()
	waitfor.Cond(t, "the second write queued", 10*time.Second, func() bool { return queued(f) == 2 })
	release()
	waitGateWaiters(t, leader, 2)
	cancel()
	if err := <-first; !errors.Is(err, nodeerr.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("the sender gave up: %v, want ErrOutcomeUnknown and context.Canceled", err)
	}
	if err := tx.Commit(bg); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("its neighbour: %v", err)
	}
	// It was sent: the leader applied it.
	if rows := readRowsAfter(t, f, leader); len(rows) != 2 {
		t.Errorf("rows %v, want 'first' and 'second'", rows)
	}
}
