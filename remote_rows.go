package hiqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"

	"github.com/hiqlite/hiqlite/internal/wire"
)

// remoteRows are the rows of a remote query: one batch at a time, the next
// asked for when the last is read (OpNext); closing them early tells the
// member to stop (OpCloseRows). Values arrive as SQLite stores them and
// are decoded here by their declared types, as the node's own rows do.
type remoteRows struct {
	ctx   context.Context
	c     *remoteConn // nil once the member's rows are closed
	cols  []string
	decl  []string
	kinds []scanKind
	batch [][]any
	next  int
	more  bool  // the member holds more rows
	err   error // why the member's rows are gone before their end
	end   error // the error that follows the batch (nil: io.EOF or more)
	null  []byte
	last  []any // the row Next returned last
}

var (
	_ driver.Rows                           = (*remoteRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*remoteRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*remoteRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*remoteRows)(nil)
)

func newRemoteRows(ctx context.Context, c *remoteConn, res *wire.ClientResult) *remoteRows {
	r := &remoteRows{ctx: ctx, c: c, cols: res.Result.Columns, decl: res.Result.DeclTypes, batch: res.Result.Rows, more: res.More,
		end: res.Result.Err, null: res.Nullable}
	if len(r.decl) != len(r.cols) {
		r.decl = make([]string, len(r.cols))
	}
	r.kinds = make([]scanKind, len(r.cols))
	for i, d := range r.decl {
		r.kinds[i] = kindOf(d)
	}
	if !r.more {
		r.c = nil
	}
	return r
}

func (r *remoteRows) Columns() []string { return r.cols }

// errRowsDetached: another statement ran on the connection while these
// rows were open, which closed them on the member.
var errRowsDetached = errors.New("hiqlite: rows closed by a later statement on the same connection; read them to the end or close them first")

// detach: the connection runs another request, which closes these rows on
// the member.
func (r *remoteRows) detach() {
	if r.c != nil {
		r.c.rows = nil
		r.c, r.more, r.err = nil, false, errRowsDetached
	}
}

func (r *remoteRows) Next(dest []driver.Value) error {
	for r.next >= len(r.batch) {
		if r.err != nil {
			return r.err
		}
		if r.end != nil {
			r.err = ctxError(r.ctx, r.end)
			return r.err
		}
		if !r.more {
			return io.EOF
		}
		res, err := r.c.call(r.ctx, &wire.ClientRequest{Op: wire.OpNext})
		if err != nil {
			r.release()
			r.err = err
			return err
		}
		r.batch, r.next, r.more, r.end = res.Result.Rows, 0, res.More, res.Result.Err
		if !r.more {
			r.release()
		}
	}
	row := r.batch[r.next]
	r.batch[r.next] = nil
	r.next++
	r.last = row
	for i := range dest {
		dest[i] = decode(r.kinds[i], row[i])
	}
	return nil
}

// release forgets the connection: the member's rows are closed.
func (r *remoteRows) release() {
	if r.c != nil && r.c.rows == r {
		r.c.rows = nil
	}
	r.c, r.more = nil, false
}

func (r *remoteRows) Close() error {
	r.batch, r.next = nil, 0
	if r.err == nil {
		r.err = io.EOF
	}
	if r.c == nil {
		return nil
	}
	c := r.c
	r.release()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), cancelWait)
	defer cancel()
	_, err := c.call(ctx, &wire.ClientRequest{Op: wire.OpCloseRows})
	var be *brokenError
	if errors.As(err, &be) {
		c.bad = true
		return nil // the session, and the rows with it, are gone
	}
	return err
}

func (r *remoteRows) ColumnTypeDatabaseTypeName(i int) string { return databaseTypeName(r.decl[i]) }

func (r *remoteRows) ColumnTypeScanType(i int) reflect.Type {
	if r.last != nil {
		return scanType(r.kinds[i], r.last[i], true)
	}
	return scanType(r.kinds[i], nil, false)
}

func (r *remoteRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if i >= len(r.null) || r.null[i] == 0 {
		return false, false
	}
	return r.null[i] == 1, true
}
