package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// Settings of TestFaults.
const (
	fixedSeed       = 1
	shortDuration   = 75 * time.Second // of faults, per seed, in the default run
	defaultNodes    = 3
	logTailLines    = 40
	bankAccounts    = 5
	bankBalance     = 100
	envDuration     = "HIQLITE_FAULTS_DURATION" // a long run: how long the faults go on
	envSeed         = "HIQLITE_FAULTS_SEED"     // a long run or a replay: its seed
	envNodes        = "HIQLITE_FAULTS_NODES"    // 3 (default) or 5
	envOut          = "HIQLITE_FAULTS_OUT"      // where histories and data dirs go
	processPrefix   = "hqf"
	initialSetupTry = 5 * time.Second
)

// TestFaults runs the fault-injection suite: for each seed, a cluster of
// "hiqlite serve" processes under every workload while the nemesis injects
// faults, then heals everything and checks the history and the nodes.
// By default it runs a fixed seed and a random one, each for
// shortDuration; HIQLITE_FAULTS_DURATION and HIQLITE_FAULTS_SEED run one
// seed for as long as asked (set go test's -timeout to match).
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault-injection suite builds hiqlite and runs clusters of processes for minutes; run without -short")
	}
	duration := shortDuration
	seeds := []uint64{fixedSeed, rand.Uint64() % 1_000_000}
	if v := os.Getenv(envDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("invalid %s %q: want a duration such as 30m", envDuration, v)
		}
		duration, seeds = d, seeds[1:]
	}
	if v := os.Getenv(envSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("invalid %s %q: want an unsigned integer", envSeed, v)
		}
		seeds = []uint64{s}
	}
	nodes := defaultNodes
	if v := os.Getenv(envNodes); v != "" {
		if n, err := strconv.Atoi(v); err != nil || (n != 3 && n != 5) {
			t.Fatalf("invalid %s %q: want 3 or 5", envNodes, v)
		} else {
			nodes = n
		}
	}
	out := os.Getenv(envOut)
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "hiqlite-faults-"); err != nil {
			t.Fatal(err)
		}
		// Kept when a seed fails, for the replay.
		t.Cleanup(func() {
			if !t.Failed() {
				os.RemoveAll(out)
			}
		})
	}
	t.Logf("seeds %v, %v of faults each, %d nodes; histories under %s", seeds, duration, nodes, out)
	bin := buildBinary(t, t.TempDir())
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runSeed(t, bin, filepath.Join(out, fmt.Sprintf("seed-%d", seed)), seed, nodes, duration)
		})
	}
}

// runSeed is one run of the suite. On success it removes the nodes'
// data directories and keeps the history.
func runSeed(t *testing.T, bin, dir string, seed uint64, nodes int, duration time.Duration) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	histPath := filepath.Join(dir, "history.jsonl")
	h, err := newHistory(histPath, began)
	if err != nil {
		t.Fatal(err)
	}
	net := newNetwork(processPrefix, nodes)
	if why := net.partitions(); why != "" {
		t.Logf("network namespaces unavailable: %s; partitions skipped", why)
	}
	c := newCluster(t, bin, filepath.Join(dir, "data"), nodes, net)
	r := &runner{c: c, h: h}
	r.hint.set(-1)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	nem := newNemesis(r, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())))
	nem.progress = func(line string) { t.Log(line) }
	// logf logs and keeps the line for report.txt.
	var lines []string
	logf := func(format string, args ...any) {
		t.Helper()
		t.Logf(format, args...)
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	t.Cleanup(func() {
		nem.mu.Lock()
		text := strings.Join(lines, "\n") + "\nschedule:\n" + strings.Join(nem.schedule, "\n") + "\n"
		nem.mu.Unlock()
		if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(text), 0o600); err != nil {
			t.Error(err)
		}
		for _, nd := range c.nodes {
			nd.kill()
		}
		if err := net.close(); err != nil {
			t.Errorf("close the network: %v", err)
		}
		if err := h.close(); err != nil {
			t.Errorf("history %s: %v", histPath, err)
		}
		if t.Failed() {
			report(t, seed, nem, histPath, c)
			for _, nd := range c.nodes {
				path := filepath.Join(dir, nd.name+".log")
				if err := os.WriteFile(path, []byte(nd.out.String()), 0o600); err != nil {
					t.Error(err)
				}
			}
			t.Logf("every node's whole log: %s", filepath.Join(dir, "n*.log"))
			return
		}
		os.RemoveAll(filepath.Join(dir, "data"))
	})

	for _, nd := range c.nodes {
		if err := c.start(nd, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitAllReady(); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	var setup Reply
	if !waitfor.Until(startWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), initialSetupTry)
		defer cancel()
		setup = c.call(ctx, c.nodes[0], "POST", "/x/setup", map[string]int64{"accounts": bankAccounts, "balance": bankBalance}, nil)
		return setup.Outcome == OK
	}) {
		t.Fatalf("setup: %s %s", setup.Outcome, setup.Error)
	}
	t.Logf("seed %d: cluster of %d ready and set up after %v; faults for %v", seed, nodes, time.Since(began).Round(time.Millisecond), duration)

	ws := workloads()
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range ws {
		wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() { w.Run(ctx, r, wrng) })
	}
	wg.Go(func() { pollLeader(ctx, r) })
	nem.run(ctx)
	wg.Wait()

	nem.healAll()
	if err := c.waitAllReady(); err != nil {
		t.Fatalf("after healing everything: %v", err)
	}
	applied, err := c.waitSameApplied()
	if err != nil {
		t.Fatalf("after healing everything: %v", err)
	}
	nem.logf("every node ready at applied index %d", applied)

	var anomalies []string
	anomalies = append(anomalies, nem.problems...)
	for _, w := range ws {
		summary, found := w.Check(r, h.byWorkload(w.Name()))
		logf("%-10s %s", w.Name(), summary)
		anomalies = append(anomalies, found...)
	}
	anomalies = append(anomalies, compareNodes(c)...)
	var kinds []string
	total := 0
	for k, n := range nem.counts {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(kinds)
	nem.mu.Lock()
	schedule := strings.Join(nem.schedule, "\n")
	nem.mu.Unlock()
	t.Logf("seed %d schedule:\n%s", seed, schedule)
	logf("seed %d: %d faults (%s); %d ops recorded; %d anomalies; applied index %d",
		seed, total, strings.Join(kinds, ", "), h.len(), len(anomalies), applied)
	for _, a := range anomalies {
		lines = append(lines, "anomaly: "+a)
		t.Errorf("anomaly: %s", a)
	}
}

// pollLeader keeps r's leader hint fresh until ctx ends.
func pollLeader(ctx context.Context, r *runner) {
	for ctx.Err() == nil {
		if l := r.c.leader(); l >= 0 {
			r.hint.set(l)
		}
		wait(ctx, time.Second)
	}
}

// compareNodes dumps every node's tables: they must be identical, and
// PRAGMA integrity_check "ok" on each.
func compareNodes(c *cluster) []string {
	var anomalies []string
	var ref Reply
	for i, nd := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
		rep := c.call(ctx, nd, "GET", "/x/dump", nil, nil)
		cancel()
		if rep.Outcome != OK {
			anomalies = append(anomalies, fmt.Sprintf("dump of %s: %s %s", nd.name, rep.Outcome, rep.Error))
			continue
		}
		if rep.Integrity != "ok" {
			anomalies = append(anomalies, fmt.Sprintf("integrity_check on %s: %q", nd.name, rep.Integrity))
		}
		if i == 0 {
			ref = rep
			continue
		}
		for name, rows := range rep.Dump {
			if ref.Dump[name] != rows {
				anomalies = append(anomalies, fmt.Sprintf("table %s on %s (%d bytes) differs from %s's (%d bytes)",
					name, nd.name, len(rows), c.nodes[0].name, len(ref.Dump[name])))
			}
		}
		if len(rep.Dump) != len(ref.Dump) {
			anomalies = append(anomalies, fmt.Sprintf("%s has %d tables, %s %d", nd.name, len(rep.Dump), c.nodes[0].name, len(ref.Dump)))
		}
	}
	return anomalies
}

// report logs what a replay needs: the seed, the schedule, the history
// file and each node's log tail.
func report(t *testing.T, seed uint64, nem *nemesis, histPath string, c *cluster) {
	nem.mu.Lock()
	schedule := strings.Join(nem.schedule, "\n")
	nem.mu.Unlock()
	t.Logf("FAILED with seed %d: replay with %s=%d (and %s for the same length)\nschedule:\n%s\nhistory: %s",
		seed, envSeed, seed, envDuration, schedule, histPath)
	for _, nd := range c.nodes {
		t.Logf("last %d lines of %s (data dir %s):\n%s", logTailLines, nd.name, nd.dir, nd.tail(logTailLines))
	}
}
