package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// bigMiB is the size of the database TestSnapshotProcesses builds: the
// issue asks for a snapshot install of at least 200 MB in bounded memory.
const bigMiB = 200

// TestSnapshotProcesses runs three "hiqlite serve" processes under write
// load over a 200 MiB database, with 1 MiB log segments so that compaction
// really drops the log behind a snapshot. It kills a follower with SIGKILL
// in the middle of taking a snapshot, then a wiped follower in the middle
// of installing one from the leader (receiving it, then restoring it),
// then wipes it once more and lets it install the snapshot in full. Every time the node must come back by
// itself; at the end every node holds every acknowledged write and the
// same rows, and the installing process never held as much memory as the
// database's size. It logs the figures BENCHMARKS.md reports.
func TestSnapshotProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs a cluster of processes over a 200 MiB database")
	}
	bin := buildBinary(t)
	pc := startProcCluster(t, bin, "&_log_segment=1MiB")
	pc.waitAcks(t, 50)

	// 200 MiB of incompressible rows, 20 MiB per log entry: the entries
	// are small statements, the rows come from the deterministic
	// randomblob every node computes alike.
	pc.mustExec(t, `CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB NOT NULL)`)
	for range bigMiB / 20 {
		pc.mustExec(t, `WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x+1 FROM c WHERE x < 20)
			INSERT INTO big(b) SELECT randomblob(1048576) FROM c`)
	}
	// Then a few MiB of log entries, so that the entries above fall into
	// segments compaction deletes: a wiped node can only come back from a
	// snapshot.
	pc.mustExec(t, `CREATE TABLE pad(b BLOB)`)
	pad := make([]byte, 256<<10)
	for range 16 {
		pc.mustExec(t, `INSERT INTO pad VALUES(?)`, pad)
	}
	leader := pc.procs[pc.leader(t)]
	if size := fileSize(t, filepath.Join(leader.dir, "hiqlite.db")); size < bigMiB<<20 {
		t.Fatalf("the leader's database has %d bytes, want at least %d MiB", size, bigMiB)
	}
	began := time.Now()
	pc.snapshot(t, leader)
	pc.logf(t, "FIGURE snapshot of the %d MiB database on the leader: %v, leader peak RSS %d MiB",
		fileSize(t, filepath.Join(leader.dir, "hiqlite.db"))>>20, time.Since(began).Round(time.Millisecond), peakRSS(t, leader)>>20)
	for _, q := range pc.procs {
		if q != leader {
			pc.snapshot(t, q)
		}
	}

	victim := pc.procs[(pc.leader(t)+1)%len(pc.procs)]

	// 1. SIGKILL while the victim takes a snapshot of its own.
	pc.waitAcks(t, pc.acked()+20)                            // something new to snapshot
	go http.Post("http://"+victim.http+"/snapshot", "", nil) //nolint:errcheck // the process dies under it
	left := killWhenPresent(t, victim, "snapshot-*.db", "snapshots/snapshots/*.tmp")
	pc.logf(t, "killed %s while it took a snapshot; it left %v", victim.name, left)
	pc.waitAcks(t, pc.acked()+50)
	victim.start(t, bin)
	pc.waitReady(t, victim)
	if rest := globAll(t, victim.dir, "snapshot-*.db*", "snapshots/snapshots/*.tmp"); len(rest) > 0 {
		t.Errorf("%s still holds %v after its restart", victim.name, rest)
	}
	pc.logf(t, "%s is back after the crash during its snapshot", victim.name)

	// 2. Wiped, and SIGKILLed again while it installs the leader's
	// snapshot: once while it receives the stream into its snapshot
	// store, once while it restores the received copy into its database.
	for _, phase := range []struct{ name, pattern string }{
		{"received the snapshot", "snapshots/snapshots/*.tmp"},
		{"restored the snapshot", "restore-*.db"},
	} {
		victim.kill(t)
		wipe(t, victim.dir)
		victim.start(t, bin)
		left = killWhenPresent(t, victim, phase.pattern)
		pc.logf(t, "killed %s while it %s; it left %v", victim.name, phase.name, left)
		victim.start(t, bin)
		pc.waitReady(t, victim)
		for _, name := range left { // these exact files; new ones may be in use
			if _, err := os.Stat(filepath.Join(victim.dir, name)); !os.IsNotExist(err) {
				t.Errorf("%s still holds %s after its restart (%v)", victim.name, name, err)
			}
		}
		pc.logf(t, "%s is back", victim.name)
	}

	// 3. Wiped once more: the full install, timed.
	pc.waitAcks(t, pc.acked()+50)
	victim.kill(t)
	wipe(t, victim.dir)
	began = time.Now()
	victim.start(t, bin)
	pc.waitReady(t, victim)
	caughtUp := time.Since(began)
	rss := peakRSS(t, victim)
	pc.logf(t, "FIGURE catch-up of a wiped node over a %d MiB database (start to ready): %v, its peak RSS %d MiB",
		bigMiB, caughtUp.Round(time.Millisecond), rss>>20)
	// Bounded memory: the install streams through files, so the process
	// never holds the database.
	if rss >= bigMiB<<20 {
		t.Errorf("%s peaked at %d MiB while installing a %d MiB snapshot", victim.name, rss>>20, bigMiB)
	}
	pc.waitAcks(t, pc.acked()+50)
	pc.finish(t)
}

// mustExec runs one statement through the client node, as the writers do.
func (pc *procCluster) mustExec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := pc.db.Exec(query, args...); err != nil {
		t.Fatalf("%.40s: %v", query, err)
	}
}

// waitReady waits until p answers /readyz with 200: it knows the leader
// and has applied what the leader committed.
func (pc *procCluster) waitReady(t *testing.T, p *serveProc) {
	t.Helper()
	clustertest.WaitFor(t, p.name+" to be ready", procWait, func() bool {
		code, _, _ := p.get(t, "/readyz?timeout=1s")
		return code == http.StatusOK
	})
}

// killWhenPresent polls p's DATA_DIR until a file matching one of patterns
// exists, then kills p with SIGKILL and returns what matched right after
// the kill: the proof that the kill fell in the middle of the work.
func killWhenPresent(t *testing.T, p *serveProc, patterns ...string) []string {
	t.Helper()
	clustertest.WaitFor(t, fmt.Sprintf("%s to create one of %v", p.name, patterns), procWait, func() bool {
		return len(globAll(t, p.dir, patterns...)) > 0
	})
	p.kill(t)
	left := globAll(t, p.dir, patterns...)
	if len(left) == 0 {
		t.Fatalf("%s finished before SIGKILL arrived; nothing of %v was left", p.name, patterns)
	}
	return left
}

func globAll(t *testing.T, dir string, patterns ...string) []string {
	t.Helper()
	var out []string
	for _, pat := range patterns {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range m {
			rel, _ := filepath.Rel(dir, name)
			out = append(out, rel)
		}
	}
	return out
}

func wipe(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// peakRSS is the running process's peak resident set size (VmHWM), in
// bytes. Linux only, as the multi-process tests are.
func peakRSS(t *testing.T, p *serveProc) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}
