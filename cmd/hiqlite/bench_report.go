package main

// The report of hiqlite bench: what --json writes, the two tables, and
// the machine it ran on.

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// benchReport is what a run found; its JSON form is what --json writes.
type benchReport struct {
	Started  time.Time   `json:"started"`
	Machine  machine     `json:"machine"`
	Settings settings    `json:"settings"`
	Rows     []*benchRow `json:"rows"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
	Go        string `json:"go"`
	LoadStart string `json:"load_start,omitempty"` // /proc/loadavg: 1, 5, 15 minutes
	LoadEnd   string `json:"load_end,omitempty"`
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
}

// benchRow is a scenario's figures: hiqlite's and its baselines', by
// system id, and hiqlite's rate divided by each baseline's.
type benchRow struct {
	ID      string                  `json:"id"`
	Title   string                  `json:"title"`
	Unit    string                  `json:"unit"`
	Workers int                     `json:"workers"`
	Results map[string]*measurement `json:"results"`
	Ratios  map[string]float64      `json:"ratios,omitempty"`
	Target  *targetResult           `json:"target,omitempty"`
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
	Note      string  `json:"note,omitempty"`
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

// print writes the two tables: rates with ratios and targets, then
// latencies.
func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nhiqlite bench, %s: %d CPUs (%s), %s, %s\n", r.Started.Format(time.RFC3339), r.Machine.CPUs,
		orUnknown(r.Machine.Model), r.Machine.OS, r.Machine.Go)
	fmt.Fprintf(w, "load average (1, 5, 15 min): %s at the start, %s at the end\n", orUnknown(r.Machine.LoadStart), orUnknown(r.Machine.LoadEnd))
	fmt.Fprintf(w, "each measurement: at most %s and %d operations, in %d rounds taking turns with its baselines; rate: the rounds' median\n\n",
		r.Settings.Duration, r.Settings.Ops, r.Settings.Rounds)

	header := []string{"scenario", "unit", "hiqlite"}
	for _, sys := range systemIDs[1:] {
		header = append(header, systemTitles[sys], "ratio")
	}
	header = append(header, "target", "met")
	var cells [][]string
	for _, row := range r.Rows {
		line := []string{row.Title, row.Unit, rateCell(row.Results[sysHiqlite])}
		for _, sys := range systemIDs[1:] {
			ratio := "-"
			if v, ok := row.Ratios[sys]; ok {
				ratio = strconv.FormatFloat(v, 'f', 2, 64)
			}
			line = append(line, rateCell(row.Results[sys]), ratio)
		}
		target, met := "-", "-"
		if t := row.Target; t != nil {
			target, met = t.Text, "?"
			if t.Met != nil {
				met = "no"
				if *t.Met {
					met = "yes"
				}
			}
		}
		cells = append(cells, append(line, target, met))
	}
	printAligned(w, "", "llrrrrrrrll", header, cells)

	fmt.Fprintln(w, "\nper operation (a transaction is one): latency p50 / p99 / CPU time the process used (all nodes):")
	header = []string{"scenario"}
	for _, sys := range systemIDs {
		header = append(header, systemTitles[sys])
	}
	cells = nil
	for _, row := range r.Rows {
		line := []string{row.Title}
		for _, sys := range systemIDs {
			c := "-"
			if m := row.Results[sys]; m != nil {
				c = formatMicros(m.P50Micros) + " / " + formatMicros(m.P99Micros) + " / " + formatMicros(m.CPUMicros)
			}
			line = append(line, c)
		}
		cells = append(cells, line)
	}
	printAligned(w, "", "lrrrr", header, cells)

	fmt.Fprintln(w, "\nratio: hiqlite's rate divided by the baseline's. hiqlite: 3 nodes on 127.0.0.1, every write fsynced")
	fmt.Fprintln(w, "by a majority; reads local on a follower. SQLite FULL and NORMAL: plain ncruces/go-sqlite3/driver,")
	fmt.Fprintln(w, "one file, WAL, synchronous=FULL (durable) or NORMAL (no fsync per commit).")
	if r.Settings.RaftEntrySize > 0 {
		fmt.Fprintln(w, "bare Raft: hashicorp/raft with hiqlite's log store and transport, a no-op state machine,")
		fmt.Fprintf(w, "entries of %d bytes (a hiqlite INSERT).\n", r.Settings.RaftEntrySize)
	}
	fmt.Fprintln(w, "A follower row's baselines are the leader row's with as many writers.")
	for _, row := range r.Rows {
		if m := row.Results[sysHiqlite]; m != nil && m.Note != "" {
			fmt.Fprintf(w, "%s: %s.\n", row.Title, m.Note)
		}
	}
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
