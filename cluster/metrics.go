package cluster

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ncruces/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/replication"
)

// metrics are a node's Prometheus metrics. Every metric carries the
// constant label node (the node id), so the collectors of several nodes can
// share one registry. The counters and histograms are updated where things
// happen; the gauges and the notification counters are read from the node
// at each scrape (Collect).
//
// A node owns a registry of its own (reg), never the global default one:
// nodes of one process do not collide, and importing hiqlite registers
// nothing.
type metrics struct {
	n   *Node
	reg *prometheus.Registry

	writes        *prometheus.CounterVec // outcome
	writeSeconds  prometheus.Histogram
	forwarded     *prometheus.CounterVec // kind
	txs           *prometheus.CounterVec // outcome
	busy          prometheus.Counter
	busySnapshot  prometheus.Counter
	ownWriteWaits prometheus.Counter
	applySeconds  prometheus.Histogram
	applyBatch    prometheus.Histogram
	snapSeconds   prometheus.Histogram
	snapBytes     prometheus.Histogram
	restores      prometheus.Counter
	cacheOps      *prometheus.CounterVec // op, outcome
	lockOps       *prometheus.CounterVec // op, outcome

	roleDesc, termDesc, commitDesc, appliedDesc, contactDesc *prometheus.Desc
	lagDesc, faultDesc, notifyDesc, dropDesc                 *prometheus.Desc
}

// roles are the values of hiqlite_raft_state's label.
var roles = []string{"leader", "follower", "candidate", "shutdown"}

func newMetrics(n *Node) *metrics {
	labels := prometheus.Labels{"node": n.id}
	counter := func(name, help string, vars ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, vars)
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: labels, Buckets: buckets})
	}
	desc := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, vars, labels)
	}
	latency := prometheus.ExponentialBuckets(0.0001, 2, 16) // 100 µs to 3.3 s
	m := &metrics{
		n:   n,
		reg: prometheus.NewRegistry(),

		writes: counter("hiqlite_writes_total",
			"Autocommit writes made on this node (forwarded ones included), by outcome: ok or error.", "outcome"),
		writeSeconds: histogram("hiqlite_write_duration_seconds",
			"Time from an autocommit write on this node to its result, forwarding and waiting for a leader included.", latency),
		forwarded: counter("hiqlite_forwarded_total",
			"Writes (kind write) and write transactions (kind transaction) this node forwarded to the leader.", "kind"),
		txs: counter("hiqlite_transactions_total",
			"Write transactions begun on this node, by outcome: commit, rollback, commit_error or begin_error.", "outcome"),
		busySnapshot: prometheus.NewCounter(prometheus.CounterOpts{Name: "hiqlite_busy_snapshot_total", ConstLabels: labels,
			Help: "Writes and transactions on this node refused with SQLITE_BUSY_SNAPSHOT (the database changed since the transaction's first read)."}),
		ownWriteWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "hiqlite_read_own_write_waits_total", ConstLabels: labels,
			Help: "Reads on this node that waited for a write this node acknowledged to be applied here (read your writes)."}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{Name: "hiqlite_busy_total", ConstLabels: labels,
			Help: "Writes and transactions on this node refused with SQLITE_BUSY (the write slot stayed taken for _busy)."}),
		applySeconds: histogram("hiqlite_apply_duration_seconds",
			"Time the state machine took to apply one batch of committed log entries.", latency),
		applyBatch: histogram("hiqlite_apply_batch_entries",
			"Log entries per batch the state machine applied.", prometheus.ExponentialBuckets(1, 2, 10)),
		snapSeconds: histogram("hiqlite_snapshot_duration_seconds",
			"Time to write one snapshot of the database.", prometheus.ExponentialBuckets(0.001, 4, 10)),
		snapBytes: histogram("hiqlite_snapshot_size_bytes",
			"Size of each snapshot written, compressed as stored.", prometheus.ExponentialBuckets(1024, 4, 12)),
		restores: prometheus.NewCounter(prometheus.CounterOpts{Name: "hiqlite_snapshot_restores_total", ConstLabels: labels,
			Help: "Snapshots this node restored (installed from the leader, or at start)."}),
		cacheOps: counter("hiqlite_cache_operations_total",
			"Cache operations on this node, by op (get, set, delete, compare-and-set, get-and-delete, clear) and outcome (hit or miss for get, ok or error for the others).", "op", "outcome"),
		lockOps: counter("hiqlite_lock_operations_total",
			"Lock operations on this node, by op (acquire, renew, release) and outcome (ok or error).", "op", "outcome"),

		roleDesc:    desc("hiqlite_raft_state", "1 for this node's Raft role (label state), 0 for the others.", "state"),
		termDesc:    desc("hiqlite_raft_term", "This node's current Raft term."),
		commitDesc:  desc("hiqlite_raft_commit_index", "The Raft commit index this node knows."),
		appliedDesc: desc("hiqlite_raft_applied_index", "Index of the last log entry applied to this node's database."),
		contactDesc: desc("hiqlite_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader; absent before any contact)."),
		lagDesc:     desc("hiqlite_follower_lag_entries", "On the leader: entries each member's applied index is behind the leader's, as of the member's last gossip.", "follower"),
		faultDesc:   desc("hiqlite_fault", "1 when this node stopped applying (its state machine or its Raft storage failed; see Node.Fault), else 0."),
		notifyDesc:  desc("hiqlite_notify_delivered_total", "Notifications handed to listeners on this node."),
		dropDesc:    desc("hiqlite_notify_dropped_total", "Notifications dropped on this node because a listener's buffer was full."),
	}
	// Every known series starts at 0, so that rates work from the first
	// event and a scrape shows what exists.
	for _, o := range []string{"ok", "error"} {
		m.writes.WithLabelValues(o)
		for _, op := range []extensions.Op{extensions.OpSet, extensions.OpDelete, extensions.OpCompareAndSet, extensions.OpGetAndDelete, extensions.OpClear} {
			m.cacheOps.WithLabelValues(op.String(), o)
		}
		for _, op := range []extensions.Op{extensions.OpAcquire, extensions.OpRenew, extensions.OpRelease} {
			m.lockOps.WithLabelValues(op.String(), o)
		}
	}
	m.cacheOps.WithLabelValues("get", "hit")
	m.cacheOps.WithLabelValues("get", "miss")
	m.forwarded.WithLabelValues("write")
	m.forwarded.WithLabelValues("transaction")
	for _, o := range []string{"commit", "rollback", "commit_error", "begin_error"} {
		m.txs.WithLabelValues(o)
	}
	m.reg.MustRegister(m)
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{m.roleDesc, m.termDesc, m.commitDesc, m.appliedDesc, m.contactDesc, m.lagDesc, m.faultDesc, m.notifyDesc, m.dropDesc} {
		ch <- d
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.writes, m.writeSeconds, m.forwarded, m.txs, m.busy, m.busySnapshot, m.ownWriteWaits,
		m.applySeconds, m.applyBatch, m.snapSeconds, m.snapBytes, m.restores, m.cacheOps, m.lockOps}
}

// Collect implements prometheus.Collector. It reads the node without
// blocking on the network.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	n := m.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := n.localState()
	for _, r := range roles {
		v := 0.0
		if r == st.Role {
			v = 1
		}
		gauge(m.roleDesc, v, r)
	}
	gauge(m.termDesc, float64(st.Term))
	gauge(m.commitDesc, float64(n.raft.CommitIndex()))
	gauge(m.appliedDesc, float64(st.AppliedIndex))
	if st.LastContact >= 0 {
		gauge(m.contactDesc, st.LastContact.Seconds())
	}
	if st.Role == "leader" {
		if ms, err := n.MemberStatuses(); err == nil {
			for _, s := range ms {
				if s.ID != n.id && s.Lag >= 0 {
					gauge(m.lagDesc, float64(s.Lag), s.ID)
				}
			}
		}
	}
	fault := 0.0
	if n.Fault() != nil || n.persistErr.Load() != nil {
		fault = 1
	}
	gauge(m.faultDesc, fault)
	delivered, dropped := n.hub.Stats()
	ch <- prometheus.MustNewConstMetric(m.notifyDesc, prometheus.CounterValue, float64(delivered))
	ch <- prometheus.MustNewConstMetric(m.dropDesc, prometheus.CounterValue, float64(dropped))
}

// Metrics is the node's collector of its Prometheus metrics (see
// metrics), to register in a registry of the caller's.
func (n *Node) Metrics() prometheus.Collector { return n.metrics }

// MetricsGatherer is the node's own registry, holding only its metrics.
func (n *Node) MetricsGatherer() prometheus.Gatherer { return n.metrics.reg }

// busyCounted counts err in the busy counters when it is one.
func (m *metrics) busyCounted(err error) {
	switch {
	case err == nil:
	case errors.Is(err, sqlite3.BUSY_SNAPSHOT):
		m.busySnapshot.Inc()
	case errors.Is(err, sqlite3.BUSY):
		m.busy.Inc()
	}
}

// observeWrite counts an autocommit write that took since start.
func (m *metrics) observeWrite(start time.Time, err error) {
	m.writeSeconds.Observe(time.Since(start).Seconds())
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.writes.WithLabelValues(outcome).Inc()
	m.busyCounted(err)
}

// observeExtension counts a cache or lock command.
func (m *metrics) observeExtension(op extensions.Op, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	switch op {
	case extensions.OpAcquire, extensions.OpRenew, extensions.OpRelease:
		m.lockOps.WithLabelValues(op.String(), outcome).Inc()
	case extensions.OpTick:
	default:
		m.cacheOps.WithLabelValues(op.String(), outcome).Inc()
	}
}

// CountCacheGet counts a local cache read, hit or miss.
func (n *Node) CountCacheGet(hit bool) {
	outcome := "miss"
	if hit {
		outcome = "hit"
	}
	n.metrics.cacheOps.WithLabelValues("get", outcome).Inc()
}

// meteredTx counts a transaction's outcome.
type meteredTx struct {
	Tx
	m    *metrics
	done atomic.Bool // an outcome was counted
}

func (t *meteredTx) Exec(ctx context.Context, st replication.Statement, readOnly bool) (replication.Result, error) {
	res, err := t.Tx.Exec(ctx, st, readOnly)
	t.m.busyCounted(err)
	return res, err
}

func (t *meteredTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	if t.done.CompareAndSwap(false, true) {
		outcome := "commit"
		if err != nil {
			outcome = "commit_error"
			t.m.busyCounted(err)
		}
		t.m.txs.WithLabelValues(outcome).Inc()
	}
	return err
}

func (t *meteredTx) Rollback() error {
	err := t.Tx.Rollback()
	if t.done.CompareAndSwap(false, true) {
		t.m.txs.WithLabelValues("rollback").Inc()
	}
	return err
}

// meteredFSM is the state machine as raft sees it: the apply batches and
// snapshots are timed and counted.
type meteredFSM struct {
	*replication.StateMachine
	m *metrics
}

var _ raft.BatchingFSM = meteredFSM{}

func (f meteredFSM) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	out := f.StateMachine.ApplyBatch(logs)
	f.m.applySeconds.Observe(time.Since(start).Seconds())
	f.m.applyBatch.Observe(float64(len(logs)))
	return out
}

func (f meteredFSM) Apply(l *raft.Log) any {
	start := time.Now()
	out := f.StateMachine.Apply(l)
	f.m.applySeconds.Observe(time.Since(start).Seconds())
	f.m.applyBatch.Observe(1)
	return out
}

func (f meteredFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.StateMachine.Snapshot()
	if err != nil {
		return nil, err
	}
	return meteredSnapshot{s, f.m}, nil
}

func (f meteredFSM) Restore(r io.ReadCloser) error {
	err := f.StateMachine.Restore(r)
	if err == nil {
		f.m.restores.Inc()
	}
	return err
}

type meteredSnapshot struct {
	raft.FSMSnapshot
	m *metrics
}

func (s meteredSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	c := &countingSink{SnapshotSink: sink}
	err := s.FSMSnapshot.Persist(c)
	if err == nil {
		s.m.snapSeconds.Observe(time.Since(start).Seconds())
		s.m.snapBytes.Observe(float64(c.n))
	}
	return err
}

// countingSink counts the bytes of a snapshot.
type countingSink struct {
	raft.SnapshotSink
	n int64
}

func (c *countingSink) Write(p []byte) (int, error) {
	k, err := c.SnapshotSink.Write(p)
	c.n += int64(k)
	return k, err
}
