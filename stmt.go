package hiqlite

import (
	"context"
	"database/sql/driver"

	"github.com/hiqlite/hiqlite/replication"
)

// stmt is a prepared statement. Reads run on the statement prepared on the
// local read connection (taken from the connection's cache of plain reads,
// and given back on Close); writes send its text and arguments to the
// writer, whose statement cache holds the prepared form there.
type stmt struct {
	c *conn
	p *prepared
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func (c *conn) PrepareContext(ctx context.Context, query string) (_ driver.Stmt, err error) {
	defer func() { c.retireOnOOM(err) }()
	defer replication.RecoverOOM(&err)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.guard.Migrations = forMigrate(ctx)
	p, err := c.prepareSeen(ctx, query)
	if err != nil {
		return nil, err
	}
	return &stmt{c: c, p: p}, nil
}

func (s *stmt) Close() error {
	if s.p.open > 0 {
		s.p.closed = true // rows still step s.p.s: the last one releases it
		return nil
	}
	return s.c.release(s.p, false)
}

// NumInput lets database/sql check the argument count of statements with
// positional parameters only; with named ones, or several statements, it
// cannot know.
func (s *stmt) NumInput() int {
	return s.p.numInput
}

func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error { return checkValue(nv.Value) }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) ExecContext(ctx context.Context, nargs []driver.NamedValue) (driver.Result, error) {
	args, err := toArgs(nargs)
	if err != nil {
		return nil, err
	}
	if s.p.s != nil {
		defer s.p.s.ClearBindings()
	}
	s.p.linearized = false
	return s.c.exec(ctx, s.p, args)
}

func (s *stmt) QueryContext(ctx context.Context, nargs []driver.NamedValue) (driver.Rows, error) {
	args, err := toArgs(nargs)
	if err != nil {
		return nil, err
	}
	if s.p.s != nil {
		// A new execution restarts the statement, as in SQLite.
		s.p.s.Reset()
	}
	s.p.linearized = false
	r, _, err := s.c.query(ctx, s.p, args)
	if rr, ok := r.(*rows); ok {
		rr.own = false // the statement outlives its rows
		s.p.open++
	}
	return r, err
}

func named(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv
}
