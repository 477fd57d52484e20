package hiqlite

import (
	"reflect"
	"sync"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// fakeStatus is a nodeStatus whose answers the test sets.
type fakeStatus struct {
	mu       sync.Mutex
	id       string
	leaderID string
	isLeader bool
	applied  uint64
	nodes    []nodeRow
}

func (f *fakeStatus) statusID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id
}

func (f *fakeStatus) statusLeaderID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaderID
}

func (f *fakeStatus) statusIsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isLeader
}

func (f *fakeStatus) statusAppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *fakeStatus) statusNodes() []nodeRow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]nodeRow(nil), f.nodes...)
}

func (f *fakeStatus) set(fn func(f *fakeStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func threeNodes() []nodeRow {
	return []nodeRow{
		{NodeID: "a", RaftAddr: "10.0.0.1:7000", GossipAddr: "10.0.0.1:7946", Voter: true, IsLeader: true,
			State: "leader", AppliedIndex: 42, LastContactMS: 0, Term: 3, StateAgeMS: 0, Lag: 0},
		{NodeID: "b", RaftAddr: "10.0.0.2:7000", Voter: true,
			State: "follower", AppliedIndex: 40, LastContactMS: 15, Term: 3, StateAgeMS: 250, Lag: 2},
		{NodeID: "c", Voter: false,
			State: "unknown", AppliedIndex: -1, LastContactMS: -1, Term: -1, StateAgeMS: -1, Lag: -1},
	}
}

// openStatus returns an in-memory connection with the status SQL of s.
func openStatus(t *testing.T, s nodeStatus) *sqlite3.Conn {
	t.Helper()
	c, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := registerStatus(c, s); err != nil {
		t.Fatal(err)
	}
	return c
}

// queryAll runs query and returns its rows, with NULL as nil, INTEGER as
// int64 and TEXT as string.
func queryAll(t *testing.T, c *sqlite3.Conn, query string) [][]any {
	t.Helper()
	stmt, _, err := c.Prepare(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer stmt.Close()
	return stepAll(t, stmt)
}

func stepAll(t *testing.T, stmt *sqlite3.Stmt) [][]any {
	t.Helper()
	rows := [][]any{}
	for stmt.Step() {
		row := make([]any, stmt.ColumnCount())
		for i := range row {
			switch typ := stmt.ColumnType(i); typ {
			case sqlite3.NULL:
				row[i] = nil
			case sqlite3.INTEGER:
				row[i] = stmt.ColumnInt64(i)
			case sqlite3.TEXT:
				row[i] = stmt.ColumnText(i)
			default:
				t.Fatalf("column %d: unexpected type %v", i, typ)
			}
		}
		rows = append(rows, row)
	}
	if err := stmt.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestStatusFunctions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status *fakeStatus
		want   []any
	}{
		{"leader", &fakeStatus{id: "a", leaderID: "a", isLeader: true, applied: 42},
			[]any{"a", "a", int64(1), int64(42)}},
		{"follower", &fakeStatus{id: "b", leaderID: "a", applied: 7},
			[]any{"b", "a", int64(0), int64(7)}},
		{"no leader", &fakeStatus{id: "c"},
			[]any{"c", nil, int64(0), int64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := openStatus(t, tt.status)
			got := queryAll(t, c, `SELECT hiqlite_node_id(), hiqlite_leader_id(), hiqlite_is_leader(), hiqlite_applied_index()`)
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("got %v, want [%v]", got, tt.want)
			}
		})
	}
}

func TestStatusFunctionsTakeNoArguments(t *testing.T) {
	t.Parallel()
	c := openStatus(t, &fakeStatus{id: "a"})
	for _, q := range []string{
		`SELECT hiqlite_node_id(1)`,
		`SELECT hiqlite_leader_id(1)`,
		`SELECT hiqlite_is_leader(1)`,
		`SELECT hiqlite_applied_index(1)`,
	} {
		stmt, _, err := c.Prepare(q)
		if err == nil {
			stmt.Close()
			t.Errorf("%s: want an error", q)
		}
	}
}

func TestStatusNodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query string
		want  [][]any
	}{
		{"all rows", `SELECT * FROM hiqlite_nodes`, [][]any{
			{"a", "10.0.0.1:7000", "10.0.0.1:7946", int64(1), "leader", int64(1), int64(42), int64(0), int64(3), int64(0), int64(0)},
			{"b", "10.0.0.2:7000", nil, int64(1), "follower", int64(0), int64(40), int64(15), int64(3), int64(250), int64(2)},
			{"c", nil, nil, int64(0), "unknown", int64(0), nil, nil, nil, nil, nil},
		}},
		{"leader", `SELECT node_id FROM hiqlite_nodes WHERE is_leader`, [][]any{{"a"}}},
		{"voters", `SELECT node_id FROM hiqlite_nodes WHERE voter ORDER BY node_id DESC`, [][]any{{"b"}, {"a"}}},
		{"by id", `SELECT state FROM hiqlite_nodes WHERE node_id = 'b'`, [][]any{{"follower"}}},
		{"null address", `SELECT node_id FROM hiqlite_nodes WHERE gossip_addr IS NULL`, [][]any{{"b"}, {"c"}}},
		{"count", `SELECT count(*) FROM hiqlite_nodes`, [][]any{{int64(3)}}},
		{"rowid", `SELECT rowid FROM hiqlite_nodes`, [][]any{{int64(1)}, {int64(2)}, {int64(3)}}},
		{"join with functions", `SELECT node_id = hiqlite_node_id() FROM hiqlite_nodes WHERE is_leader`, [][]any{{int64(1)}}},
	}
	c := openStatus(t, &fakeStatus{id: "a", leaderID: "a", isLeader: true, applied: 42, nodes: threeNodes()})
	for _, tt := range tests {
		// Subtests share c, which is not safe for concurrent use.
		t.Run(tt.name, func(t *testing.T) {
			if got := queryAll(t, c, tt.query); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s:\n got %v\nwant %v", tt.query, got, tt.want)
			}
		})
	}
}

func TestStatusNodesEmpty(t *testing.T) {
	t.Parallel()
	c := openStatus(t, &fakeStatus{id: "a"})
	if got := queryAll(t, c, `SELECT * FROM hiqlite_nodes`); len(got) != 0 {
		t.Errorf("rows = %v, want none", got)
	}
	if got := queryAll(t, c, `SELECT count(*) FROM hiqlite_nodes`); !reflect.DeepEqual(got, [][]any{{int64(0)}}) {
		t.Errorf("count = %v, want 0", got)
	}
}

func TestStatusSeesChanges(t *testing.T) {
	t.Parallel()
	f := &fakeStatus{id: "b", leaderID: "a", applied: 1, nodes: threeNodes()}
	c := openStatus(t, f)

	// One prepared statement, stepped twice: the functions are not
	// DETERMINISTIC, so nothing is cached between executions.
	stmt, _, err := c.Prepare(`SELECT hiqlite_leader_id(), hiqlite_is_leader(), hiqlite_applied_index(),
		(SELECT group_concat(node_id) FROM hiqlite_nodes WHERE is_leader)`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()

	want := [][]any{{"a", int64(0), int64(1), "a"}}
	if got := stepAll(t, stmt); !reflect.DeepEqual(got, want) {
		t.Fatalf("before: got %v, want %v", got, want)
	}

	f.set(func(f *fakeStatus) {
		f.leaderID, f.isLeader, f.applied = "b", true, 2
		f.nodes[0].IsLeader, f.nodes[0].State = false, "follower"
		f.nodes[1].IsLeader, f.nodes[1].State = true, "leader"
		f.nodes = append(f.nodes, nodeRow{NodeID: "d", State: "unknown", AppliedIndex: -1, LastContactMS: -1})
	})
	if err := stmt.Reset(); err != nil {
		t.Fatal(err)
	}
	want = [][]any{{"b", int64(1), int64(2), "b"}}
	if got := stepAll(t, stmt); !reflect.DeepEqual(got, want) {
		t.Errorf("after: got %v, want %v", got, want)
	}
	if got := queryAll(t, c, `SELECT count(*) FROM hiqlite_nodes`); !reflect.DeepEqual(got, [][]any{{int64(4)}}) {
		t.Errorf("count after = %v, want 4", got)
	}

	f.set(func(f *fakeStatus) { f.leaderID = "" })
	if got := queryAll(t, c, `SELECT hiqlite_leader_id() IS NULL`); !reflect.DeepEqual(got, [][]any{{int64(1)}}) {
		t.Errorf("leader lost: got %v, want NULL", got)
	}
}

// A snapshot is taken per scan, so a self-join sees each row once per side.
func TestStatusNodesSelfJoin(t *testing.T) {
	t.Parallel()
	c := openStatus(t, &fakeStatus{id: "a", nodes: threeNodes()})
	got := queryAll(t, c, `SELECT count(*) FROM hiqlite_nodes x JOIN hiqlite_nodes y`)
	if !reflect.DeepEqual(got, [][]any{{int64(9)}}) {
		t.Errorf("self-join count = %v, want 9", got)
	}
}

func TestStatusNodesReadOnly(t *testing.T) {
	t.Parallel()
	c := openStatus(t, &fakeStatus{id: "a", nodes: threeNodes()})
	for _, q := range []string{
		`INSERT INTO hiqlite_nodes(node_id) VALUES ('x')`,
		`UPDATE hiqlite_nodes SET state = 'leader'`,
		`DELETE FROM hiqlite_nodes`,
		`CREATE VIRTUAL TABLE n2 USING hiqlite_nodes`,
	} {
		if err := c.Exec(q); err == nil {
			t.Errorf("%s: want an error", q)
		}
	}
	if got := queryAll(t, c, `SELECT count(*) FROM hiqlite_nodes`); !reflect.DeepEqual(got, [][]any{{int64(3)}}) {
		t.Errorf("count = %v, want 3", got)
	}
}

func TestRegisterStatusNil(t *testing.T) {
	t.Parallel()
	c, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := registerStatus(c, nil); err == nil {
		t.Error("registerStatus(nil) succeeded")
	}
}
