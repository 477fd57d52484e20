package hiqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"
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
