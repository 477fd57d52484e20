package hiqlite

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// rows streams a read from a statement on the connection's local read-only
// SQLite connection. Cancelling ctx interrupts the statement.
//
// The columns are read after the first step, which Columns or Next takes:
// a statement prepared before a schema change (one from the connection's
// cache, or a database/sql Stmt) is re-prepared by SQLite at that step, and
// its columns may have changed with the schema.
type rows struct {
	ctx   context.Context
	c     *conn
	p     *prepared
	s     *sqlite3.Stmt
	own   bool // release p with the rows (a query, not a stmt's execution)
	names []string
	kinds []scanKind

	stepped bool  // the first step was taken and the columns read
	ahead   bool  // the first step's outcome is Next's to return
	aheadOK bool  // with ahead: the first step found a row
	row     bool  // s is positioned on a row that Next returned
	err     error // a step that ran out of memory (stepGuarded)
}

var (
	_ driver.Rows                           = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
)

func newRows(ctx context.Context, c *conn, p *prepared) *rows {
	return &rows{ctx: ctx, c: c, p: p, s: p.s, own: true}
}

// first takes the first step, once, and reads the columns.
func (r *rows) first() {
	if r.stepped {
		return
	}
	r.stepped, r.ahead, r.aheadOK = true, true, r.step()
	n := r.s.ColumnCount()
	r.names, r.kinds = make([]string, n), make([]scanKind, n)
	for i := range n {
		r.names[i] = r.s.ColumnName(i)
		r.kinds[i] = kindOf(r.s.ColumnDeclType(i))
	}
}

func (r *rows) step() bool {
	old := r.c.db.SetInterrupt(r.ctx)
	ok, err := replication.StepGuarded(r.s)
	r.c.db.SetInterrupt(old)
	if err != nil {
		r.err = err
		r.c.retireOnOOM(err)
	}
	return ok
}

func (r *rows) Columns() []string {
	r.first()
	return r.names
}

func (r *rows) Close() error {
	r.row, r.ahead = false, false
	r.c.db.SetInterrupt(context.Background())
	if r.own {
		return r.c.release(r.p, false)
	}
	if r.p.open--; r.p.closed && r.p.open == 0 {
		return r.c.release(r.p, false) // the stmt was closed before its rows
	}
	r.s.Reset()
	return r.s.ClearBindings()
}

func (r *rows) Next(dest []driver.Value) error {
	if err := r.nextRaw(dest); err != nil {
		return err
	}
	for i := range dest {
		dest[i] = decode(r.kinds[i], dest[i])
	}
	return nil
}

// nextRaw is Next with the values as SQLite stores them, for a remote
// client's session, whose client decodes them (remote_server.go).
func (r *rows) nextRaw(dest []driver.Value) error {
	r.first()
	ok := r.aheadOK
	if r.ahead {
		r.ahead = false
	} else {
		ok = r.step()
	}
	r.row = ok
	if !ok {
		if r.err != nil {
			return r.err
		}
		if err := r.s.Err(); err != nil {
			return r.c.local(err)
		}
		return io.EOF
	}
	for i := range dest {
		dest[i] = replication.ColumnValue(r.s, i)
	}
	return nil
}

// declTypes are the columns' declared types.
func (r *rows) declTypes() []string {
	r.first()
	d := make([]string, len(r.names))
	for i := range d {
		d[i] = r.s.ColumnDeclType(i)
	}
	return d
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	r.first()
	return databaseTypeName(r.s.ColumnDeclType(i))
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	r.first()
	var v any
	if r.row {
		v = replication.ColumnValue(r.s, i)
	}
	return scanType(r.kinds[i], v, r.row)
}

// ColumnTypeNullable is known for columns read straight from a table: NOT
// NULL, or an INTEGER PRIMARY KEY, cannot be NULL.
func (r *rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	r.first()
	col := r.s.ColumnOriginName(i)
	if col == "" {
		return false, false
	}
	_, _, notNull, pk, autoInc, err := r.c.db.TableColumnMetadata(r.s.ColumnDatabaseName(i), r.s.ColumnTableName(i), col)
	if err != nil {
		return false, false
	}
	rowid := pk && kindOf(r.s.ColumnDeclType(i)) == kindInt
	return !(notNull || autoInc || rowid), true
}

// bufRows returns the rows a statement produced on the writer (RETURNING,
// or a read inside a write transaction), held in memory.
type bufRows struct {
	res   replication.Result
	kinds []scanKind
	next  int
}

var (
	_ driver.Rows                           = (*bufRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*bufRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*bufRows)(nil)
)

func newBufRows(res replication.Result) *bufRows {
	r := &bufRows{res: res, kinds: make([]scanKind, len(res.Columns))}
	for i, d := range res.DeclTypes {
		r.kinds[i] = kindOf(d)
	}
	return r
}

func (r *bufRows) Columns() []string { return r.res.Columns }

func (r *bufRows) Close() error { r.next = len(r.res.Rows) + 1; return nil }

func (r *bufRows) Next(dest []driver.Value) error {
	if r.next >= len(r.res.Rows) {
		return io.EOF
	}
	row := r.res.Rows[r.next]
	r.next++
	for i := range dest {
		dest[i] = decode(r.kinds[i], row[i])
	}
	return nil
}

func (r *bufRows) nextRaw(dest []driver.Value) error {
	if r.next >= len(r.res.Rows) {
		return io.EOF
	}
	for i, v := range r.res.Rows[r.next] {
		dest[i] = v
	}
	r.next++
	return nil
}

func (r *bufRows) declTypes() []string { return r.res.DeclTypes }

func (r *bufRows) ColumnTypeDatabaseTypeName(i int) string {
	return databaseTypeName(r.res.DeclTypes[i])
}

func (r *bufRows) ColumnTypeScanType(i int) reflect.Type {
	if r.next > 0 && r.next <= len(r.res.Rows) {
		return scanType(r.kinds[i], r.res.Rows[r.next-1][i], true)
	}
	return scanType(r.kinds[i], nil, false)
}
