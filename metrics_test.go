package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// scrape fetches h's metrics as a Prometheus server would and parses them.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// metricValue returns the value of the series of name whose labels include
// want (label=value pairs), and whether there is one.
func metricValue(mfs map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestClusterMetrics: the metrics users watch, scraped from each node of a
// three-node cluster after some writes, reads, cache and lock operations.
func TestClusterMetrics(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	f := c.Follower()
	lead, fol := c.Members[l], c.Members[f]
	ctx := context.Background()

	before := scrape(t, lead.Node.MetricsHandler())
	writesBefore, _ := metricValue(before, "hiqlite_writes_total", "outcome", "ok")

	const writes = 20
	mustExec(t, lead.DB, `CREATE TABLE m(id INTEGER PRIMARY KEY, v TEXT)`)
	for i := range writes {
		db := lead.DB
		if i%2 == 1 {
			db = fol.DB
		}
		mustExec(t, db, `INSERT INTO m(v) VALUES (?)`, fmt.Sprint(i))
	}
	if n := count(t, fol.DB, `SELECT count(*) FROM m`); n != writes {
		t.Fatalf("follower reads %d rows, want %d", n, writes)
	}
	tx, err := fol.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO m(v) VALUES ('tx')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	cache := fol.Node.Cache("metrics")
	if err := cache.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	cache.Get("k")
	cache.Get("absent")
	lease, err := fol.Node.Lock(ctx, "metrics-lock", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lead.Node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.EnsureSame()
	applied := lead.Node.AppliedIndex()

	// Exactly one node reports itself leader (polled: a loaded machine may
	// hold an election meanwhile), and each node's applied index is at least
	// the writes'.
	var leaders int
	c.WaitFor("one node reporting hiqlite_raft_state{state=leader} 1", 30*time.Second, func() bool {
		leaders = 0
		for _, i := range c.Alive() {
			m := c.Members[i]
			v, ok := metricValue(scrape(t, m.Node.MetricsHandler()), "hiqlite_raft_state", "node", m.ID, "state", "leader")
			if !ok {
				t.Fatalf("%s: no hiqlite_raft_state{state=leader}", m.ID)
			}
			leaders += int(v)
		}
		return leaders == 1
	})
	for _, i := range c.Alive() {
		m := c.Members[i]
		mfs := scrape(t, m.Node.MetricsHandler())
		if got, _ := metricValue(mfs, "hiqlite_raft_applied_index", "node", m.ID); got < float64(applied) || got < writes {
			t.Errorf("%s: hiqlite_raft_applied_index %v, want >= %d", m.ID, got, applied)
		}
		if got, _ := metricValue(mfs, "hiqlite_raft_term"); got < 1 {
			t.Errorf("%s: hiqlite_raft_term %v", m.ID, got)
		}
		if got, _ := metricValue(mfs, "hiqlite_fault"); got != 0 {
			t.Errorf("%s: hiqlite_fault %v", m.ID, got)
		}
		if got, _ := metricValue(mfs, "hiqlite_apply_batch_entries"); got == 0 {
			t.Errorf("%s: no apply batch observed", m.ID)
		}
	}
	lm := scrape(t, lead.Node.MetricsHandler())
	if got, _ := metricValue(lm, "hiqlite_writes_total", "outcome", "ok"); got < writesBefore+writes/2 {
		t.Errorf("leader: hiqlite_writes_total{outcome=ok} %v, want >= %v", got, writesBefore+writes/2)
	}
	if got, _ := metricValue(lm, "hiqlite_snapshot_duration_seconds"); got < 1 {
		t.Errorf("leader: %v snapshots timed after Snapshot, want >= 1", got)
	}
	if sum := lm["hiqlite_snapshot_size_bytes"].GetMetric()[0].GetHistogram().GetSampleSum(); sum <= 0 {
		t.Errorf("leader: snapshot sizes add up to %v bytes, want some (compressed) bytes", sum)
	}
	fm := scrape(t, fol.Node.MetricsHandler())
	for _, want := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"hiqlite_writes_total", []string{"outcome", "ok"}, writes / 2},
		{"hiqlite_write_duration_seconds", nil, writes / 2},
		{"hiqlite_forwarded_total", []string{"kind", "write"}, writes / 2},
		{"hiqlite_forwarded_total", []string{"kind", "transaction"}, 1},
		{"hiqlite_transactions_total", []string{"outcome", "commit"}, 1},
		{"hiqlite_cache_operations_total", []string{"op", "set", "outcome", "ok"}, 1},
		{"hiqlite_cache_operations_total", []string{"op", "get", "outcome", "hit"}, 1},
		{"hiqlite_cache_operations_total", []string{"op", "get", "outcome", "miss"}, 1},
		{"hiqlite_lock_operations_total", []string{"op", "acquire", "outcome", "ok"}, 1},
		{"hiqlite_lock_operations_total", []string{"op", "release", "outcome", "ok"}, 1},
	} {
		if got, ok := metricValue(fm, want.name, want.labels...); !ok || got < want.min {
			t.Errorf("follower: %s%v = %v (present %v), want >= %v", want.name, want.labels, got, ok, want.min)
		}
	}

	// The leader reports each follower's lag once the followers' state has
	// come by gossip.
	c.WaitFor("the leader's lag of every follower", 30*time.Second, func() bool {
		mfs := scrape(t, lead.Node.MetricsHandler())
		for _, i := range c.Alive() {
			if i == l {
				continue
			}
			if _, ok := metricValue(mfs, "hiqlite_follower_lag_entries", "follower", c.Members[i].ID); !ok {
				return false
			}
		}
		return true
	})
	if _, ok := metricValue(fm, "hiqlite_follower_lag_entries"); ok {
		t.Error("a follower reports hiqlite_follower_lag_entries")
	}

	// The collectors of several nodes share one registry.
	reg := prometheus.NewRegistry()
	for _, i := range c.Alive() {
		if err := reg.Register(c.Members[i].Node.Metrics()); err != nil {
			t.Fatalf("register %s's collector: %v", c.Members[i].ID, err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "hiqlite_raft_term" && len(mf.GetMetric()) != 3 {
			t.Errorf("shared registry: %d series of hiqlite_raft_term, want 3", len(mf.GetMetric()))
		}
	}
}

// nodesRow is one row of hiqlite_nodes.
type nodesRow struct {
	id, raftAddr, gossipAddr, state  sql.NullString
	voter, isLeader                  bool
	applied, contact, term, age, lag sql.NullInt64
}

func readNodes(t *testing.T, db *sql.DB) []nodesRow {
	t.Helper()
	rows, err := db.Query(`SELECT node_id, raft_addr, gossip_addr, voter, state, is_leader, applied_index, last_contact_ms, term, state_age_ms, lag FROM hiqlite_nodes`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []nodesRow
	for rows.Next() {
		var r nodesRow
		if err := rows.Scan(&r.id, &r.raftAddr, &r.gossipAddr, &r.voter, &r.state, &r.isLeader, &r.applied, &r.contact, &r.term, &r.age, &r.lag); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClusterNodesGossip: on every node, hiqlite_nodes fills every column
// of every member from gossip: the applied index reaches the writes, the
// leader's row says leader, and only the leader reports lag.
func TestClusterNodesGossip(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE g(x)`)
	mustExec(t, c.Members[l].DB, `INSERT INTO g VALUES (1)`)
	c.EnsureSame()
	want := int64(c.Members[l].Node.AppliedIndex())

	for _, i := range c.Alive() {
		m := c.Members[i]
		var rows []nodesRow
		// Polled until the gossiped roles agree with Raft's leader: a
		// loaded machine may hold an election meanwhile.
		c.WaitFor(m.ID+": every column of every member in hiqlite_nodes", 30*time.Second, func() bool {
			rows = readNodes(t, m.DB)
			if len(rows) != 3 {
				return false
			}
			leaders := 0
			for _, r := range rows {
				wantState := "follower"
				if r.isLeader {
					wantState = "leader"
					leaders++
				}
				if !r.raftAddr.Valid || !r.gossipAddr.Valid || !r.state.Valid || !r.contact.Valid || !r.term.Valid || !r.age.Valid ||
					!r.applied.Valid || r.applied.Int64 < want || r.state.String != wantState || r.lag.Valid != m.Node.IsLeader() {
					return false
				}
			}
			return leaders == 1
		})
		for _, r := range rows {
			if !r.voter {
				t.Errorf("%s sees %s as a non-voter", m.ID, r.id.String)
			}
			if r.term.Int64 < 1 || r.age.Int64 < 0 || r.contact.Int64 < 0 {
				t.Errorf("%s sees %s with term %d, state age %d ms, last contact %d ms", m.ID, r.id.String, r.term.Int64, r.age.Int64, r.contact.Int64)
			}
			if r.id.String == m.ID && r.age.Int64 != 0 {
				t.Errorf("%s: its own row is %d ms old, want 0", m.ID, r.age.Int64)
			}
			if r.lag.Valid && r.lag.Int64 < 0 {
				t.Errorf("leader %s: lag of %s is %d", m.ID, r.id.String, r.lag.Int64)
			}
		}
	}
}

// TestMetricsBusy: writes refused with SQLITE_BUSY and SQLITE_BUSY_SNAPSHOT
// are counted apart, with the transactions' outcomes.
func TestMetricsBusy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := openDir(t, dir)
	impatient := openDir(t, dir, "_busy=100ms")
	mustExec(t, db, `CREATE TABLE b(x); INSERT INTO b VALUES (0)`)

	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	count(t, tx, `SELECT count(*) FROM b`)
	mustExec(t, db, `INSERT INTO b VALUES (1)`)
	if _, err := tx.Exec(`INSERT INTO b VALUES (2)`); !errors.Is(err, sqlite3.BUSY_SNAPSHOT) {
		t.Fatalf("write after a concurrent commit: %v, want BUSY_SNAPSHOT", err)
	}
	tx.Rollback()

	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO b VALUES (3)`)
	if _, err := impatient.Exec(`INSERT INTO b VALUES (4)`); !errors.Is(err, sqlite3.BUSY) {
		t.Fatalf("write during a write transaction: %v, want BUSY", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	node, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	mfs := scrape(t, node.MetricsHandler())
	for _, want := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"hiqlite_busy_total", nil, 1},
		{"hiqlite_busy_snapshot_total", nil, 1},
		{"hiqlite_transactions_total", []string{"outcome", "commit"}, 1},
		{"hiqlite_transactions_total", []string{"outcome", "begin_error"}, 1},
		{"hiqlite_writes_total", []string{"outcome", "error"}, 1},
		{"hiqlite_writes_total", []string{"outcome", "ok"}, 2},
	} {
		if got, _ := metricValue(mfs, want.name, want.labels...); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
}
