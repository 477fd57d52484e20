package replication

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"github.com/ncruces/go-sqlite3"
)

// Copy is a consistent copy of the database, as of one applied index, in
// a temporary file: what a backup streams out. Remove deletes it.
type Copy struct {
	// Path is the copy's file.
	Path string
	// Index and Term are the Raft index and term the copy holds the
	// database as of.
	Index, Term uint64
	// SchemaHash is SchemaHash of the copy.
	SchemaHash [sha256.Size]byte
}

// Remove deletes the copy's file.
func (c *Copy) Remove() error {
	if err := os.Remove(c.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// CopyDatabase copies the database as of its current applied index into a
// new temporary file in dir (backup-*.db, which RemoveTemp deletes after a
// crash). It does what a Raft snapshot does (snapshot.go): a read-only
// connection pins the database in a read transaction and SQLite's backup
// API copies those pages, so writes go on meanwhile and the copy is
// exactly the state at Index. The copy is checked (PRAGMA quick_check)
// before it is returned. ctx, or the state machine's Interrupt, stops it.
func (sm *StateMachine) CopyDatabase(ctx context.Context, dir string) (_ *Copy, err error) {
	sm.mu.Lock()
	err = sm.usable()
	sm.mu.Unlock()
	if err != nil {
		return nil, err
	}
	conn, st, err := sm.pin()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &Copy{Index: st.applied, Term: st.term}
	if c.SchemaHash, err = schemaHash(conn); err != nil {
		return nil, fmt.Errorf("hiqlite: backup: read the schema: %w", err)
	}
	f, err := os.CreateTemp(dir, backupTemp)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: backup: %w", err)
	}
	c.Path = f.Name()
	f.Close()
	defer func() {
		if err != nil {
			c.Remove()
		}
	}()
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(sm.stopping, cancel)()
	if err := copyPinned(conn, c.Path, stop); err != nil {
		if errors.Is(err, ErrInterrupted) && ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("hiqlite: backup copy: %w", err)
	}
	if err := checkFile(c.Path, sm.connInit); err != nil {
		return nil, fmt.Errorf("hiqlite: backup copy: %w", err)
	}
	return c, nil
}

func schemaHash(conn *sqlite3.Conn) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	stmt, _, err := conn.Prepare(`SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY sql COLLATE BINARY`)
	if err != nil {
		return sum, err
	}
	defer stmt.Close()
	h := sha256.New()
	for stmt.Step() {
		h.Write(stmt.ColumnRawText(0))
		h.Write([]byte{0})
	}
	if err := stmt.Err(); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// CheckDatabase runs PRAGMA integrity_check on the database file at path,
// which nothing else has open (a restored or verified copy), and returns
// the SHA-256 of its schema: the sql texts of sqlite_schema, sorted
// bytewise, each followed by a zero byte. A damaged file fails with an
// error that IsCorrupt recognises. It opens the file read-write, though
// it writes nothing, so that its close removes the -wal and -shm files the
// open made (see checkFile).
func CheckDatabase(path string) (sum [sha256.Size]byte, err error) {
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READWRITE|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return sum, err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	if err := runCheck(conn, path, "integrity_check"); err != nil {
		return sum, err
	}
	return schemaHash(conn)
}

// ForgetSeen sets the seen index of the database file at path, which
// nothing else has open, to its applied index. A restored backup starts a
// new Raft log after its applied index: the entries its old cluster had
// seen beyond it (configuration changes) are not those of the new log, so
// waits on those indexes must not count them as seen. It returns the
// applied index.
func ForgetSeen(path string) (applied uint64, err error) {
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READWRITE|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	if err := conn.Exec(`UPDATE _hiqlite_state SET seen_index = applied_index WHERE id = 1`); err != nil {
		return 0, err
	}
	return ReadAppliedIndex(conn)
}
