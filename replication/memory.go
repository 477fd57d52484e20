package replication

import (
	"context"
	"crypto/rand"
	"io"
	"net/url"

	"github.com/ncruces/go-sqlite3/vfs/mvcc"
)

// In-memory state machines keep their database in ncruces' "mvcc" VFS: a
// database shared by the connections of this process that open the same
// name, where the single writer is never blocked by readers and each read
// transaction sees a fixed snapshot, as in WAL mode. The database lives as
// long as a connection to it is open, so closing the state machine and the
// read connections frees it.

// OpenMemory opens a new, empty state machine whose database is in memory
// under a name of its own: no file is created, for it or for its snapshots'
// copies. Path returns a URI that opens the same database (read-only
// connections may share it while the state machine is open).
func OpenMemory(opts Options) (*StateMachine, error) {
	sm, err := Open(memoryURI(memoryName()), opts)
	if err != nil {
		return nil, err
	}
	sm.memory = true
	return sm, nil
}

// memoryName is a name no other database of this process has.
func memoryName() string { return "hiqlite-" + rand.Text() }

// memoryURI is the URI SQLite opens the mvcc database name with: a name
// starting with "/" is shared by every connection that opens it.
func memoryURI(name string) string {
	return (&url.URL{Scheme: "file", OmitHost: true, Path: "/" + name, RawQuery: "vfs=mvcc"}).String()
}

// tempDB is a temporary database for a snapshot's copy: a file in the
// database's directory, or for an in-memory state machine an mvcc database
// held (by Create) until remove.
type tempDB struct {
	uri string // what SQLite opens
	mem string // the mvcc name; "" for a file
}

// memoryTemp creates an mvcc database holding data.
func memoryTemp(data string) tempDB {
	name := memoryName()
	mvcc.Create(name, mvcc.NewSnapshot(data))
	return tempDB{uri: memoryURI(name), mem: name}
}

// writeMemory writes the mvcc database's bytes to w, checking ctx between chunks.
func (t tempDB) writeMemory(ctx context.Context, w io.Writer) error {
	var pos int64
	var zeros [4096]byte
	for off, chunk := range mvcc.TakeSnapshot(t.mem).AscendFloor(0) {
		if ctx.Err() != nil {
			return ErrInterrupted
		}
		for pos < off { // a hole reads as zeros, as in a file
			n, err := w.Write(zeros[:min(int64(len(zeros)), off-pos)])
			if err != nil {
				return err
			}
			pos += int64(n)
		}
		if off < pos {
			chunk = chunk[min(int64(len(chunk)), pos-off):]
		}
		n, err := io.WriteString(w, chunk)
		if err != nil {
			return err
		}
		pos += int64(n)
	}
	return nil
}
