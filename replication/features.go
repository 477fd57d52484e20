package replication

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

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
//   - the rtree and geopoly virtual tables (ncruces/go-sqlite3/ext/rtree);
//   - uuid4(), gen_random_uuid() and uuid() (a version 4 UUID), uuid(4),
//     uuid(7) and uuid7() (a version 7 UUID), as text: here from the local
//     clock and randomness. On the writer, [installDeterministic] replaces
//     them with functions of the command, so a write stores the same UUIDs
//     on every node. (Built with Go 1.27, ncruces registers a random uuid()
//     on every connection itself; this replaces it.)
//
// The state machine calls it on its writer and the database/sql face on
// every read connection. The connections that only check or copy the file
// (quick_check at open and of a snapshot's copy, the snapshot's backup) do
// without: quick_check reads the shadow tables of FTS5 and R*Tree as the
// plain tables they are.
//
// Every function here is deterministic given its input (bm25 and the other
// auxiliary functions read only the index, the same on every node), except
// the UUID functions, which the writer replaces.
func RegisterFeatures(conn *sqlite3.Conn) error {
	if err := fts5.Register(conn); err != nil {
		return fmt.Errorf("hiqlite: register fts5: %w", err)
	}
	if err := rtree.Register(conn); err != nil {
		return fmt.Errorf("hiqlite: register rtree: %w", err)
	}
	return registerUUID(conn, localUUID)
}

// uuidSource makes the UUID of version 4 or 7 that one call returns.
type uuidSource func(ver int) string

// uuidFuncs are the UUID functions: name, number of arguments.
var uuidFuncs = []struct {
	name string
	nArg int
}{{"uuid4", 0}, {"gen_random_uuid", 0}, {"uuid7", 0}, {"uuid", 0}, {"uuid", 1}}

// registerUUID installs the UUID functions on conn, drawing from src. They
// are INNOCUOUS, so DEFAULT clauses may call them, and not DETERMINISTIC,
// like random(): SQLite calls them once per use and never folds them.
func registerUUID(conn *sqlite3.Conn, src uuidSource) error {
	for _, f := range uuidFuncs {
		ver := 4
		if f.name == "uuid7" {
			ver = 7
		}
		fn := func(ctx sqlite3.Context, args ...sqlite3.Value) {
			v := ver
			if len(args) > 0 {
				v = args[0].Int()
				if v != 4 && v != 7 {
					ctx.ResultError(fmt.Errorf("hiqlite: uuid(%s): the version must be 4 or 7", args[0].Text()))
					return
				}
			}
			ctx.ResultText(src(v))
		}
		if err := conn.CreateFunction(f.name, f.nArg, sqlite3.INNOCUOUS, fn); err != nil {
			return fmt.Errorf("hiqlite: register %s(): %w", f.name, err)
		}
	}
	return nil
}

// localUUID is a UUID from this node's clock and randomness.
func localUUID(ver int) string {
	return formatUUID(ver, time.Now().UnixMilli(), rand.Uint64(), rand.Uint64())
}

// formatUUID returns the UUID of version ver (RFC 9562) as lower-case text
// in the 8-4-4-4-12 form. Version 4 takes its 122 random bits from hi and
// lo; version 7 puts ms (Unix milliseconds) in its first 48 bits, then 12
// bits of hi (rand_a) and 62 of lo (rand_b). The version and variant bits
// overwrite what they cover.
func formatUUID(ver int, ms int64, hi, lo uint64) string {
	var b [16]byte
	if ver == 7 {
		hi = uint64(ms)<<16 | hi&0xfff
	}
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | byte(ver)<<4 // version
	b[8] = b[8]&0x3f | 0x80         // variant 10
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	hex.Encode(s[9:13], b[4:6])
	hex.Encode(s[14:18], b[6:8])
	hex.Encode(s[19:23], b[8:10])
	hex.Encode(s[24:36], b[10:16])
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return string(s[:])
}
