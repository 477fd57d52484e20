package replication

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs/mvcc"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// Temporary copies of the database made while a snapshot is persisted or
// restored, in the database's directory; RemoveTemp deletes those a crash
// left behind.
const (
	persistTemp = "snapshot-*.db"
	restoreTemp = "restore-*.db"
	backupTemp  = "backup-*.db"
)

// RemoveTemp deletes the temporary files a snapshot persist or restore, or
// a backup, left in dir when its process died (with their SQLite journals). Call it
// only while no state machine of dir is open. It returns the names removed.
func RemoveTemp(dir string) ([]string, error) {
	var removed []string
	for _, pattern := range []string{persistTemp, restoreTemp, backupTemp} {
		names, err := filepath.Glob(filepath.Join(dir, pattern+"*"))
		if err != nil {
			return removed, err
		}
		for _, name := range names {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				return removed, err
			}
			removed = append(removed, name)
		}
	}
	return removed, nil
}

// snapshotMagic starts every snapshot stream, followed by a format byte.
const (
	snapshotMagic  = "HIQLSNAP"
	snapshotFormat = 1 // zstd-compressed SQLite database file
)

// Snapshot implements raft.FSM. It runs on raft's FSM goroutine between
// applies, so it only opens a read transaction that pins the current state;
// the copy happens in Persist, on another goroutine, while writes continue.
func (sm *StateMachine) Snapshot() (raft.FSMSnapshot, error) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if err := sm.usable(); err != nil {
		return nil, err
	}
	conn, st, err := sm.pin()
	if err != nil {
		return nil, err
	}
	if idx := st.applied; idx != sm.applied.Load() {
		conn.Close()
		return nil, fmt.Errorf("hiqlite: snapshot read index %d, applied %d", idx, sm.applied.Load())
	}
	// The entries counted so far are the ones this snapshot covers; Persist
	// takes them off the count once the snapshot is stored.
	return &fsmSnapshot{conn: conn, dir: filepath.Dir(sm.path), sm: sm, bytes: sm.logBytes.Load(), entries: sm.logEntries.Load()}, nil
}

// pin opens a read-only connection on the database with a read transaction
// open: from then on it sees the database exactly as of the applied index
// it returns, whatever the writer commits.
func (sm *StateMachine) pin() (*sqlite3.Conn, dbState, error) {
	conn, err := sqlite3.OpenFlags(sm.path, sqlite3.OPEN_READONLY|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return nil, dbState{}, err
	}
	if err := runConnInit(conn, sm.connInit); err != nil {
		conn.Close()
		return nil, dbState{}, err
	}
	// The first read of a transaction fixes its snapshot.
	if err := conn.Exec(`BEGIN`); err != nil {
		conn.Close()
		return nil, dbState{}, err
	}
	st, err := readState(conn)
	if err != nil {
		conn.Close()
		return nil, dbState{}, fmt.Errorf("hiqlite: read the applied index: %w", err)
	}
	return conn, st, nil
}

type fsmSnapshot struct {
	conn *sqlite3.Conn
	dir  string
	// sm's log count when the snapshot was pinned (see LogBytes).
	sm             *StateMachine
	bytes, entries uint64
}

// Persist copies the pinned database with SQLite's backup API (which reuses
// the open read transaction, so the copy is consistent) into a temporary
// file, then streams that file through zstd into sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.persist(sink)
	if err != nil {
		sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	// Stored: raft compacts the log behind it, so the entries it covers no
	// longer count towards the next one. A failed snapshot leaves them.
	subtract(&s.sm.logBytes, s.bytes)
	subtract(&s.sm.logEntries, s.entries)
	return nil
}

// subtract takes n off a, stopping at zero (a Restore may have reset it).
func subtract(a *atomic.Uint64, n uint64) {
	for {
		old := a.Load()
		if a.CompareAndSwap(old, old-min(old, n)) {
			return
		}
	}
}

func (s *fsmSnapshot) persist(w io.Writer) error {
	var tmp tempDB
	if s.sm.memory {
		tmp = memoryTemp("")
		defer mvcc.Delete(tmp.mem)
	} else {
		f, err := os.CreateTemp(s.dir, persistTemp)
		if err != nil {
			return err
		}
		tmp.uri = f.Name()
		f.Close()
		defer os.Remove(tmp.uri)
	}
	name := tmp.uri
	if err := s.copyTo(name); err != nil {
		if IsCorrupt(err) {
			s.sm.stop(err)
		}
		return fmt.Errorf("hiqlite: snapshot copy: %w", err)
	}
	// The backup copies pages without reading them as b-trees: a page
	// damaged on this node's disk would go into the snapshot and to every
	// node that installs it. The copy is in the page cache, so this pass
	// is cheap.
	if err := checkFile(name, s.sm.connInit); err != nil {
		s.sm.stop(err)
		return fmt.Errorf("hiqlite: snapshot copy: %w", err)
	}
	return encodeSnapshot(s.sm.stopping, w, tmp)
}

// EncodeSnapshot writes the database file at path to w as a snapshot
// stream (what Persist writes and Restore reads), until ctx ends.
func EncodeSnapshot(ctx context.Context, w io.Writer, path string) error {
	return encodeSnapshot(ctx, w, tempDB{uri: path})
}

func encodeSnapshot(ctx context.Context, w io.Writer, tmp tempDB) error {
	if _, err := io.WriteString(w, snapshotMagic); err != nil {
		return err
	}
	if _, err := w.Write([]byte{snapshotFormat}); err != nil {
		return err
	}
	// One block at a time, on this goroutine: with more, the encoder
	// writes each block to w from a goroutine of its own, and after a
	// failed Copy (an interrupted snapshot) Close returns without waiting
	// for it, so that write raced with the sink's Cancel (the race detector
	// caught it in TestSnapshotProcesses). A snapshot is bound by the
	// backup copy and the disk, not by compression at SpeedFastest.
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	if err := copyOut(enc, tmp, ctx); err != nil {
		enc.Close()
		return err
	}
	return enc.Close()
}

// copyOut writes the bytes of the database tmp to w until ctx ends.
func copyOut(w io.Writer, tmp tempDB, ctx context.Context) error {
	if tmp.mem != "" {
		return tmp.writeMemory(ctx, w)
	}
	f, err := os.Open(tmp.uri)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, stoppable{f, ctx})
	return err
}

// copyTo copies the pinned database into the file name with SQLite's
// backup API, in steps, so that Interrupt (a closing node) stops it within
// a step instead of after the whole database.
func (s *fsmSnapshot) copyTo(name string) error {
	return copyPinned(s.conn, name, s.sm.stopping)
}

// copyPinned copies the database conn reads, in its open read transaction,
// into the file name with SQLite's backup API, checking ctx between steps.
func copyPinned(conn *sqlite3.Conn, name string, ctx context.Context) error {
	b, err := conn.BackupInit("main", name)
	if err != nil {
		return err
	}
	defer b.Close()
	for {
		if ctx.Err() != nil {
			return ErrInterrupted
		}
		done, err := b.Step(snapshotStepPages)
		if err != nil || done {
			return err
		}
	}
}

// snapshotStepPages is how many pages a snapshot copies between checks for
// Interrupt: 16 MiB of 4 KiB pages, a few tens of milliseconds.
const snapshotStepPages = 4096

// stoppable is a reader that fails with ErrInterrupted once ctx ends.
type stoppable struct {
	r   io.Reader
	ctx context.Context
}

func (s stoppable) Read(p []byte) (int, error) {
	if s.ctx.Err() != nil {
		return 0, ErrInterrupted
	}
	return s.r.Read(p)
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() { s.conn.Close() }

// Restore implements raft.FSM: it replaces the database with the snapshot
// in r. It runs on raft's FSM goroutine; readers keep reading the old state
// until the copy commits.
func (sm *StateMachine) Restore(r io.ReadCloser) error {
	defer r.Close()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if err := sm.usable(); err != nil {
		return err
	}
	sm.abortPending()
	var name string
	if sm.memory {
		var buf strings.Builder
		if err := decodeSnapshot(r, &buf); err != nil {
			return err
		}
		tmp := memoryTemp(buf.String())
		defer mvcc.Delete(tmp.mem)
		name = tmp.uri
	} else {
		tmp, err := os.CreateTemp(filepath.Dir(sm.path), restoreTemp)
		if err != nil {
			return err
		}
		name = tmp.Name()
		defer os.Remove(name)
		err = decodeSnapshot(r, tmp)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// A damaged snapshot (written by a node that did not check its copy)
	// is refused, not installed: this database is left as it was.
	if err := checkFile(name, sm.connInit); err != nil {
		return fmt.Errorf("hiqlite: restore snapshot: %w", err)
	}
	// Statements prepared on the old schema must go before the copy.
	for k, s := range sm.cache {
		s.Close()
		delete(sm.cache, k)
	}
	if err := sm.w.Restore("main", name); err != nil {
		return sm.stop(fmt.Errorf("restore snapshot: %w", err))
	}
	// A snapshot of an older version may lack the session table.
	if err := sm.w.Exec(sessionSchema); err != nil {
		return sm.stop(fmt.Errorf("restore snapshot: %w", err))
	}
	if err := sm.loadState(); err != nil {
		return sm.stop(fmt.Errorf("read restored state: %w", err))
	}
	if err := sm.loadSessions(); err != nil {
		return sm.stop(fmt.Errorf("read restored state: %w", err))
	}
	sm.logBytes.Store(0)
	sm.logEntries.Store(0)
	sm.broadcast()
	return nil
}

func decodeSnapshot(r io.Reader, w io.Writer) error {
	br := bufio.NewReader(r)
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return fmt.Errorf("hiqlite: snapshot header: %w", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("hiqlite: not a hiqlite snapshot")
	}
	if v := head[len(snapshotMagic)]; v > snapshotFormat {
		return &encoding.VersionError{Format: "SQL snapshot", Version: v, Known: snapshotFormat}
	} else if v != snapshotFormat {
		return fmt.Errorf("hiqlite: unknown snapshot format %d", v)
	}
	dec, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer dec.Close()
	_, err = io.Copy(w, dec)
	return err
}
