package hiqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/hiqlite/hiqlite/cluster"
)

// Connector opens connections to one node. Use it with sql.OpenDB; closing
// the *sql.DB closes the connector, and the node stops when the last
// connector of its DATA_DIR in this process is closed.
type Connector struct {
	cfg  Config
	node *Node

	mu     sync.Mutex
	closed bool
}

var (
	_ driver.Connector = (*Connector)(nil)
)

// NewConnector validates cfg and starts the node of cfg.DataDir, or shares
// the one this process already runs for it.
func NewConnector(cfg *Config) (*Connector, error) {
	if cfg == nil {
		return nil, fmt.Errorf("hiqlite: nil *Config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Connector{cfg: *cfg}
	c.cfg.Join = append([]string(nil), cfg.Join...)
	n, err := acquireNode(&c.cfg)
	if err != nil {
		return nil, err
	}
	c.node = n
	return c, nil
}

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return newConn(ctx, c)
}

// Driver implements driver.Connector.
func (c *Connector) Driver() driver.Driver { return &Driver{} }

// Node returns the node this connector's connections use.
func (c *Connector) Node() *Node { return c.node }

// Close releases the connector's share of the node. database/sql calls it
// from (*sql.DB).Close.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.node.release()
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
	return &Node{c: cn, dir: dir, refs: 1}, nil
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
	return n.c.Close()
}
