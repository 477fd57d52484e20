package replication

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

func faultLog(t *testing.T, index uint64, sql string) *raft.Log {
	t.Helper()
	data, err := (&Command{Kind: KindExec, Time: 1, Stmts: []Statement{{SQL: sql}}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// A full disk during apply (simulated with max_page_count on the writer)
// stops the state machine: the whole batch is rolled back, every response in
// it and every later entry reports ErrStopped, and nothing is skipped: after
// a restart with space again, replaying the same entries applies them.
func TestDiskFullStopsApply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	sm, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := []*raft.Log{faultLog(t, 1, `CREATE TABLE t(v)`), faultLog(t, 2, `INSERT INTO t VALUES (1)`)}
	for _, r := range sm.ApplyBatch(logs) {
		if err := r.(*Response).Err; err != nil {
			t.Fatal(err)
		}
	}
	// No page may be added from here on.
	if err := sm.w.Exec(`PRAGMA max_page_count = 1`); err != nil {
		t.Fatal(err)
	}
	batch := []*raft.Log{
		faultLog(t, 3, `INSERT INTO t VALUES (2)`),
		faultLog(t, 4, `INSERT INTO t VALUES (randomblob(200000))`),
		faultLog(t, 5, `INSERT INTO t VALUES (3)`),
	}
	for i, r := range sm.ApplyBatch(batch) {
		resp := r.(*Response)
		if !errors.Is(resp.Err, nodeerr.ErrStopped) {
			t.Errorf("entry %d: %v, want ErrStopped", batch[i].Index, resp.Err)
		}
	}
	fault := sm.Fault()
	if !errors.Is(fault, nodeerr.ErrStopped) || !errors.Is(fault, sqlite3.FULL) || !strings.Contains(fault.Error(), "entry 4") {
		t.Fatalf("Fault() = %v, want ErrStopped at entry 4 with SQLITE_FULL", fault)
	}
	if got := sm.AppliedIndex(); got != 2 {
		t.Fatalf("applied index %d after the fault, want 2: the failed batch must not count", got)
	}
	if r := sm.ApplyBatch([]*raft.Log{faultLog(t, 6, `INSERT INTO t VALUES (4)`)})[0].(*Response); !errors.Is(r.Err, nodeerr.ErrStopped) {
		t.Fatalf("entry after the fault: %v, want ErrStopped", r.Err)
	}
	if err := sm.WaitApplied(3, nil); !errors.Is(err, nodeerr.ErrStopped) {
		t.Fatalf("WaitApplied after the fault: %v, want ErrStopped", err)
	}
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with space: raft replays the entries after the applied index.
	sm, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if got := sm.AppliedIndex(); got != 2 {
		t.Fatalf("applied index %d after restart, want 2", got)
	}
	for _, r := range sm.ApplyBatch(append(batch, faultLog(t, 6, `INSERT INTO t VALUES (4)`))) {
		if err := r.(*Response).Err; err != nil {
			t.Fatalf("replay: %v", err)
		}
	}
	stmt, _, err := sm.w.Prepare(`SELECT count(*), sum(length(v) > 100000) FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if !stmt.Step() || stmt.ColumnInt(0) != 5 || stmt.ColumnInt(1) != 1 {
		t.Fatalf("after replay: %d rows, %d big; want 5 and 1", stmt.ColumnInt(0), stmt.ColumnInt(1))
	}
}

// A fault rolls back the session records of its batch with the batch: the
// mirror in memory agrees with the table after it, and after a restart the
// same entries apply, not as duplicates.
func TestDiskFullRollsBackSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	sm, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	write := func(index, seq uint64, sql string) *raft.Log {
		data, err := (&Command{Kind: KindExec, Time: 1, Origin: Origin{Node: "n", Session: 1, Seq: seq}, Stmts: []Statement{{SQL: sql}}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
	}
	for _, r := range sm.ApplyBatch([]*raft.Log{faultLog(t, 1, `CREATE TABLE t(v)`), write(2, 1, `INSERT INTO t VALUES (1)`)}) {
		if err := r.(*Response).Err; err != nil {
			t.Fatal(err)
		}
	}
	if err := sm.w.Exec(`PRAGMA max_page_count = 1`); err != nil {
		t.Fatal(err)
	}
	batch := []*raft.Log{
		write(3, 2, `INSERT INTO t VALUES (2)`),
		write(4, 3, `INSERT INTO t VALUES (randomblob(200000))`),
	}
	for _, r := range sm.ApplyBatch(batch) {
		if err := r.(*Response).Err; !errors.Is(err, nodeerr.ErrStopped) {
			t.Fatalf("%v, want ErrStopped", err)
		}
	}
	if rec := sm.sess.rows[sessionKey{"n", 1}]; rec.seq != 1 || rec.index != 2 {
		t.Fatalf("mirror after the fault: %+v, want seq 1 at index 2", rec)
	}
	if err := sm.CheckSessionMirror(); err != nil {
		t.Fatal(err)
	}
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	sm, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	for _, r := range sm.ApplyBatch(batch) {
		if resp := r.(*Response); resp.Err != nil || resp.Duplicate {
			t.Fatalf("replay: %+v", resp)
		}
	}
}

// Errors a command can provoke are that command's errors, never a fault
// that stops the state machine.
func TestCommandErrorsAreNotNodeFaults(t *testing.T) {
	for _, err := range []error{
		&InternalObjectError{Name: "_hiqlite_sessions"},
		sqlite3.AUTH, sqlite3.CONSTRAINT_UNIQUE, sqlite3.CONSTRAINT_CHECK, sqlite3.ERROR,
		sqlite3.SCHEMA, sqlite3.TOOBIG, sqlite3.MISMATCH, sqlite3.RANGE,
		&RefusedError{SQL: "ATTACH 'x' AS y", Reason: "test"},
	} {
		if isNodeFault(err) {
			t.Errorf("%v: taken for a node fault", err)
		}
	}
	// And the real ones are.
	for _, err := range []error{sqlite3.IOERR_WRITE, sqlite3.FULL, sqlite3.CORRUPT, sqlite3.NOTADB} {
		if !isNodeFault(err) {
			t.Errorf("%v: not taken for a node fault", err)
		}
	}
}

// An entry of a newer command version (written by an upgraded leader) stops
// a node that cannot read it, as a node fault: it neither skips the entry
// nor applies what follows, and after an upgrade the entry applies.
func TestNewerCommandVersionStopsApply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	sm, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	newer := faultLog(t, 2, `INSERT INTO t VALUES (2)`)
	newer.Data[0] = commandVersion + 1
	batch := []*raft.Log{faultLog(t, 1, `CREATE TABLE t(v)`), newer, faultLog(t, 3, `INSERT INTO t VALUES (3)`)}
	out := sm.ApplyBatch(batch)
	for i, r := range out {
		if err := r.(*Response).Err; !errors.Is(err, nodeerr.ErrStopped) {
			t.Errorf("entry %d: %v, want ErrStopped", batch[i].Index, err)
		}
	}
	var ve *encoding.VersionError
	if fault := sm.Fault(); !errors.Is(fault, nodeerr.ErrStopped) || !errors.As(fault, &ve) || !strings.Contains(fault.Error(), "entry 2") {
		t.Fatalf("Fault() = %v, want ErrStopped with a VersionError at entry 2", fault)
	}
	if got := sm.AppliedIndex(); got != 0 {
		t.Fatalf("applied index %d, want 0: nothing of the batch may count", got)
	}
	select {
	case <-sm.Stopped():
	default:
		t.Fatal("Stopped() not closed after the fault")
	}
}
