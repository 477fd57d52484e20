package main

// The report of hiqlite bench: what --json writes, the two tables, and
// the machine it ran on.

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchReport is what a run found; its JSON form is what --json writes.
type benchReport struct {
	Started  time.Time `json:"started"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`
	// Rows are the measured rows: with a GOMAXPROCS sweep, every
	// scenario's once per pass, in the order of the passes.
	Rows    []*benchRow    `json:"rows"`
	PeakRSS *peakRSSReport `json:"peak_rss,omitempty"` // absent where the platform does not tell
}

// peakRSSReport is the process's peak RSS over the whole run. Every node
// runs in the one process, so no figure is a node's own: PerNode is the
// peak divided by the nodes, an average.
type peakRSSReport struct {
	Bytes    int64  `json:"bytes"`
	Nodes    int    `json:"nodes"`    // the nodes running in the process: every hiqlite cluster's and bare Raft's
	Clusters string `json:"clusters"` // which clusters they make
	PerNode  int64  `json:"bytes_per_node"`
}

type machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"` // at the start
	Model      string `json:"cpu_model,omitempty"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	LoadStart  string `json:"load_start,omitempty"` // /proc/loadavg: 1, 5, 15 minutes
	LoadEnd    string `json:"load_end,omitempty"`
}

type settings struct {
	Duration      string `json:"duration"` // the time bound of each measurement
	Ops           int64  `json:"ops"`      // its count bound
	Rounds        int    `json:"rounds"`   // it takes turns with the others in this many rounds
	TxRows        int    `json:"tx_rows"`
	ReadRows      int    `json:"read_rows"`
	SQLiteFull    string `json:"sqlite_full"`
	SQLiteNormal  string `json:"sqlite_normal"`
	Raft          string `json:"raft"`
	RaftEntrySize int    `json:"raft_entry_bytes"`
	Procs         []int  `json:"procs,omitempty"` // --procs: the GOMAXPROCS of each pass
}

// benchRow is a scenario's figures: hiqlite's and its baselines', by
// system id, and hiqlite's rate divided by each baseline's.
type benchRow struct {
	ID      string                  `json:"id"`
	Title   string                  `json:"title"`
	Unit    string                  `json:"unit"`
	Workers int                     `json:"workers"`
	Procs   int                     `json:"gomaxprocs"` // while it ran
	Results map[string]*measurement `json:"results"`
	Ratios  map[string]float64      `json:"ratios,omitempty"`
	Target  *targetResult           `json:"target,omitempty"`
	// PeakRSSBytes is the process's peak RSS when the row was done: the
	// high-water mark of the run so far, all nodes together.
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
}

type measurement struct {
	Ops       int64   `json:"ops"` // operations: statements, transactions or entries
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"` // in the row's unit: the median of the rounds'
	// RoundRates are the rates of the rounds, in the order they ran.
	RoundRates []float64 `json:"round_rates"`
	P50Micros  float64   `json:"p50_us"` // per operation
	P99Micros  float64   `json:"p99_us"`
	// CPUMicros is the CPU time the process used per operation, all
	// threads (for hiqlite, the three nodes' and their catching up); 0
	// where the platform does not tell.
	CPUMicros float64 `json:"cpu_us_per_op"`
	// The mixed scenario's reads and writes, of all its rounds, and their
	// rates over the rounds' time together.
	Reads           int64   `json:"reads,omitempty"`
	Writes          int64   `json:"writes,omitempty"`
	ReadsPerSecond  float64 `json:"reads_per_second,omitempty"`
	WritesPerSecond float64 `json:"writes_per_second,omitempty"`
	Note            string  `json:"note,omitempty"`
}

type targetResult struct {
	Text string  `json:"text"`
	Min  float64 `json:"min_per_second,omitempty"`
	Met  *bool   `json:"met,omitempty"` // absent: what it depends on was not measured
}

// score fills in the ratios and the target of a measured row.
func (row *benchRow) score(sc *scenario, rows map[string]*benchRow) {
	h := row.Results[sysHiqlite]
	if h == nil {
		return
	}
	for sys, m := range row.Results {
		if sys != sysHiqlite && m.PerSecond > 0 {
			if row.Ratios == nil {
				row.Ratios = map[string]float64{}
			}
			row.Ratios[sys] = h.PerSecond / m.PerSecond
		}
	}
	if sc.target == nil {
		return
	}
	row.Target = &targetResult{Text: sc.target.text}
	if min, ok := sc.target.min(rows); ok {
		met := h.PerSecond >= min
		row.Target.Min, row.Target.Met = min, &met
	}
}

// print writes the two tables (once per GOMAXPROCS of a sweep): rates
// with ratios and targets, then latencies; then a sweep's table of
// ratios.
func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nhiqlite bench, %s: %d CPUs (%s), %s, %s\n", r.Started.Format(time.RFC3339), r.Machine.CPUs,
		orUnknown(r.Machine.Model), r.Machine.OS, r.Machine.Go)
	fmt.Fprintf(w, "load average (1, 5, 15 min): %s at the start, %s at the end\n", orUnknown(r.Machine.LoadStart), orUnknown(r.Machine.LoadEnd))
	fmt.Fprintf(w, "each measurement: at most %s and %d operations, in %d rounds taking turns with its baselines; rate: the rounds' median\n",
		r.Settings.Duration, r.Settings.Ops, r.Settings.Rounds)
	for _, procs := range r.passes() {
		var rows []*benchRow
		for _, row := range r.Rows {
			if row.Procs == procs {
				rows = append(rows, row)
			}
		}
		fmt.Fprintf(w, "\nGOMAXPROCS %d:\n", procs)
		printRates(w, rows)
	}

	fmt.Fprintln(w, "\nratio: hiqlite's rate divided by the baseline's. hiqlite: 3 nodes on 127.0.0.1, every write fsynced")
	fmt.Fprintln(w, "by a majority; reads local on a follower. SQLite FULL and NORMAL: plain ncruces/go-sqlite3/driver,")
	fmt.Fprintln(w, "one file, WAL, synchronous=FULL (durable) or NORMAL (no fsync per commit).")
	if r.Settings.RaftEntrySize > 0 {
		fmt.Fprintln(w, "bare Raft: hashicorp/raft with hiqlite's log store and transport, a no-op state machine,")
		fmt.Fprintf(w, "entries of %d bytes (a hiqlite INSERT).\n", r.Settings.RaftEntrySize)
	}
	fmt.Fprintln(w, "A follower row's baselines are the leader row's with as many writers; so are the TLS and 5-voter rows'.")
	for _, row := range r.Rows {
		if m := row.Results[sysHiqlite]; m != nil && m.Note != "" {
			fmt.Fprintf(w, "%s (GOMAXPROCS %d): %s.\n", row.Title, row.Procs, m.Note)
		}
	}
	printMixSplit(w, r.Rows)
	if p := r.PeakRSS; p != nil {
		fmt.Fprintf(w, "peak RSS of the process (%d nodes in it: %s; and the SQLite baselines): %s, %s per node on average (not measured per node).\n",
			p.Nodes, p.Clusters, formatBytes(p.Bytes), formatBytes(p.PerNode))
	}
	if len(r.Settings.Procs) > 0 {
		printSweep(w, r.Rows, r.Settings.Procs)
	}
}

// passes returns the GOMAXPROCS of the rows, in their order.
func (r *benchReport) passes() []int {
	var ps []int
	for _, row := range r.Rows {
		if !slices.Contains(ps, row.Procs) {
			ps = append(ps, row.Procs)
		}
	}
	return ps
}

// printRates writes the rates table and the latency table of rows.
func printRates(w io.Writer, rows []*benchRow) {
	header := []string{"scenario", "unit", "hiqlite"}
	for _, sys := range systemIDs[1:] {
		header = append(header, systemTitles[sys], "ratio")
	}
	header = append(header, "target", "met")
	var cells [][]string
	for _, row := range rows {
		line := []string{row.Title, row.Unit, rateCell(row.Results[sysHiqlite])}
		for _, sys := range systemIDs[1:] {
			line = append(line, rateCell(row.Results[sys]), ratioCell(row, sys))
		}
		cells = append(cells, append(line, row.Target.cells()...))
	}
	printAligned(w, "", "llrrrrrrrll", header, cells)

	fmt.Fprintln(w, "\nper operation (a transaction is one): latency p50 / p99 / CPU time the process used (all nodes);")
	fmt.Fprintln(w, "and the process's peak RSS when the row was done (all nodes, a high-water mark of the run):")
	header = []string{"scenario"}
	for _, sys := range systemIDs {
		header = append(header, systemTitles[sys])
	}
	header = append(header, "peak RSS")
	cells = nil
	for _, row := range rows {
		line := []string{row.Title}
		for _, sys := range systemIDs {
			c := "-"
			if m := row.Results[sys]; m != nil {
				c = formatMicros(m.P50Micros) + " / " + formatMicros(m.P99Micros) + " / " + formatMicros(m.CPUMicros)
			}
			line = append(line, c)
		}
		rss := "-"
		if row.PeakRSSBytes > 0 {
			rss = formatBytes(row.PeakRSSBytes)
		}
		cells = append(cells, append(line, rss))
	}
	printAligned(w, "", "lrrrrr", header, cells)
}

// cells are a row's target and whether it was met, for the tables.
func (t *targetResult) cells() []string {
	if t == nil {
		return []string{"-", "-"}
	}
	met := "?"
	if t.Met != nil {
		met = "no"
		if *t.Met {
			met = "yes"
		}
	}
	return []string{t.Text, met}
}

func ratioCell(row *benchRow, sys string) string {
	if v, ok := row.Ratios[sys]; ok {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return "-"
}

// printMixSplit says what the mixed rows do and writes their reads and
// writes per second.
func printMixSplit(w io.Writer, rows []*benchRow) {
	if slices.ContainsFunc(rows, func(row *benchRow) bool { return row.ID == "mix-90-10" }) {
		fmt.Fprintln(w, "The mixed row: each client is bound to one node in turn (all three), and each of its operations is a")
		fmt.Fprintln(w, "point select (90%) or a single-row insert, forwarded from a follower, drawn from a PRNG of its own:")
		fmt.Fprintln(w, "every system runs the same sequence. SQLite's clients share its readers' pool and one writer connection.")
	}
	for _, row := range rows {
		var parts []string
		for _, sys := range systemIDs {
			if m := row.Results[sys]; m != nil && m.Reads+m.Writes > 0 {
				parts = append(parts, fmt.Sprintf("%s %s reads/s + %s writes/s", systemTitles[sys], formatRate(m.ReadsPerSecond), formatRate(m.WritesPerSecond)))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "%s (GOMAXPROCS %d), over all rounds: %s.\n", row.Title, row.Procs, strings.Join(parts, "; "))
		}
	}
}

// printSweep writes a table of the sweep: a scenario per line, a
// GOMAXPROCS per column, each cell hiqlite's ratios to SQLite FULL,
// SQLite NORMAL and bare Raft, and whether its target was met.
func printSweep(w io.Writer, rows []*benchRow, procs []int) {
	fmt.Fprintln(w, "\nsweep: hiqlite's ratio to SQLite FULL / SQLite NORMAL / bare Raft at each GOMAXPROCS; target met: yes, no or ?")
	header := []string{"scenario"}
	for _, p := range procs {
		header = append(header, fmt.Sprintf("GOMAXPROCS %d", p))
	}
	var cells [][]string
	byID := map[string]int{}
	for _, row := range rows {
		i, ok := byID[row.ID]
		if !ok {
			i = len(cells)
			byID[row.ID] = i
			cells = append(cells, append([]string{row.Title}, slices.Repeat([]string{"-"}, len(procs))...))
		}
		j := slices.Index(procs, row.Procs)
		if j < 0 {
			continue
		}
		var rs []string
		for _, sys := range systemIDs[1:] {
			rs = append(rs, ratioCell(row, sys))
		}
		c := strings.Join(rs, " / ")
		if row.Target != nil {
			c += " " + row.Target.cells()[1]
		}
		cells[i][j+1] = c
	}
	printAligned(w, "", "l"+strings.Repeat("r", len(procs)), header, cells)
}

func rateCell(m *measurement) string {
	if m == nil {
		return "-"
	}
	return formatRate(m.PerSecond)
}

// formatRate prints a rate with thousands separators: 12,345.
func formatRate(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatBytes prints a size in MiB, or KiB below one MiB.
func formatBytes(n int64) string {
	if n < 1<<20 {
		return strconv.FormatInt((n+512)>>10, 10) + " KiB"
	}
	return strconv.FormatInt((n+1<<19)>>20, 10) + " MiB"
}

// formatMicros prints a duration given in microseconds with three
// significant digits: 12.3µs, 1.23ms.
func formatMicros(us float64) string {
	d := time.Duration(us * float64(time.Microsecond))
	switch {
	case d < time.Microsecond:
		return d.String()
	case d < time.Millisecond:
		return strconv.FormatFloat(us, 'f', decimals(us), 64) + "µs"
	case d < time.Second:
		ms := us / 1e3
		return strconv.FormatFloat(ms, 'f', decimals(ms), 64) + "ms"
	}
	s := us / 1e6
	return strconv.FormatFloat(s, 'f', decimals(s), 64) + "s"
}

// decimals is how many decimals give v three significant digits.
func decimals(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	}
	return 2
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// cpuModel is the first model name in /proc/cpuinfo; "" where there is none.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAverage is the 1, 5 and 15 minute load averages of /proc/loadavg;
// "" where there is none.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
