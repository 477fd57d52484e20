package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBench runs hiqlite bench through run with a few operations per
// measurement and checks the shape of what it reports: every scenario in
// the table and in the JSON, with the systems that apply to it, the count
// bound kept, and the temporary directory gone. It checks no time.
//
// The bench tests run alone, not in parallel: their 3-node clusters, on
// 2 cores under -race, would slow the other tests' clusters into
// elections.
func TestBench(t *testing.T) {
	jsonFile := filepath.Join(t.TempDir(), "bench.json")
	var out, errOut bytes.Buffer
	const ops = 3
	code := run(testContext(t), []string{"bench", "--ops", fmt.Sprint(ops), "--rounds", "2", "--tx-rows", "5", "--json", jsonFile},
		strings.NewReader(""), &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	scs := benchScenarios(5)
	for i, sc := range scs {
		if !strings.Contains(errOut.String(), fmt.Sprintf("[%d/%d] %s ...\n      hiqlite ", i+1, len(scs), sc.title)) {
			t.Errorf("no progress lines for %s (scenario %d); stderr:\n%s", sc.title, i+1, errOut.String())
		}
		if !strings.Contains(out.String(), "\n"+sc.title+"  ") {
			t.Errorf("the table has no row %q; stdout:\n%s", sc.title, out.String())
		}
	}
	for _, want := range []string{"target", "SQLite FULL", "SQLite NORMAL", "bare Raft", "p50 / p99", "Wrote " + jsonFile} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}

	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var r benchReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Machine.CPUs < 1 || r.Machine.Go == "" || r.Settings.Ops != ops || r.Settings.Rounds != 2 || r.Settings.TxRows != 5 || r.Settings.RaftEntrySize == 0 {
		t.Errorf("machine or settings incomplete: %+v %+v", r.Machine, r.Settings)
	}
	if len(r.Rows) != len(scs) {
		t.Fatalf("%d rows in the JSON, want %d", len(r.Rows), len(scs))
	}
	// Every cluster's nodes: 3, 3 with TLS, 5 voters; and bare Raft's 3.
	if p := r.PeakRSS; runtime.GOOS == "linux" && (p == nil || p.Bytes <= 0 || p.Nodes != 14 || p.PerNode != p.Bytes/14) {
		t.Errorf("peak RSS %+v, want the process's over 14 nodes", p)
	}
	var rss int64
	for i, row := range r.Rows {
		sc := scs[i]
		if row.Procs != runtime.GOMAXPROCS(0) {
			t.Errorf("%s: GOMAXPROCS %d, want %d", row.ID, row.Procs, runtime.GOMAXPROCS(0))
		}
		if runtime.GOOS == "linux" && row.PeakRSSBytes < max(rss, 1) {
			t.Errorf("%s: peak RSS %d after %d: a high-water mark never falls", row.ID, row.PeakRSSBytes, rss)
		}
		rss = row.PeakRSSBytes
		want := []string{sysHiqlite, sysSQLiteFull, sysSQLiteNormal}
		switch sc.kind {
		case kindInsert:
			want = append(want, sysRaft)
		case kindCacheSet, kindCacheGet:
			want = want[:1] // no baseline has caches
		}
		var got []string
		for sys, m := range row.Results {
			got = append(got, sys)
			if m.Ops < 1 || m.Ops > ops || m.PerSecond <= 0 || m.Seconds <= 0 || m.P50Micros <= 0 || m.P99Micros < m.P50Micros || len(m.RoundRates) != 2 || m.CPUMicros < 0 {
				t.Errorf("%s on %s: implausible %+v", row.ID, sys, m)
			}
			// The mixed scenario counts its reads and writes; the others do not.
			if mix := sc.kind == kindMix; mix && (m.Reads+m.Writes != m.Ops || m.ReadsPerSecond+m.WritesPerSecond <= 0) ||
				!mix && m.Reads+m.Writes != 0 {
				t.Errorf("%s on %s: reads and writes %+v", row.ID, sys, m)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if row.ID != sc.id || !slices.Equal(got, want) {
			t.Errorf("row %d: %s with %v, want %s with %v", i, row.ID, got, sc.id, want)
		}
		if len(row.Ratios) != len(want)-1 {
			t.Errorf("%s: ratios %v, want one per baseline", row.ID, row.Ratios)
		}
		if (sc.target == nil) != (row.Target == nil) || row.Target != nil && (row.Target.Met == nil || row.Target.Min <= 0) {
			t.Errorf("%s: target %+v", row.ID, row.Target)
		}
	}
	m := regexp.MustCompile(`data in (\S+)`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("the progress does not name the data directory:\n%s", errOut.String())
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory %s is still there (stat: %v)", m[1], err)
	}
}

// TestBenchOnly runs one scenario: its hiqlite figure and its baselines,
// without bare Raft, which measures no reads.
func TestBenchOnly(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(testContext(t), []string{"bench", "--ops", "2", "--only", "^select-1$"}, strings.NewReader(""), &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "[1/1] point select, 1 reader ...") || !strings.Contains(errOut.String(), "      SQLite NORMAL ") ||
		strings.Contains(out.String(), "insert") || strings.Contains(errOut.String(), "starting bare Raft") {
		t.Errorf("want the three measurements of select-1 alone; stderr:\n%s\nstdout:\n%s", errOut.String(), out.String())
	}
}

// TestBenchProcs sweeps GOMAXPROCS over two values: a table for each,
// the sweep table, every row once per value in the JSON, and GOMAXPROCS
// as it was afterwards.
func TestBenchProcs(t *testing.T) {
	jsonFile := filepath.Join(t.TempDir(), "bench.json")
	before := runtime.GOMAXPROCS(0)
	var out, errOut bytes.Buffer
	code := run(testContext(t), []string{"bench", "--ops", "2", "--rounds", "1", "--procs", "1,2", "--only", "^(select-64|mix-90-10)$", "--json", jsonFile},
		strings.NewReader(""), &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d after the sweep, want %d as before", got, before)
	}
	for _, want := range []string{"pass 1/2: GOMAXPROCS 1\n", "pass 2/2: GOMAXPROCS 2\n"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	sweep := regexp.MustCompile(`(?m)^sweep: .*\nscenario +GOMAXPROCS 1 +GOMAXPROCS 2\n[- ]+\npoint select, 64 readers +\S+ / \S+ / - (yes|no) +\S+ / \S+ / - (yes|no)\n` +
		`90% point selects, 10% inserts, 64 clients on all nodes +\S+ / \S+ / - +\S+ / \S+ / -\n`)
	if !strings.Contains(out.String(), "\nGOMAXPROCS 1:\n") || !strings.Contains(out.String(), "\nGOMAXPROCS 2:\n") || !sweep.MatchString(out.String()) {
		t.Errorf("want a table per GOMAXPROCS and the sweep table; stdout:\n%s", out.String())
	}
	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var r benchReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range r.Rows {
		got = append(got, fmt.Sprintf("%s@%d", row.ID, row.Procs))
	}
	if want := []string{"select-64@1", "mix-90-10@1", "select-64@2", "mix-90-10@2"}; !slices.Equal(got, want) || !slices.Equal(r.Settings.Procs, []int{1, 2}) {
		t.Errorf("rows %v, procs %v; want %v and [1 2]", got, r.Settings.Procs, want)
	}
}

func TestBenchUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"--only", "("}, "--only: error parsing regexp"},
		{[]string{"--ops", "0"}, "--ops 0, --duration 3s, --tx-rows 10000 and --rounds 5 must be positive"},
		{[]string{"--rounds", "0"}, "must be positive"},
		{[]string{"--duration", "-1s"}, "must be positive"},
		{[]string{"--tx-rows", "0"}, "must be positive"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--procs", "2,x"}, `--procs: "x" is not a GOMAXPROCS from 1 to 1024`},
		{[]string{"--procs", "0"}, `--procs: "0" is not`},
		{[]string{"--procs", "4,2,4"}, "--procs: 4 comes twice"},
	} {
		var out, errOut bytes.Buffer
		code := run(testContext(t), append([]string{"bench"}, tt.args...), strings.NewReader(""), &out, &errOut)
		if code != exitUsage || !strings.Contains(errOut.String(), tt.err) {
			t.Errorf("bench %q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut.String(), exitUsage, tt.err)
		}
	}
}

// TestLatencies compares the histogram's quantiles with the exact ones
// of random durations spread over six orders of magnitude.
func TestLatencies(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var parts [4]latencies
	var all []time.Duration
	for i := range 100000 {
		d := time.Duration(float64(time.Microsecond) * math10(rng.Float64()*6))
		all = append(all, d)
		parts[i%len(parts)].record(d)
	}
	var l latencies
	for i := range parts {
		l.merge(&parts[i])
	}
	slices.Sort(all)
	if l.n != uint64(len(all)) || l.min != all[0] || l.max != all[len(all)-1] {
		t.Fatalf("n %d min %v max %v; want %d %v %v", l.n, l.min, l.max, len(all), all[0], all[len(all)-1])
	}
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[min(len(all)-1, max(0, int(q*float64(len(all))+0.5)-1))]
		got := l.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 1.0/latSub || diff < -1.0/latSub {
			t.Errorf("quantile(%v) = %v, exact %v: off by %.1f%%", q, got, exact, 100*diff)
		}
	}
	for v := range uint64(5000) {
		lo, hi := latBounds(latBucket(v))
		if v < lo || v > hi {
			t.Fatalf("%d in bucket %d = [%d, %d]", v, latBucket(v), lo, hi)
		}
	}
	if i := latBucket(1<<64 - 1); i != latBuckets-1 {
		t.Errorf("the largest value goes to bucket %d, want the last, %d", i, latBuckets-1)
	}
	var empty latencies
	if empty.quantile(0.5) != 0 {
		t.Error("an empty histogram has a quantile")
	}
}

func math10(x float64) float64 {
	v := 1.0
	for ; x >= 1; x-- {
		v *= 10
	}
	return v * (1 + 9*x/10)
}

// TestRunLoad checks the bounds of a load run and that the first error
// stops it.
func TestRunLoad(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	nop := func(context.Context, int) error { return nil }
	r, err := runLoad(ctx, 8, limits{ops: 1000, duration: time.Minute}, nop)
	if err != nil || r.ops != 1000 || r.lat.n != 1000 {
		t.Errorf("count bound: %d ops (%v), want 1000", r.ops, err)
	}
	// The time bound ends a run whose count bound is out of reach.
	r, err = runLoad(ctx, 4, limits{ops: 1 << 62, duration: 20 * time.Millisecond}, nop)
	if err != nil || r.ops < 1 || r.ops >= 1<<62 {
		t.Errorf("time bound: %d ops (%v)", r.ops, err)
	}
	boom := errors.New("boom")
	var calls atomic.Int64
	_, err = runLoad(ctx, 4, limits{ops: 1 << 62, duration: time.Minute}, func(context.Context, int) error {
		if calls.Add(1) == 100 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want the op's error", err)
	}
	if _, err := runLoad(ctx, 0, limits{ops: 1, duration: time.Second}, nop); err == nil {
		t.Error("no workers: no error")
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		got, want string
	}{
		{formatRate(0), "0"},
		{formatRate(999.6), "1,000"},
		{formatRate(1234567), "1,234,567"},
		{formatMicros(0.5), "500ns"},
		{formatMicros(12.34), "12.3µs"},
		{formatMicros(1234), "1.23ms"},
		{formatMicros(456789), "457ms"},
		{formatMicros(2.5e6), "2.50s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// BenchmarkPlainSQLite measures the plain SQLite baselines of hiqlite
// bench: single-row inserts, a transaction of inserts and point reads,
// with synchronous=FULL and NORMAL.
func BenchmarkPlainSQLite(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		s, err := startSQLite(context.Background(), filepath.Join(b.TempDir(), "plain.db"), sync, 10000)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.close() })
		seen := map[string]bool{}
		for _, sc := range benchScenarios(10000) {
			if seen[sc.baselineKey()] || s.ops(sc) == nil { // no caches in plain SQLite; the mix needs its mixLoad
				continue
			}
			seen[sc.baselineKey()] = true
			b.Run(sync+"/"+strings.TrimPrefix(sc.id, "leader-"), func(b *testing.B) {
				benchLoad(b, sc, s.ops(sc))
			})
		}
	}
}

// BenchmarkBareRaft measures bare Raft with a no-op state machine, the
// baseline of hiqlite's inserts: 1 to 64 writers applying entries of the
// size of an INSERT command.
func BenchmarkBareRaft(b *testing.B) {
	if os.Getenv("HIQLITE_LOG") == "" {
		// Closing the cluster makes raft log the connections it loses.
		b.Setenv("HIQLITE_LOG", "off")
	}
	s, err := startRaft(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.close() })
	seen := map[string]bool{}
	for _, sc := range benchScenarios(1) {
		if sc.kind == kindInsert && !seen[sc.baselineKey()] {
			seen[sc.baselineKey()] = true
			b.Run(fmt.Sprintf("%dwriters", sc.workers), func(b *testing.B) {
				benchLoad(b, sc, s.ops(sc))
			})
		}
	}
}

// benchLoad runs b.N operations of sc and reports their rate and latency.
func benchLoad(b *testing.B, sc *scenario, f op) {
	b.Helper()
	b.ResetTimer()
	r, err := runLoad(context.Background(), sc.workers, limits{ops: int64(b.N), duration: time.Hour}, f)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.perSecond(sc.per), sc.unit)
	b.ReportMetric(micros(r.lat.quantile(0.99)), "p99-µs")
}
