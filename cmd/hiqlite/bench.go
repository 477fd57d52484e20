package main

// hiqlite bench: hiqlite's performance targets beside their baselines, measured
// in the same run on the same machine.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

const benchSynopsis = "[--json FILE] [--duration D | --ops N] [--quick] [--only REGEXP] [--tx-rows N] [--rounds N] [--procs LIST]"

// Bounds of each measurement when the flags leave them open: a count
// bound under --duration alone, a time bound under --ops alone.
const (
	benchDefaultDuration = 3 * time.Second
	benchQuickDuration   = 500 * time.Millisecond
	benchMaxOps          = 10_000_000
	benchMaxDuration     = time.Minute
)

func cmdBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("bench", benchSynopsis, stderr)
	jsonFile := fs.String("json", "", "also write the results to `FILE` as JSON")
	duration := fs.Duration("duration", benchDefaultDuration, "how long each measurement runs at most")
	ops := fs.Int64("ops", 0, fmt.Sprintf("how many operations each measurement runs at most, a transaction counting as one (without --ops: %d; --ops without --duration makes the time bound %v)", benchMaxOps, benchMaxDuration))
	quick := fs.Bool("quick", false, fmt.Sprintf("measure for %v each instead of %v", benchQuickDuration, benchDefaultDuration))
	only := fs.String("only", "", "run only the scenarios whose id matches `REGEXP` (ids: "+strings.Join(scenarioIDs(), ", ")+")")
	txRows := fs.Int("tx-rows", 10000, "rows in the one-transaction scenario")
	rounds := fs.Int("rounds", 5, "split each measurement into this many rounds, taking turns with its baselines")
	procsList := fs.String("procs", "", "run the scenarios once per GOMAXPROCS in `LIST` (comma-separated, e.g. 2,4,8,16): a table for each and a sweep table of the ratios (default: once, at the current GOMAXPROCS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	lim := limits{ops: *ops, duration: *duration}
	switch {
	case *quick && !set["duration"]:
		lim.duration = benchQuickDuration
	case set["ops"] && !set["duration"]:
		lim.duration = benchMaxDuration
	}
	if !set["ops"] {
		lim.ops = benchMaxOps
	}
	if lim.ops < 1 || lim.duration <= 0 || *txRows < 1 || *rounds < 1 {
		return &usageError{fmt.Errorf("--ops %d, --duration %v, --tx-rows %d and --rounds %d must be positive", *ops, *duration, *txRows, *rounds)}
	}
	procs, err := parseProcs(*procsList)
	if err != nil {
		return &usageError{err}
	}
	filter, err := regexp.Compile(*only)
	if err != nil {
		return &usageError{fmt.Errorf("--only: %w", err)}
	}
	var todo []*scenario
	for _, sc := range benchScenarios(*txRows) {
		if filter.MatchString(sc.id) {
			todo = append(todo, sc)
		}
	}
	if len(todo) == 0 {
		return &usageError{fmt.Errorf("--only %q matches no scenario (ids: %s)", *only, strings.Join(scenarioIDs(), ", "))}
	}
	// The nodes would log raft's complaints about a starved machine to
	// stderr, amid the progress lines; HIQLITE_LOG still turns them on.
	if os.Getenv("HIQLITE_LOG") == "" {
		os.Setenv("HIQLITE_LOG", "off")
	}
	tmp, err := os.MkdirTemp("", "hiqlite-bench-*")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the temporary directory: %w", rerr))
		}
	}()
	b := &benchRun{progress: stderr, dir: tmp, lim: lim, rounds: *rounds, txRows: *txRows, procs: procs}
	report, err := b.run(ctx, todo)
	if err != nil {
		return err
	}
	report.print(stdout)
	if *jsonFile != "" {
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nWrote %s.\n", *jsonFile)
	}
	return nil
}

// scenarioKind is what a scenario's operation does.
type scenarioKind int

const (
	kindInsert   scenarioKind = iota // one single-row INSERT, autocommit
	kindTx                           // one transaction of txRows single-row INSERTs
	kindRead                         // one point SELECT by primary key
	kindCacheSet                     // one replicated cache Set (hiqlite only: no baseline has caches)
	kindCacheGet                     // one local cache Get
	kindMix                          // a point SELECT (mixReadShare of them) or a single-row INSERT, by a PRNG per client
)

// scenario is one row of the bench's table.
type scenario struct {
	id       string
	title    string
	unit     string // what the rate counts, per second
	kind     scenarioKind
	workers  int
	follower bool // hiqlite's writes run on a follower (forwarded)
	remote   bool // hiqlite's operations run through a remote client (hiqlite://) attached to a follower
	tls      bool // hiqlite runs with mutual TLS on its node ports (a cluster of its own)
	voters   int  // hiqlite's cluster has this many voters, a cluster of its own unless 3; 0 is 3
	per      int  // units per operation
	target   *target
}

// baselineKey names what a baseline measures; scenarios that differ only
// in hiqlite (leader or follower) share a baseline.
func (sc *scenario) baselineKey() string { return fmt.Sprintf("%d/%d", sc.kind, sc.workers) }

// clusterSpec is what sets a hiqlite cluster of the bench apart; each
// one that a scenario to run names is started once.
type clusterSpec struct {
	tls    bool
	voters int
}

// baseCluster is the cluster most scenarios run on.
var baseCluster = clusterSpec{voters: 3}

func (sc *scenario) cluster() clusterSpec {
	c := clusterSpec{tls: sc.tls, voters: sc.voters}
	if c.voters == 0 {
		c.voters = 3
	}
	return c
}

// dirName is the cluster's directory in the run's.
func (c clusterSpec) dirName() string {
	d := "hiqlite"
	if c != baseCluster {
		d += fmt.Sprintf("-%dvoters", c.voters)
	}
	if c.tls {
		d += "-tls"
	}
	return d
}

func (c clusterSpec) String() string {
	s := fmt.Sprintf("a %d-node hiqlite cluster", c.voters)
	if c.tls {
		s += " with TLS"
	}
	return s
}

// target is one of hiqlite's performance targets. min returns the rate that meets it, from
// the rows measured so far; false when what it depends on was not measured.
type target struct {
	text string
	min  func(rows map[string]*benchRow) (float64, bool)
}

// atLeast is a fixed rate.
func atLeast(rate float64, text string) *target {
	return &target{text: text, min: func(map[string]*benchRow) (float64, bool) { return rate, true }}
}

// fractionOf is a fraction of what hiqlite did in another row.
func fractionOf(f float64, id, text string) *target {
	return &target{text: text, min: func(rows map[string]*benchRow) (float64, bool) {
		r := rows[id]
		if r == nil || r.Results[sysHiqlite] == nil {
			return 0, false
		}
		return f * r.Results[sysHiqlite].PerSecond, true
	}}
}

func benchScenarios(txRows int) []*scenario {
	ins := func(id string, workers int, follower bool, t *target) *scenario {
		on, w := "leader", "writers"
		if follower {
			on = "follower"
		}
		if workers == 1 {
			w = "writer"
		}
		return &scenario{id: id, title: fmt.Sprintf("%s insert, %d %s", on, workers, w), unit: "inserts/s",
			kind: kindInsert, workers: workers, follower: follower, per: 1, target: t}
	}
	insTLS := func(id string, workers int) *scenario {
		sc := ins(id, workers, false, nil)
		sc.title += ", TLS"
		sc.tls = true
		return sc
	}
	fiveVoters := func(id string, workers int, t *target) *scenario {
		sc := ins(id, workers, false, t)
		sc.title += ", 5 voters"
		sc.voters = 5
		return sc
	}
	read := func(id string, workers int) *scenario {
		r := "readers"
		if workers == 1 {
			r = "reader"
		}
		sc := &scenario{id: id, title: fmt.Sprintf("point select, %d %s", workers, r), unit: "selects/s",
			kind: kindRead, workers: workers, per: 1}
		sc.target = &target{text: "≥ 90% of SQLite", min: func(rows map[string]*benchRow) (float64, bool) {
			var best float64
			for _, sys := range []string{sysSQLiteFull, sysSQLiteNormal} {
				if m := rows[id].Results[sys]; m != nil {
					best = max(best, m.PerSecond)
				}
			}
			return 0.9 * best, best > 0
		}}
		return sc
	}
	remote := func(sc *scenario) *scenario {
		sc.remote, sc.follower = true, true
		sc.title = "remote client " + strings.Replace(sc.title, "follower ", "", 1) + " (via a follower)"
		sc.target = nil
		return sc
	}
	cacheSet := func(id string, workers int, t *target) *scenario {
		w := "writers"
		if workers == 1 {
			w = "writer"
		}
		return &scenario{id: id, title: fmt.Sprintf("cache set on the leader, %d %s", workers, w), unit: "sets/s",
			kind: kindCacheSet, workers: workers, per: 1, target: t}
	}
	return []*scenario{
		ins("leader-insert-1", 1, false, atLeast(2500, "≥ 2,500/s")),
		ins("leader-insert-4", 4, false, nil),
		ins("leader-insert-16", 16, false, nil),
		ins("leader-insert-64", 64, false, atLeast(30000, "≥ 30,000/s")),
		ins("leader-insert-256", 256, false, nil),
		ins("follower-insert-1", 1, true, fractionOf(0.6, "leader-insert-1", "≥ 60% of leader, 1")),
		ins("follower-insert-16", 16, true, fractionOf(0.7, "leader-insert-16", "≥ 70% of leader, 16")),
		ins("follower-insert-64", 64, true, atLeast(21000, "≥ 21,000/s (70% of 30,000)")),
		insTLS("leader-insert-64-tls", 64),
		fiveVoters("leader-insert-64-5voters", 64, fractionOf(0.8, "leader-insert-64", "≥ 80% of 3 voters, 64")),
		{id: "tx-insert", title: fmt.Sprintf("one transaction of %d inserts", txRows), unit: "rows/s",
			kind: kindTx, workers: 1, per: txRows, target: atLeast(300000, "≥ 300,000/s")},
		read("select-1", 1),
		read("select-16", 16),
		read("select-64", 64),
		remote(ins("remote-insert-16", 16, true, nil)),
		remote(ins("remote-insert-64", 64, true, nil)),
		remote(read("remote-select-1", 1)),
		remote(read("remote-select-16", 16)),
		{id: "mix-90-10", title: "90% point selects, 10% inserts, 64 clients on all nodes", unit: "ops/s",
			kind: kindMix, workers: 64, per: 1},
		cacheSet("cache-set-1", 1, nil),
		cacheSet("cache-set-16", 16, nil),
		cacheSet("cache-set-64", 64, atLeast(100000, "≥ 100,000/s")),
		{id: "cache-get-1", title: "cache get (local), 1 reader", unit: "gets/s", kind: kindCacheGet, workers: 1, per: 1,
			target: atLeast(500000, "≥ 500,000/s (< 2 µs)")},
	}
}

func scenarioIDs() []string {
	var ids []string
	for _, sc := range benchScenarios(1) {
		ids = append(ids, sc.id)
	}
	return ids
}

// The systems, in the table's order.
const (
	sysHiqlite      = "hiqlite"
	sysSQLiteFull   = "sqlite_full"
	sysSQLiteNormal = "sqlite_normal"
	sysRaft         = "raft"
)

var systemIDs = []string{sysHiqlite, sysSQLiteFull, sysSQLiteNormal, sysRaft}

var systemTitles = map[string]string{
	sysHiqlite:      "hiqlite",
	sysSQLiteFull:   "SQLite FULL",
	sysSQLiteNormal: "SQLite NORMAL",
	sysRaft:         "bare Raft",
}

// benchRun is the state of one run.
type benchRun struct {
	progress io.Writer
	dir      string
	lim      limits // of each measurement, all its rounds together
	rounds   int
	txRows   int
	procs    []int // GOMAXPROCS of each pass; none: one pass at the current

	hiqlite *hiqliteSystem
	systems map[string]benchSystem
	nodes   []string // the clusters running in the process, as "3 hiqlite" and so on
	nNodes  int      // their nodes
}

func (b *benchRun) say(format string, args ...any) {
	fmt.Fprintf(b.progress, format+"\n", args...)
}

// run starts the systems, measures todo on each of them, once per
// GOMAXPROCS of b.procs, and stops them.
func (b *benchRun) run(ctx context.Context, todo []*scenario) (_ *benchReport, err error) {
	r := &benchReport{
		Started: time.Now().UTC().Truncate(time.Second),
		Machine: machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Model: cpuModel(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			Go: runtime.Version(), LoadStart: loadAverage()},
		Settings: settings{Duration: b.lim.duration.String(), Ops: b.lim.ops, Rounds: b.rounds, TxRows: b.txRows, ReadRows: readRows, Procs: b.procs,
			SQLiteFull:   "WAL, synchronous=FULL: each commit fsyncs the WAL; writers share one connection",
			SQLiteNormal: "WAL, synchronous=NORMAL: no fsync per commit (hiqlite's state machine setting); writers share one connection",
			Raft:         "hashicorp/raft, 3 voters, raft-wal log, NetworkTransport over nodeport.Mux on 127.0.0.1, no-op BatchingFSM, cluster/lifecycle.go's raft.Config"},
	}
	b.say("hiqlite bench: %d CPUs (%s), GOMAXPROCS %d, %s, %s; load average %s", r.Machine.CPUs, orUnknown(r.Machine.Model), r.Machine.GOMAXPROCS,
		r.Machine.OS, r.Machine.Go, orUnknown(r.Machine.LoadStart))
	b.say("each measurement: at most %v and %d operations in %d rounds, taking turns with its baselines, after a warm-up; data in %s",
		b.lim.duration, b.lim.ops, b.rounds, b.dir)
	defer func() {
		err = errors.Join(err, b.closeSystems())
	}()
	if err := b.startSystems(ctx, todo); err != nil {
		return nil, err
	}
	if rs, ok := b.systems[sysRaft].(*raftSystem); ok {
		r.Settings.RaftEntrySize = len(rs.entry)
	}
	passes := b.procs
	if len(passes) == 0 {
		passes = []int{0}
	} else {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	}
	for i, procs := range passes {
		if procs > 0 {
			runtime.GOMAXPROCS(procs)
			b.say("pass %d/%d: GOMAXPROCS %d", i+1, len(passes), procs)
		}
		rows, err := b.pass(ctx, todo)
		if err != nil {
			return nil, err
		}
		r.Rows = append(r.Rows, rows...)
	}
	r.Machine.LoadEnd = loadAverage()
	if rss := processPeakRSS(); rss > 0 {
		r.PeakRSS = &peakRSSReport{Bytes: rss, Nodes: b.nNodes, Clusters: strings.Join(b.nodes, ", "), PerNode: rss / int64(b.nNodes)}
		b.say("peak RSS of the process (%d nodes in it: %s): %s, %s per node", b.nNodes, r.PeakRSS.Clusters, formatBytes(rss), formatBytes(r.PeakRSS.PerNode))
	}
	b.say("done; load average %s", orUnknown(r.Machine.LoadEnd))
	return r, nil
}

// pass measures todo once, at the current GOMAXPROCS; its rows' baselines
// and targets are its own.
func (b *benchRun) pass(ctx context.Context, todo []*scenario) ([]*benchRow, error) {
	procs := runtime.GOMAXPROCS(0)
	rows := map[string]*benchRow{}
	var out []*benchRow
	baselines := map[string]*measurement{}
	for i, sc := range todo {
		row := &benchRow{ID: sc.id, Title: sc.title, Unit: sc.unit, Workers: sc.workers, Procs: procs, Results: map[string]*measurement{}}
		var measure []string
		for _, sys := range systemIDs {
			if m := baselines[sys+"/"+sc.baselineKey()]; m != nil && sys != sysHiqlite {
				row.Results[sys] = m
			} else if f, _ := b.opOf(sys, sc); f != nil {
				measure = append(measure, sys)
			}
		}
		b.say("[%d/%d] %s ...", i+1, len(todo), sc.title)
		ms, err := b.measure(ctx, sc, measure)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.title, err)
		}
		for _, sys := range measure {
			m := ms[sys]
			row.Results[sys] = m
			if sys != sysHiqlite {
				baselines[sys+"/"+sc.baselineKey()] = m
			}
			var rates []string
			for _, v := range m.RoundRates {
				rates = append(rates, formatRate(v))
			}
			note := ""
			if sc.kind == kindMix {
				note = fmt.Sprintf("; %s reads/s, %s writes/s", formatRate(m.ReadsPerSecond), formatRate(m.WritesPerSecond))
			}
			if m.Note != "" {
				note += "; " + m.Note
			}
			b.say("      %-13s %9s %s  p50 %s  p99 %s  CPU %s/op  (rounds: %s%s)", systemTitles[sys], formatRate(m.PerSecond), sc.unit,
				formatMicros(m.P50Micros), formatMicros(m.P99Micros), formatMicros(m.CPUMicros), strings.Join(rates, ", "), note)
		}
		if row.PeakRSSBytes = processPeakRSS(); row.PeakRSSBytes > 0 {
			b.say("      peak RSS of the process so far: %s", formatBytes(row.PeakRSSBytes))
		}
		rows[sc.id] = row
		out = append(out, row)
	}
	for i, row := range out {
		row.score(todo[i], rows)
	}
	return out, nil
}

// hiqliteFor is the hiqlite cluster that measures sc.
func (b *benchRun) hiqliteFor(sc *scenario) *hiqliteSystem {
	return b.hiqlite.forCluster(sc.cluster())
}

// startSystems starts hiqlite's cluster, the other clusters todo names,
// and the baselines, in b.dir; bare Raft only when todo has inserts, the
// only scenarios it measures.
func (b *benchRun) startSystems(ctx context.Context, todo []*scenario) error {
	b.systems = map[string]benchSystem{}
	specs := []clusterSpec{baseCluster}
	for _, sc := range todo {
		if c := sc.cluster(); !slices.Contains(specs, c) {
			specs = append(specs, c)
		}
	}
	for i, c := range specs {
		began := time.Now()
		fmt.Fprintf(b.progress, "starting %s on 127.0.0.1 ... ", c)
		h, err := startHiqlite(ctx, filepath.Join(b.dir, c.dirName()), b.txRows, c)
		if err != nil {
			fmt.Fprintln(b.progress, "failed")
			return err
		}
		if i == 0 {
			b.hiqlite = h
			b.systems[sysHiqlite] = h
		} else {
			b.hiqlite.others = append(b.hiqlite.others, h)
		}
		b.nodes = append(b.nodes, strings.TrimPrefix(c.String(), "a "))
		b.nNodes += c.voters
		b.say("ready after %s: %s leads", round(time.Since(began)), h.leader.name)
	}
	for _, s := range []struct {
		id, sync string
	}{{sysSQLiteFull, "full"}, {sysSQLiteNormal, "normal"}} {
		sq, err := startSQLite(ctx, filepath.Join(b.dir, s.id+".db"), s.sync, b.txRows)
		if err != nil {
			return fmt.Errorf("%s: %w", systemTitles[s.id], err)
		}
		b.systems[s.id] = sq
	}
	if !slices.ContainsFunc(todo, func(sc *scenario) bool { return sc.kind == kindInsert }) {
		return nil
	}
	began := time.Now()
	fmt.Fprintf(b.progress, "starting bare Raft, 3 voters on 127.0.0.1 ... ")
	rs, err := startRaft(ctx, filepath.Join(b.dir, "raft"))
	if err != nil {
		fmt.Fprintln(b.progress, "failed")
		return err
	}
	b.systems[sysRaft] = rs
	b.nodes = append(b.nodes, "bare Raft's 3 voters")
	b.nNodes += 3
	b.say("ready after %s", round(time.Since(began)))
	return nil
}

func (b *benchRun) closeSystems() error {
	var errs []error
	for _, sys := range systemIDs {
		if s := b.systems[sys]; s != nil {
			if err := s.close(); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", systemTitles[sys], err))
			}
		}
	}
	return errors.Join(errs...)
}
