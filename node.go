package hiqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/cluster"
	"github.com/hiqlite/hiqlite/replication"
)

// Node is the handle of the hiqlite node a *sql.DB uses. Get it with NodeOf
// or Connector.Node. All methods are safe for concurrent use.
type Node struct {
	c   *cluster.Node
	dir string
	// connInit is Config.ConnInit of the connector that started the
	// node: every connection of the node runs it, the writer and the
	// read connections of every connector sharing the node.
	connInit func(*sqlite3.Conn) error
	// refs counts the connectors sharing the node; guarded by registry.mu.
	refs int
	// backupDest and backupKeyFile are the DSN's _backup and
	// _backup_key_file: Backup's defaults. backups is their schedule (nil
	// without _backup).
	backupDest, backupKeyFile string
	backups                   *backupSchedule
	// clientSessions counts the remote clients' sessions it serves.
	clientSessions atomic.Int64
}

// registry: the nodes this process runs, by absolute DATA_DIR: the
// same DATA_DIR opened twice in one process shares one node.
var registry = struct {
	mu    sync.Mutex
	nodes map[string]*Node
}{nodes: map[string]*Node{}}

// acquireNode returns the running node of cfg.DataDir with one more
// reference, or starts it. An in-memory node is never shared: it is not in
// the registry.
func acquireNode(cfg *Config) (*Node, error) {
	if cfg.inMemory() {
		return startNode(cfg, MemoryDir, nil)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: data dir %q: %w", cfg.DataDir, err)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if n := registry.nodes[dir]; n != nil {
		if cfg.NodeID != "" && cfg.NodeID != n.ID() {
			return nil, fmt.Errorf("hiqlite: data dir %s is already open in this process as node %q, not _node=%q", dir, n.ID(), cfg.NodeID)
		}
		n.refs++
		return n, nil
	}
	if err := cluster.MakePrivateDir(dir); err != nil {
		return nil, fmt.Errorf("hiqlite: create data dir: %w", err)
	}
	secret, err := cfg.loadSecret()
	if err != nil {
		return nil, err
	}
	n, err := startNode(cfg, dir, secret)
	if err != nil {
		return nil, err
	}
	registry.nodes[dir] = n
	return n, nil
}

// startNode starts the node of cfg in dir, with one reference.
func startNode(cfg *Config, dir string, secret []byte) (*Node, error) {
	cn, err := cluster.Open(cfg.clusterConfig(dir, secret))
	if err != nil {
		return nil, err
	}
	n := &Node{c: cn, dir: dir, refs: 1, connInit: cfg.ConnInit, backupDest: cfg.Backup, backupKeyFile: cfg.BackupKeyFile}
	if err := n.startBackups(cfg); err != nil {
		return nil, errors.Join(err, cn.Close())
	}
	// Remote clients' sessions run as connections of this node, with the
	// settings (_busy, _txidle, _txlock, _foreign_keys) of the Config
	// that started it.
	scfg := *cfg
	scfg.Join = append([]string(nil), cfg.Join...)
	cn.ServeClients(func(ctx context.Context, c net.Conn) { n.serveClient(ctx, &scfg, c) })
	return n, nil
}

// clusterConfig is the node's configuration for c, in dir, with the
// cluster secret secret: the one place a Config becomes a cluster.Config.
// Validate has checked c; cluster.Open checks the result again.
func (c *Config) clusterConfig(dir string, secret []byte) cluster.Config {
	cc := cluster.DefaultConfig()
	cc.Dir = dir
	cc.ID = c.NodeID
	cc.Timeout = c.Timeout
	cc.SnapshotThreshold = c.SnapshotEntries
	cc.SnapshotBytes = c.SnapshotBytes
	cc.SegmentSize = int(c.LogSegment)
	cc.InMemory = c.inMemory()
	cc.ConnInit = replication.ConnInit(c.ConnInit)

	cc.Listen = c.Listen
	cc.Advertise = c.Advertise
	cc.Gossip = c.Gossip
	cc.Join = c.Join
	cc.Expect = c.Expect
	cc.Voter = c.Voter
	cc.Secret = secret
	cc.ReapTimeout = c.Reap
	cc.TLS = c.TLS
	cc.TLSCert, cc.TLSKey, cc.TLSCA = c.TLSCert, c.TLSKey, c.TLSCA
	cc.Logger = c.Logger
	return cc
}

// release drops one reference; the last one stops the node.
func (n *Node) release() error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	n.refs--
	if n.refs > 0 {
		return nil
	}
	if registry.nodes[n.dir] == n {
		delete(registry.nodes, n.dir)
	}
	n.backups.close()
	return n.c.Close()
}

// Member is one server of the cluster's Raft configuration, as
// Node.Members lists them.
type Member struct {
	// ID is the node's id (its Config.NodeID).
	ID string
	// Address is the node's Raft address, host:port.
	Address string
	// Voter is false for a non-voting read replica (_voter=false).
	Voter bool
	// IsLeader is true for the member this node knows as the leader.
	IsLeader bool
}

// NodeOf returns the node behind db, which must have been opened with the
// hiqlite driver.
func NodeOf(ctx context.Context, db *sql.DB) (*Node, error) {
	sc, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	var n *Node
	err = sc.Raw(func(dc any) error {
		c, ok := dc.(*conn)
		if _, remote := dc.(*remoteConn); remote {
			return errors.New("hiqlite: NodeOf: the *sql.DB is a remote client's (hiqlite://...), which runs no node; use ClientOf for its extensions")
		}
		if !ok {
			return fmt.Errorf("hiqlite: NodeOf: the *sql.DB uses driver connection %T, not hiqlite's", dc)
		}
		n = c.node
		return nil
	})
	return n, err
}

// ID is the node's id (the DSN's _node, or the one generated for its
// DATA_DIR).
func (n *Node) ID() string { return n.c.ID() }

// IsLeader reports whether this node is the Raft leader.
func (n *Node) IsLeader() bool { return n.c.IsLeader() }

// Leader returns the leader's id and Raft address; both empty while there is
// no leader.
func (n *Node) Leader() (id, addr string) { return n.c.Leader() }

// CacheLeader returns the id and Raft address of the node that leads the
// cache group (caches, locks), which may differ from the leader of the
// database; both empty while unknown. Cache writes on any other node are
// forwarded to it.
func (n *Node) CacheLeader() (id, addr string) { return n.c.CacheLeader() }

// AppliedIndex is the Raft index of the last write in the local database.
func (n *Node) AppliedIndex() uint64 { return n.c.AppliedIndex() }

// WaitReady blocks until the cluster has a leader and this node has applied
// everything committed before, or ctx ends. It is optional: writes,
// transactions and linearizable reads wait for a leader themselves (up to
// their context's deadline or _timeout).
func (n *Node) WaitReady(ctx context.Context) error { return n.c.WaitReady(ctx) }

// Members lists the servers of the cluster.
func (n *Node) Members() ([]Member, error) {
	cms, err := n.c.Members()
	if err != nil {
		return nil, err
	}
	ms := make([]Member, len(cms))
	for i, m := range cms {
		ms[i] = Member(m)
	}
	return ms, nil
}

// Leave takes this node out of the cluster for good, to decommission it:
// a leader first hands leadership to another voter, then the node tells
// the others through gossip, and the leader removes it from the cluster's
// configuration when it hears of it (in about a gossip round). Leave
// returns once the departure is announced; it does not wait for the
// removal, which the node itself may never learn of. Close the node
// afterwards: until then it still serves local reads, but its writes have
// no cluster to go to. A node started again from the same DATA_DIR is
// added back like any new one. The cluster's only voter cannot leave, nor
// can a node without _gossip.
func (n *Node) Leave(ctx context.Context) error { return n.c.Leave(ctx) }

// Fault returns the error that stopped this node's state machine, or nil.
// A stopped node serves reads of the state it reached but applies nothing
// more until it is restarted. A fault that says the database is corrupt
// (errors.Is(err, sqlite3.CORRUPT) or sqlite3.NOTADB) is healed by that
// restart: the database is moved aside and rebuilt.
func (n *Node) Fault() error { return n.c.Fault() }

// DataDir is the node's absolute data directory.
func (n *Node) DataDir() string { return n.dir }

// Snapshot takes a Raft snapshot of the database now and compacts the log.
func (n *Node) Snapshot() error { return n.c.Snapshot() }

// statusID and friends implement nodeStatus for the SQL status functions.
func (n *Node) statusID() string { return n.c.ID() }

func (n *Node) statusLeaderID() string {
	id, _ := n.c.Leader()
	return id
}

func (n *Node) statusIsLeader() bool { return n.c.IsLeader() }

func (n *Node) statusAppliedIndex() uint64 { return n.c.AppliedIndex() }

func (n *Node) statusNodes() []nodeRow {
	ms, err := n.c.MemberStatuses()
	if err != nil && !errors.Is(err, ErrClosed) {
		return nil
	}
	rows := make([]nodeRow, 0, len(ms))
	for _, m := range ms {
		r := nodeRow{NodeID: m.ID, RaftAddr: m.Address, GossipAddr: m.GossipAddr, Voter: m.Voter, IsLeader: m.IsLeader,
			State: m.Role, AppliedIndex: -1, LastContactMS: -1, Term: -1, StateAgeMS: -1, Lag: m.Lag}
		if m.Age >= 0 {
			r.AppliedIndex = int64(min(m.AppliedIndex, math.MaxInt64))
			r.Term = int64(min(m.Term, math.MaxInt64))
			r.StateAgeMS = m.Age.Milliseconds()
			if m.LastContact >= 0 {
				r.LastContactMS = m.LastContact.Milliseconds()
			}
		}
		rows = append(rows, r)
	}
	return rows
}
