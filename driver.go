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
	c, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

// OpenConnector parses dsn and starts (or shares) its node.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return NewConnector(cfg)
}
