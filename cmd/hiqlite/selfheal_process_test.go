package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/damage"
)

// TestSelfHealing runs a cluster of three "hiqlite serve" processes under
// write load, kills one with SIGKILL, destroys part of its DATA_DIR, and
// starts it again with the same DSN, as an orchestrator restarts a crashed
// container on a damaged or fresh volume. The node must come back by
// itself, catch up, end identical to the others, and no acknowledged write
// may be lost anywhere. The survivors take snapshots under load while it is
// down.
func TestSelfHealing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs clusters of processes")
	}
	bin := buildBinary(t)
	removeAll := func(paths ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			for _, p := range paths {
				if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, sc := range []struct {
		name   string
		leader bool // damage the leader, else a follower
		damage func(t *testing.T, dir string)
	}{
		{"follower database deleted", false, removeAll("hiqlite.db", "hiqlite.db-wal", "hiqlite.db-shm")},
		{"follower raft dir deleted", false, removeAll("raft")},
		{"follower DATA_DIR deleted", false, removeAll("")},
		// Bytes flipped in a page of the table the writers fill, and in
		// the file's header: found at open, moved aside, rebuilt. The
		// WAL the kill left is checkpointed first, or its replay would
		// overwrite the flipped page.
		{"follower database page corrupted", false, corrupt(func(t testing.TB, path string) { damage.TableData(t, path, "acked") })},
		{"follower database header corrupted", false, corrupt(damage.Header)},
		{"leader DATA_DIR deleted", true, removeAll("")},
	} {
		t.Run(sc.name, func(t *testing.T) {
			pc := startProcCluster(t, bin, "")
			pc.waitAcks(t, 100)
			victim := pc.leader(t)
			if !sc.leader {
				victim = (victim + 1) % len(pc.procs)
			}
			p := pc.procs[victim]
			p.kill(t)
			sc.damage(t, p.dir)
			pc.logf(t, "killed %s (leader=%v) and damaged its DATA_DIR", p.name, sc.leader)
			pc.waitAcks(t, pc.acked()+100)
			// Snapshots on the survivors while they take writes. (raft-wal
			// drops only whole 64 MiB segments when raft compacts, so
			// the victim still catches up from the log here.)
			for _, q := range pc.procs {
				if q != p {
					pc.snapshot(t, q)
				}
			}
			pc.waitAcks(t, pc.acked()+100)
			p.start(t, bin)
			clustertest.WaitFor(t, p.name+" to be ready again", procWait, func() bool {
				code, _, _ := httpGet(t, "http://"+p.http+"/readyz?timeout=1s")
				return code == http.StatusOK
			})
			pc.logf(t, "%s is back and ready", p.name)
			pc.waitAcks(t, pc.acked()+50)
			pc.finish(t)
		})
	}
}

// corrupt checkpoints the database of a killed node and damages it.
func corrupt(damageDB func(t testing.TB, path string)) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		path := filepath.Join(dir, "hiqlite.db")
		damage.Checkpoint(t, path)
		damageDB(t, path)
	}
}

// procCluster is three "hiqlite serve" processes, a non-voting client
// node in the test process and its writers.
type procCluster struct {
	procs  []*serveProc
	db     *sql.DB
	began  time.Time
	mu     sync.Mutex
	ids    []int64 // acknowledged
	failed atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (pc *procCluster) logf(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("%5.1fs: "+format, append([]any{time.Since(pc.began).Seconds()}, args...)...)
}

// startProcCluster starts the processes, waits until they are ready and
// starts four writers through a non-voting client node. extra holds more
// DSN parameters for every node ("" or "&name=value...").
func startProcCluster(t *testing.T, bin, extra string) *procCluster {
	t.Helper()
	pc := &procCluster{began: time.Now(), stop: make(chan struct{})}
	tmp := t.TempDir()
	var seeds []string
	for i := range 3 {
		p := &serveProc{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(tmp, fmt.Sprintf("n%d", i+1)), listen: freeAddr(t), gossip: freeAddr(t)}
		pc.procs = append(pc.procs, p)
		seeds = append(seeds, p.gossip)
	}
	params := func(listen, gossip string) string {
		return fmt.Sprintf("_listen=%s&_gossip=%s&_join=%s&_expect=3&_secret=%s&_snapshot_entries=%d", listen, gossip, strings.Join(seeds, ","), procSecret, 16) + extra
	}
	for _, p := range pc.procs {
		p.args = []string{"serve", "--dsn", p.dir + "?_node=" + p.name + "&" + params(p.listen, p.gossip), "--http", "127.0.0.1:0"}
		p.start(t, bin)
	}
	t.Cleanup(func() {
		pc.stopWriters()
		if pc.db != nil {
			pc.db.Close()
		}
		for _, p := range pc.procs {
			p.kill(t)
		}
		if t.Failed() {
			for _, p := range pc.procs {
				t.Logf("output of %s:\n%s", p.name, p.output())
			}
		}
	})
	for _, p := range pc.procs {
		clustertest.WaitFor(t, p.name+" to answer /readyz with 200", procWait, func() bool {
			code, _, _ := httpGet(t, "http://"+p.http+"/readyz?timeout=1s")
			return code == http.StatusOK
		})
	}
	pc.db = openClient(t, filepath.Join(tmp, "client")+"?_node=client&_voter=false&"+params(freeAddr(t), freeAddr(t)))
	pc.startWriters(4)
	pc.logf(t, "cluster ready, writers running")
	return pc
}

// startWriters starts n writers that insert rows into table acked through
// pc.db until stopWriters, recording the acknowledged ones.
func (pc *procCluster) startWriters(n int) {
	db := pc.db
	var nextID atomic.Int64
	for w := range n {
		pc.wg.Go(func() {
			for i := 0; i < 100_000; i++ {
				select {
				case <-pc.stop:
					return
				default:
				}
				id := nextID.Add(1)
				wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := db.ExecContext(wctx, `INSERT INTO acked(id, writer) VALUES (?, ?)`, id, w)
				cancel()
				if err == nil {
					pc.mu.Lock()
					pc.ids = append(pc.ids, id)
					pc.mu.Unlock()
					continue
				}
				pc.failed.Add(1)
				select { // back off while the cluster elects a leader
				case <-pc.stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	}
}

// snapshot asks p for a snapshot over HTTP.
func (pc *procCluster) snapshot(t *testing.T, p *serveProc) {
	t.Helper()
	resp, err := http.Post("http://"+p.http+"/snapshot", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /snapshot on %s: %s: %s", p.name, resp.Status, body)
	}
	pc.logf(t, "%s: %s", p.name, strings.TrimSpace(string(body)))
}

func (pc *procCluster) acked() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return len(pc.ids)
}

func (pc *procCluster) waitAcks(t *testing.T, n int) {
	t.Helper()
	clustertest.WaitFor(t, fmt.Sprintf("%d acknowledged writes", n), procWait, func() bool { return pc.acked() >= n })
}

func (pc *procCluster) leader(t *testing.T) int { return procLeader(t, pc.procs) }

func (pc *procCluster) stopWriters() {
	select {
	case <-pc.stop:
	default:
		close(pc.stop)
	}
	pc.wg.Wait()
}

// finish stops the writers, waits until every node has applied the same
// index, stops the processes with SIGTERM and checks their database files:
// every acknowledged row on every node, and the same rows everywhere.
func (pc *procCluster) finish(t *testing.T) {
	t.Helper()
	pc.stopWriters()
	applied := sameAppliedIndex(t, pc.procs)
	for _, p := range pc.procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %s: %v", p.name, err)
		}
	}
	for _, p := range pc.procs {
		if err := p.wait(procWait); err != nil {
			t.Errorf("%s after SIGTERM: %v", p.name, err)
		}
	}
	ref := checkAcked(t, pc.procs, pc.ids)
	pc.logf(t, "applied index %d everywhere; %d rows on every node, %d acknowledged, %d failed writes", applied, len(ref), len(pc.ids), pc.failed.Load())
}
