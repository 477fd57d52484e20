package hiqlite

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/hiqlite/hiqlite/replication"
)

// ResetSession retires a connection that ran out of memory (retireOnOOM).
func (c *conn) ResetSession(ctx context.Context) error {
	if c.oom {
		return driver.ErrBadConn
	}
	return nil
}

// retireOnOOM marks the connection for database/sql to close when err says
// that a statement ran out of the read connection's memory: SQLite's
// memory stays grown to its cap, and the connection's next user is better
// served by a fresh one.
func (c *conn) retireOnOOM(err error) {
	var oom *replication.OutOfMemoryError
	if err != nil && errors.As(err, &oom) {
		c.oom = true
	}
}
