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

const benchSynopsis = "[--json FILE] [--duration D | --ops N] [--quick] [--only REGEXP] [--tx-rows N] [--rounds N]"

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
	b := &benchRun{progress: stderr, dir: tmp, lim: lim, rounds: *rounds, txRows: *txRows}
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
	tls      bool // hiqlite runs with mutual TLS on its node ports (a second cluster)
	per      int  // units per operation
	target   *target
}

// baselineKey names what a baseline measures; scenarios that differ only
// in hiqlite (leader or follower) share a baseline.
func (sc *scenario) baselineKey() string { return fmt.Sprintf("%d/%d", sc.kind, sc.workers) }

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
		ins("follower-insert-1", 1, true, fractionOf(0.6, "leader-insert-1", "≥ 60% of leader, 1")),
		ins("follower-insert-16", 16, true, fractionOf(0.7, "leader-insert-16", "≥ 70% of leader, 16")),
		ins("follower-insert-64", 64, true, atLeast(21000, "≥ 21,000/s (70% of 30,000)")),
		insTLS("leader-insert-64-tls", 64),
		{id: "tx-insert", title: fmt.Sprintf("one transaction of %d inserts", txRows), unit: "rows/s",
			kind: kindTx, workers: 1, per: txRows, target: atLeast(300000, "≥ 300,000/s")},
		read("select-1", 1),
		read("select-16", 16),
		remote(ins("remote-insert-16", 16, true, nil)),
		remote(ins("remote-insert-64", 64, true, nil)),
		remote(read("remote-select-1", 1)),
		remote(read("remote-select-16", 16)),
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

	hiqlite *hiqliteSystem
	systems map[string]benchSystem
}

func (b *benchRun) say(format string, args ...any) {
	fmt.Fprintf(b.progress, format+"\n", args...)
}

// run starts the systems, measures todo on each of them and stops them.
func (b *benchRun) run(ctx context.Context, todo []*scenario) (_ *benchReport, err error) {
	r := &benchReport{
		Started: time.Now().UTC().Truncate(time.Second),
		Machine: machine{CPUs: runtime.NumCPU(), Model: cpuModel(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			Go: runtime.Version(), LoadStart: loadAverage()},
		Settings: settings{Duration: b.lim.duration.String(), Ops: b.lim.ops, Rounds: b.rounds, TxRows: b.txRows, ReadRows: readRows,
			SQLiteFull:   "WAL, synchronous=FULL: each commit fsyncs the WAL; writers share one connection",
			SQLiteNormal: "WAL, synchronous=NORMAL: no fsync per commit (hiqlite's state machine setting); writers share one connection",
			Raft:         "hashicorp/raft, 3 voters, raft-wal log, NetworkTransport over nodeport.Mux on 127.0.0.1, no-op BatchingFSM, cluster/lifecycle.go's raft.Config"},
	}
	b.say("hiqlite bench: %d CPUs (%s), %s, %s; load average %s", r.Machine.CPUs, orUnknown(r.Machine.Model), r.Machine.OS, r.Machine.Go, orUnknown(r.Machine.LoadStart))
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

	rows := map[string]*benchRow{}
	baselines := map[string]*measurement{}
	for i, sc := range todo {
		row := &benchRow{ID: sc.id, Title: sc.title, Unit: sc.unit, Workers: sc.workers, Results: map[string]*measurement{}}
		var measure []string
		for _, sys := range systemIDs {
			if m := baselines[sys+"/"+sc.baselineKey()]; m != nil && sys != sysHiqlite {
				row.Results[sys] = m
			} else if s := b.systems[sys]; s != nil && s.ops(sc) != nil {
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
			if m.Note != "" {
				note = "; " + m.Note
			}
			b.say("      %-13s %9s %s  p50 %s  p99 %s  CPU %s/op  (rounds: %s%s)", systemTitles[sys], formatRate(m.PerSecond), sc.unit,
				formatMicros(m.P50Micros), formatMicros(m.P99Micros), formatMicros(m.CPUMicros), strings.Join(rates, ", "), note)
		}
		rows[sc.id] = row
		r.Rows = append(r.Rows, row)
	}
	for i, row := range r.Rows {
		row.score(todo[i], rows)
	}
	r.Machine.LoadEnd = loadAverage()
	b.say("done; load average %s", orUnknown(r.Machine.LoadEnd))
	return r, nil
}

// hiqliteFor is the hiqlite cluster that measures sc.
func (b *benchRun) hiqliteFor(sc *scenario) *hiqliteSystem {
	if sc.tls {
		return b.hiqlite.tls
	}
	return b.hiqlite
}

// startSystems starts hiqlite's cluster and the baselines, in b.dir; bare
// Raft only when todo has inserts, the only scenarios it measures.
func (b *benchRun) startSystems(ctx context.Context, todo []*scenario) error {
	b.systems = map[string]benchSystem{}
	began := time.Now()
	fmt.Fprintf(b.progress, "starting a 3-node hiqlite cluster on 127.0.0.1 ... ")
	h, err := startHiqlite(ctx, filepath.Join(b.dir, "hiqlite"), b.txRows)
	if err != nil {
		fmt.Fprintln(b.progress, "failed")
		return err
	}
	b.hiqlite = h
	b.systems[sysHiqlite] = h
	b.say("ready after %s: %s leads", round(time.Since(began)), h.leader.name)
	if slices.ContainsFunc(todo, func(sc *scenario) bool { return sc.tls }) {
		began = time.Now()
		fmt.Fprintf(b.progress, "starting a 3-node hiqlite cluster with TLS on 127.0.0.1 ... ")
		if h.tls, err = startHiqliteTLS(ctx, filepath.Join(b.dir, "hiqlite-tls"), b.txRows); err != nil {
			fmt.Fprintln(b.progress, "failed")
			return err
		}
		b.say("ready after %s: %s leads", round(time.Since(began)), h.tls.leader.name)
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
	began = time.Now()
	fmt.Fprintf(b.progress, "starting bare Raft, 3 voters on 127.0.0.1 ... ")
	rs, err := startRaft(ctx, filepath.Join(b.dir, "raft"))
	if err != nil {
		fmt.Fprintln(b.progress, "failed")
		return err
	}
	b.systems[sysRaft] = rs
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

// measure measures sc on each of systems in b.rounds rounds, taking
// turns (in another order each round), so that a change in the machine's
// load weighs on all of them alike. Each first warms up. A system's rate
// is the median of its rounds' rates; its latencies are those of all its
// rounds; its CPU time per operation counts them all.
func (b *benchRun) measure(ctx context.Context, sc *scenario, systems []string) (map[string]*measurement, error) {
	rounds := int64(b.rounds)
	if rounds > b.lim.ops {
		rounds = b.lim.ops
	}
	ops := map[string]op{}
	lats := map[string]*latencies{}
	cpus := map[string]time.Duration{}
	out := map[string]*measurement{}
	for _, sys := range systems {
		ops[sys] = b.systems[sys].ops(sc)
		lats[sys] = &latencies{}
		out[sys] = &measurement{}
		warm := limits{ops: max(1, b.lim.ops/10), duration: b.lim.duration / 10}
		if _, _, err := b.load(ctx, sys, sc, warm, ops[sys]); err != nil {
			return nil, fmt.Errorf("%s, warm-up: %w", systemTitles[sys], err)
		}
	}
	for r := range rounds {
		// Round r's share of the count bound: they add up to b.lim.ops.
		lim := limits{ops: b.lim.ops / rounds, duration: b.lim.duration / time.Duration(rounds)}
		if r < b.lim.ops%rounds {
			lim.ops++
		}
		for i := range systems {
			sys := systems[(i+int(r))%len(systems)]
			res, cpu, err := b.load(ctx, sys, sc, lim, ops[sys])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", systemTitles[sys], err)
			}
			m := out[sys]
			cpus[sys] += cpu
			m.Ops += res.ops
			m.Seconds += res.elapsed.Seconds()
			m.RoundRates = append(m.RoundRates, res.perSecond(sc.per))
			lats[sys].merge(res.lat)
			if sys == sysHiqlite {
				moved, err := b.hiqliteFor(sc).leaderMoved(ctx)
				if err != nil {
					return nil, err
				}
				if moved {
					m.Note = "the leader changed during the measurement"
				}
			}
		}
	}
	for sys, m := range out {
		m.PerSecond = median(m.RoundRates)
		m.P50Micros = micros(lats[sys].quantile(0.50))
		m.P99Micros = micros(lats[sys].quantile(0.99))
		if m.Ops > 0 {
			m.CPUMicros = micros(cpus[sys]) / float64(m.Ops)
		}
	}
	return out, nil
}

// load runs one load of sc on sys and returns the CPU time the process
// used meanwhile. After hiqlite's it waits for the followers to catch up,
// so that their backlog does not weigh on the next load, and counts their
// work.
func (b *benchRun) load(ctx context.Context, sys string, sc *scenario, lim limits, f op) (loadResult, time.Duration, error) {
	cpu := processCPU()
	res, err := runLoad(ctx, sc.workers, lim, f)
	if h := b.hiqliteFor(sc); err == nil && sys == sysHiqlite {
		err = h.c.waitApplied(ctx, h.leader.node.AppliedIndex())
	}
	return res, processCPU() - cpu, err
}

// median returns the median of vs.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Sorted(slices.Values(vs))
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
