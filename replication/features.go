package replication

import (
	"fmt"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/ext/fts5"
	"github.com/ncruces/go-sqlite3/ext/rtree"
)

// RegisterFeatures registers on conn the SQL that every connection of a
// node has beyond SQLite's built-ins, so that a statement means the same on
// the writer and on every read connection of every node:
//
//   - the fts5 virtual table (ncruces/go-sqlite3/ext/fts5), with its
//     auxiliary functions bm25, highlight and snippet;
//   - the rtree and geopoly virtual tables (ncruces/go-sqlite3/ext/rtree).
//
// The state machine calls it on its writer and the database/sql face on
// every read connection. The connections that only check or copy the file
// (quick_check at open and of a snapshot's copy, the snapshot's backup) do
// without: quick_check reads the shadow tables of FTS5 and R*Tree as the
// plain tables they are.
//
// Every function here is deterministic given its input: bm25 and the other
// auxiliary functions read only the index, the same on every node.
func RegisterFeatures(conn *sqlite3.Conn) error {
	if err := fts5.Register(conn); err != nil {
		return fmt.Errorf("hiqlite: register fts5: %w", err)
	}
	if err := rtree.Register(conn); err != nil {
		return fmt.Errorf("hiqlite: register rtree: %w", err)
	}
	return nil
}
