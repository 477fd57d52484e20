package hiqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
)

// DriverName is the name the driver registers with database/sql.
const DriverName = "hiqlite"

func init() {
	sql.Register(DriverName, &Driver{})
}

// Driver is the database/sql driver. Its DSN is described in ParseDSN.
type Driver struct{}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open opens a connection to the node of dsn (starting it if this process
// has not yet). database/sql calls OpenConnector instead.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	dc, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	if rc, ok := dc.(*RemoteConnector); ok {
		return rc.Connect(context.Background())
	}
	c := dc.(*Connector)
	conn, err := newConn(context.Background(), c)
	if err != nil {
		c.Close()
		return nil, err
	}
	conn.owner = c // the connection holds the node: release it on Close
	return conn, nil
}

// OpenConnector parses dsn and starts (or shares) its node; a hiqlite://
// DSN makes a remote client's connector instead (ParseClientDSN), which
// starts nothing.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	if IsRemoteDSN(dsn) {
		cfg, err := ParseClientDSN(dsn)
		if err != nil {
			return nil, err
		}
		return NewClientConnector(cfg)
	}
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return NewConnector(cfg)
}
