package hiqlite

import (
	"errors"
	"fmt"
	"math"

	"github.com/ncruces/go-sqlite3"
)

// nodeStatus is what the SQL status functions read. It is implemented by
// the node handle.
//
// Its methods are called from SQLite callbacks, on whichever goroutine is
// running a query on a read connection, possibly on many connections at
// once: they must be safe for concurrent use and must not block on the
// network. statusNodes returns a fresh slice that the caller owns.
type nodeStatus interface {
	statusID() string
	statusLeaderID() string // "" when unknown
	statusIsLeader() bool
	statusAppliedIndex() uint64
	statusNodes() []nodeRow
}

// nodeRow is one row of the hiqlite_nodes table.
type nodeRow struct {
	NodeID, RaftAddr, GossipAddr string // "" -> NULL for the addresses
	Voter, IsLeader              bool
	State                        string // "leader", "follower", "candidate", "shutdown", "unknown"
	AppliedIndex                 int64  // -1 -> NULL
	LastContactMS                int64  // -1 -> NULL
	Term                         int64  // -1 -> NULL
	StateAgeMS                   int64  // -1 -> NULL
	Lag                          int64  // -1 -> NULL
}

// registerStatus installs the SQL view of the cluster on c:
//
//   - hiqlite_node_id() TEXT
//   - hiqlite_leader_id() TEXT, NULL when no leader is known
//   - hiqlite_is_leader() INTEGER 0 or 1
//   - hiqlite_applied_index() INTEGER
//   - hiqlite_nodes, an eponymous read-only table-valued virtual table with
//     columns node_id, raft_addr, gossip_addr, voter, state, is_leader,
//     applied_index, last_contact_ms, term, state_age_ms, lag (voter and
//     is_leader are 0 or 1). Another node's state, applied_index,
//     last_contact_ms and term are as it last gossiped them, state_age_ms
//     ago; lag is filled on the leader only.
//
// The functions take no arguments and are not DETERMINISTIC: their values
// change over time, so SQLite must call them on every evaluation. Each scan
// of hiqlite_nodes reads a fresh snapshot of s.
func registerStatus(c *sqlite3.Conn, s nodeStatus) error {
	if s == nil {
		return errors.New("hiqlite: register status: no node")
	}
	funcs := []struct {
		name string
		fn   sqlite3.ScalarFunction
	}{
		{"hiqlite_node_id", func(ctx sqlite3.Context, _ ...sqlite3.Value) {
			ctx.ResultText(s.statusID())
		}},
		{"hiqlite_leader_id", func(ctx sqlite3.Context, _ ...sqlite3.Value) {
			resultTextOrNull(ctx, s.statusLeaderID())
		}},
		{"hiqlite_is_leader", func(ctx sqlite3.Context, _ ...sqlite3.Value) {
			ctx.ResultBool(s.statusIsLeader())
		}},
		{"hiqlite_applied_index", func(ctx sqlite3.Context, _ ...sqlite3.Value) {
			i := s.statusAppliedIndex()
			if i > math.MaxInt64 {
				ctx.ResultError(fmt.Errorf("hiqlite: applied index %d overflows an SQLite integer:%.0w", i, sqlite3.MISMATCH))
				return
			}
			ctx.ResultInt64(int64(i))
		}},
	}
	for _, f := range funcs {
		if err := c.CreateFunction(f.name, 0, 0, f.fn); err != nil {
			return fmt.Errorf("hiqlite: register %s: %w", f.name, err)
		}
	}

	// A nil create constructor makes the module eponymous-only: it is
	// there as hiqlite_nodes and CREATE VIRTUAL TABLE cannot instantiate it.
	// The package function is used because the method form needs Go 1.27.
	err := sqlite3.CreateModule(c, "hiqlite_nodes", nil,
		func(db *sqlite3.Conn, _, _, _ string, _ ...string) (nodesTable, error) {
			err := db.DeclareVTab(`CREATE TABLE x(node_id TEXT, raft_addr TEXT, gossip_addr TEXT,
				voter INTEGER, state TEXT, is_leader INTEGER, applied_index INTEGER, last_contact_ms INTEGER,
				term INTEGER, state_age_ms INTEGER, lag INTEGER)`)
			return nodesTable{s}, err
		})
	if err != nil {
		return fmt.Errorf("hiqlite: register hiqlite_nodes: %w", err)
	}
	return nil
}

func resultTextOrNull(ctx sqlite3.Context, s string) {
	if s == "" {
		ctx.ResultNull()
		return
	}
	ctx.ResultText(s)
}

func resultIntOrNull(ctx sqlite3.Context, i int64) {
	if i < 0 {
		ctx.ResultNull()
		return
	}
	ctx.ResultInt64(i)
}

// Columns of hiqlite_nodes, in declaration order.
const (
	nodesColNodeID = iota
	nodesColRaftAddr
	nodesColGossipAddr
	nodesColVoter
	nodesColState
	nodesColIsLeader
	nodesColAppliedIndex
	nodesColLastContactMS
	nodesColTerm
	nodesColStateAgeMS
	nodesColLag
)

// nodesTable is the hiqlite_nodes virtual table. It implements no xUpdate,
// so SQLite rejects writes to it.
type nodesTable struct{ s nodeStatus }

var (
	_ sqlite3.VTab       = nodesTable{}
	_ sqlite3.VTabCursor = (*nodesCursor)(nil)
)

// BestIndex takes no constraints: the table is a handful of rows, so
// SQLite scans it and applies any WHERE clause itself.
func (nodesTable) BestIndex(idx *sqlite3.IndexInfo) error {
	idx.EstimatedCost = 10
	idx.EstimatedRows = 10
	return nil
}

func (t nodesTable) Open() (sqlite3.VTabCursor, error) {
	return &nodesCursor{s: t.s}, nil
}

// nodesCursor walks one snapshot of the membership, taken at Filter.
type nodesCursor struct {
	s    nodeStatus
	rows []nodeRow
	i    int
}

func (c *nodesCursor) Filter(int, string, ...sqlite3.Value) error {
	c.rows = c.s.statusNodes()
	c.i = 0
	return nil
}

func (c *nodesCursor) Next() error {
	c.i++
	return nil
}

func (c *nodesCursor) EOF() bool { return c.i >= len(c.rows) }

// RowID is one-based, like SQLite's own tables.
func (c *nodesCursor) RowID() (int64, error) { return int64(c.i) + 1, nil }

func (c *nodesCursor) Column(ctx sqlite3.Context, n int) error {
	r := &c.rows[c.i]
	switch n {
	case nodesColNodeID:
		ctx.ResultText(r.NodeID)
	case nodesColRaftAddr:
		resultTextOrNull(ctx, r.RaftAddr)
	case nodesColGossipAddr:
		resultTextOrNull(ctx, r.GossipAddr)
	case nodesColVoter:
		ctx.ResultBool(r.Voter)
	case nodesColState:
		state := r.State
		if state == "" {
			state = "unknown"
		}
		ctx.ResultText(state)
	case nodesColIsLeader:
		ctx.ResultBool(r.IsLeader)
	case nodesColAppliedIndex:
		resultIntOrNull(ctx, r.AppliedIndex)
	case nodesColLastContactMS:
		resultIntOrNull(ctx, r.LastContactMS)
	case nodesColTerm:
		resultIntOrNull(ctx, r.Term)
	case nodesColStateAgeMS:
		resultIntOrNull(ctx, r.StateAgeMS)
	case nodesColLag:
		resultIntOrNull(ctx, r.Lag)
	}
	return nil
}
