package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

// A Raft log the node cannot read stops its start with ErrUnreadableLog,
// naming the directory and what to do, and never panics: raft's NewRaft
// panics on an entry it cannot read, as it did on the segment raft-wal
// v0.4.0 sealed without its index block, which the first case rebuilds.
func TestUnreadableLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, raftDir string)
	}{
		{"sealed segment without its index block", func(t *testing.T, dir string) {
			var db metadb.BoltMetaDB
			state, err := db.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if len(state.Segments) < 2 || state.Segments[0].SealTime.IsZero() {
				t.Fatalf("want a sealed segment first, have %+v", state.Segments)
			}
			state.Segments[0].IndexStart = 0
			if err := db.CommitState(state); err != nil {
				t.Fatal(err)
			}
		}},
		{"sealed segment cut short", func(t *testing.T, dir string) {
			segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
			if err != nil || len(segs) < 2 {
				t.Fatalf("want two segments, have %v (%v)", segs, err)
			}
			if err := os.Truncate(segs[0], 4096); err != nil {
				t.Fatal(err)
			}
		}},
		{"sealed segment overwritten", func(t *testing.T, dir string) {
			segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
			if err != nil || len(segs) < 2 {
				t.Fatalf("want two segments, have %v (%v)", segs, err)
			}
			if err := os.WriteFile(segs[0], []byte(strings.Repeat("not a segment ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta database overwritten", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "wal-meta.db"), []byte(strings.Repeat("not a bolt database ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, SegmentSize: 64 << 10}
			nd := openSingle(t, cfg)
			mustNodeExec(t, nd, replication.Origin{}, `CREATE TABLE t(b BLOB)`)
			blob := make([]byte, 4096)
			for range 40 { // 160 KiB of entries: sealed segments, then the tail
				mustNodeExec(t, nd, replication.Origin{}, `INSERT INTO t VALUES (?)`, blob)
			}
			if err := nd.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(dir, raftDir))

			cfg.logger = hclog.NewNullLogger()
			again, err := Open(cfg)
			if err == nil {
				again.Close()
				t.Fatal("a node with a broken raft log started")
			}
			if !errors.Is(err, nodeerr.ErrUnreadableLog) || !strings.Contains(err.Error(), filepath.Join(dir, raftDir)) || !strings.Contains(err.Error(), "move that directory aside") {
				t.Fatalf("Open: %v, want ErrUnreadableLog naming %s and the way out", err, filepath.Join(dir, raftDir))
			}
			t.Logf("Open: %v", err)
			// The way out works: with the log moved aside, the single node
			// continues from its database.
			if err := os.Rename(filepath.Join(dir, raftDir), filepath.Join(dir, "raft.broken")); err != nil {
				t.Fatal(err)
			}
			healed := openSingle(t, cfg)
			resp := mustNodeExec(t, healed, replication.Origin{}, `SELECT count(*) FROM t`)
			if n := resp.Results[0].Rows[0][0].(int64); n != 40 {
				t.Fatalf("%d rows after moving the log aside, want 40", n)
			}
		})
	}
}

// brokenStable is raft's in-memory stable store whose saves fail once
// broken is set, as on a removed or full disk; saves counts the attempts
// after that.
type brokenStable struct {
	*raft.InmemStore
	broken atomic.Bool
	saves  atomic.Int32
}

func (s *brokenStable) Set(key, val []byte) error {
	if s.broken.Load() {
		s.saves.Add(1)
		return errors.New("no such file or directory")
	}
	return s.InmemStore.Set(key, val)
}

func (s *brokenStable) SetUint64(key []byte, val uint64) error {
	if s.broken.Load() {
		s.saves.Add(1)
		return errors.New("no such file or directory")
	}
	return s.InmemStore.SetUint64(key, val)
}

// A follower whose stable store fails when an election raises the term
// would make hashicorp/raft panic ("failed to save current term") and take
// the process with it. Through faultStable it reports the fault and its
// Raft stops, without a panic, without granting a vote it could not save
// and without trying to save anything more; the other two elect a leader
// and commit, and no goroutine is left once all three are shut down.
func TestStableSaveFailureStopsRaft(t *testing.T) {
	before := runtime.NumGoroutine()
	const n = 3
	var (
		rafts   [n]*raft.Raft
		stables [n]*brokenStable
		trans   [n]*raft.InmemTransport
		addrs   [n]raft.ServerAddress
		faults  [n]atomic.Pointer[error]
		stopped sync.WaitGroup // the shutdowns a fault started
		conf    raft.Configuration
	)
	for i := range n {
		addrs[i], trans[i] = raft.NewInmemTransport("")
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprint(i)), Address: addrs[i]})
	}
	for i := range n {
		for j := range n {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	failer := func(i int) func(error) {
		return func(err error) {
			stopped.Add(1) // before the fault shows: the test waits for it, then for stopped
			faults[i].CompareAndSwap(nil, &err)
			go func() { // as stopOnFault does for a node
				defer stopped.Done()
				rafts[i].Shutdown().Error()
			}()
		}
	}
	for i := range n {
		rc := raft.DefaultConfig()
		rc.LocalID = conf.Servers[i].ID
		rc.Logger = hclog.NewNullLogger()
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
		logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
		stables[i] = &brokenStable{InmemStore: raft.NewInmemStore()}
		if err := raft.BootstrapCluster(rc, logs, stables[i], snaps, trans[i], conf); err != nil {
			t.Fatal(err)
		}
		fail := failer(i)
		fs := &faultStable{StableStore: stables[i], where: "test", fail: fail}
		fsm := &raft.MockFSM{}
		r, err := raft.NewRaft(rc, fsm, logs, fs, snaps, trans[i])
		if err != nil {
			t.Fatal(err)
		}
		rafts[i] = r
	}
	leaderOf := func(among ...int) int {
		for _, i := range among {
			if rafts[i].State() == raft.Leader {
				return i
			}
		}
		return -1
	}
	var leader int
	waitfor.Cond(t, "a leader", 10*time.Second, func() bool { leader = leaderOf(0, 1, 2); return leader >= 0 })
	if err := rafts[leader].Apply([]byte("before"), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	victim, other := (leader+1)%n, (leader+2)%n
	stables[victim].broken.Store(true)

	// The leader hands over to the other follower, which asks the victim
	// for its vote in a new term: the victim must save that term first.
	if err := rafts[leader].LeadershipTransferToServer(conf.Servers[other].ID, addrs[other]).Error(); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "the victim to report its fault", 10*time.Second, func() bool { return faults[victim].Load() != nil })
	stopped.Wait()
	if got := rafts[victim].State(); got != raft.Shutdown {
		t.Fatalf("victim in state %v after its fault, want Shutdown", got)
	}
	err := *faults[victim].Load()
	if !strings.Contains(err.Error(), "could not save CurrentTerm") || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("fault %q does not say what could not be saved and why", err)
	}
	if saves := stables[victim].saves.Load(); saves != 1 {
		t.Errorf("%d saves attempted after the store broke, want 1: raft must not go on", saves)
	}
	t.Logf("victim %d: %v", victim, err)

	// The other two go on: a leader among them commits.
	old := leader
	waitfor.Cond(t, "a leader among the other two", 10*time.Second, func() bool { leader = leaderOf(old, other); return leader >= 0 })
	if err := rafts[leader].Apply([]byte("after"), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i != victim && faults[i].Load() != nil {
			t.Errorf("node %d reported a fault: %v", i, *faults[i].Load())
		}
		if err := rafts[i].Shutdown().Error(); err != nil {
			t.Error(err)
		}
		trans[i].Close()
	}
	if !waitfor.Until(5*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines run, %d did before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}

// checkNoLeak fails t if more goroutines run than before once every node
// of the test is closed.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	if !waitfor.Until(10*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines run, %d did before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}

// A single node whose DATA_DIR is removed while it runs: raft-wal goes on
// appending to its open segment, then fails to create the next one. The
// node stops with that fault (writes return it), the process goes on, and
// Close leaves no goroutine behind.
func TestRemovedDataDirStopsSingleNode(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	nd := openSingle(t, Config{Dir: dir, SegmentSize: 64 << 10})
	mustNodeExec(t, nd, replication.Origin{}, `CREATE TABLE t(b BLOB)`)
	// Once the cache group leads, its term stays: the first save to fail
	// is the log's.
	waitfor.Cond(t, "the cache group to lead", 10*time.Second, func() bool {
		r := nd.cache.raft.Load()
		return r != nil && r.State() == raft.Leader
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 4096)
	var werr error
	for i := 0; i < 64 && werr == nil; i++ { // 256 KiB: past the open segment
		_, werr = nd.Exec(context.Background(), time.Second, replication.Origin{}, 0, stmt(`INSERT INTO t VALUES (?)`, blob))
	}
	waitfor.Cond(t, "the node's fault", 10*time.Second, func() bool { return nd.Fault() != nil })
	fault := nd.Fault()
	t.Logf("first failed write: %v\nfault: %v", werr, fault)
	if !errors.Is(fault, nodeerr.ErrStopped) || !strings.Contains(fault.Error(), "could not write its log in "+filepath.Join(dir, raftDir)) {
		t.Errorf("fault %q: want ErrStopped naming the log that could not be written", fault)
	}
	if _, err := nd.Exec(context.Background(), time.Second, replication.Origin{}, 0, stmt(`INSERT INTO t VALUES (1)`)); !errors.Is(err, nodeerr.ErrStopped) {
		t.Errorf("a write after the fault: %v, want the fault", err)
	}
	waitfor.Cond(t, "raft to shut down", 10*time.Second, func() bool { return nd.State() == "shutdown" })
	if err := nd.Close(); err != nil {
		t.Logf("close: %v", err) // its files are gone
	}
	checkNoLeak(t, before)
}

// A cluster member whose DATA_DIR is removed while it runs fails to save
// its term at the next election: the cache group's term and vote are
// rewritten into DATA_DIR/cache/raft-stable, and hashicorp/raft panicked
// with "failed to save current term", ending the process. The member
// stops with a fault instead, its writes return it, the other two go on,
// and nothing leaks once all are closed.
func TestRemovedDataDirStopsClusterMember(t *testing.T) {
	before := runtime.NumGoroutine()
	nodes := startTestCluster(t, 3)
	f := follower(t, nodes)
	mustNodeExec(t, f, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`)
	mustNodeExec(t, f, replication.Origin{}, `INSERT INTO t(v) VALUES ('before')`)
	var victim, other *Node
	for _, nd := range nodes {
		switch {
		case nd.IsLeader():
		case victim == nil:
			victim = nd
		default:
			other = nd
		}
	}
	if err := os.RemoveAll(victim.dataDir()); err != nil {
		t.Fatal(err)
	}
	// An election in the cache group: the victim must save the new term.
	var cacheLeader *raft.Raft
	waitfor.Cond(t, "a cache group leader", 10*time.Second, func() bool {
		for _, nd := range nodes {
			if r := nd.cache.raft.Load(); r != nil && r.State() == raft.Leader {
				cacheLeader = r
				return true
			}
		}
		return false
	})
	if err := cacheLeader.LeadershipTransfer().Error(); err != nil {
		t.Logf("cache group leadership transfer: %v", err) // the victim may have been its target
	}
	waitfor.Cond(t, "the victim's fault", 20*time.Second, func() bool { return victim.Fault() != nil })
	fault := victim.Fault()
	t.Logf("%s: %v", victim.ID(), fault)
	if !errors.Is(fault, nodeerr.ErrStopped) || !strings.Contains(fault.Error(), filepath.Join(victim.dataDir(), cacheDir, cacheStableFile)) {
		t.Errorf("fault %q: want ErrStopped naming the file that could not be saved", fault)
	}
	if _, err := victim.Exec(context.Background(), time.Second, replication.Origin{}, 0, stmt(`INSERT INTO t(v) VALUES ('victim')`)); !errors.Is(err, nodeerr.ErrStopped) {
		t.Errorf("a write through the victim: %v, want its fault", err)
	}
	waitfor.Cond(t, "the victim's raft to shut down", 30*time.Second, func() bool { return victim.State() == "shutdown" })
	// The other two keep working, through either of them.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := other.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	mustNodeExec(t, other, replication.Origin{}, `INSERT INTO t(v) VALUES ('after')`)
	var live []*Node
	for _, nd := range nodes {
		if nd != victim {
			live = append(live, nd)
		}
	}
	countEverywhere(t, live, `v IN ('before', 'after')`, 2)
	for _, nd := range nodes {
		if err := nd.Close(); err != nil && nd != victim {
			t.Errorf("close %s: %v", nd.ID(), err)
		}
	}
	checkNoLeak(t, before)
}
