package replication_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// A transaction's writes together are bounded like one command: the
// statement that would pass MaxCommandBytes is refused before it runs and
// is not recorded; the transaction goes on and commits without it.
func TestTxSizeLimit(t *testing.T) {
	a := newApplier(t)
	o := replication.Origin{Node: "n1", Session: 9, Seq: 1}
	if err := a.sm.BeginTx(o, 1e18, 1, 0); err != nil {
		t.Fatal(err)
	}
	half := make([]byte, replication.MaxCommandBytes/2)
	ins := func(v any) error {
		st := replication.Statement{SQL: `INSERT INTO t(v) VALUES (?)`, Args: []replication.Arg{{Ordinal: 1, Value: v}}}
		_, err := a.sm.ExecTx(context.Background(), o, st, false)
		return err
	}
	if err := ins(half); err != nil {
		t.Fatal(err)
	}
	err := ins(append(half, 1))
	if !errors.Is(err, nodeerr.ErrTooLarge) {
		t.Fatalf("second half and a byte: %v, want ErrTooLarge", err)
	}
	t.Log(err)
	if err := ins("small"); err != nil {
		t.Fatalf("after the refused statement: %v", err)
	}
	cmd, err := a.sm.CommitCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd.Stmts) != 2 {
		t.Fatalf("commit carries %d statements, want 2", len(cmd.Stmts))
	}
	a.must(a.apply(cmd))
	if n := a.count(); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	if err := replication.CheckSize(0, []replication.Statement{{SQL: "x", Args: []replication.Arg{{Ordinal: 1, Value: make([]byte, replication.MaxCommandBytes)}}}}); !errors.Is(err, nodeerr.ErrTooLarge) {
		t.Fatalf("CheckSize of a value of MaxCommandBytes: %v", err)
	}
}

// Interrupt (a closing node) stops a snapshot being persisted and the
// statement being applied; the interrupted entry is not recorded, so a
// state machine opened again on the file applies it.
func TestInterrupt(t *testing.T) {
	a := newApplier(t)
	a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) SELECT randomblob(1000) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 20000) SELECT i FROM c)`))
	snap, err := a.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	applied := a.sm.AppliedIndex()
	a.sm.Interrupt()
	if err := snap.Persist(&bufSink{}); !errors.Is(err, replication.ErrInterrupted) {
		t.Fatalf("persist after Interrupt: %v, want ErrInterrupted", err)
	}
	r := a.exec(replication.Origin{}, `INSERT INTO t(v) VALUES ('after')`)
	if !errors.Is(r.Err, replication.ErrInterrupted) {
		t.Fatalf("apply after Interrupt: %v, want ErrInterrupted", r.Err)
	}
	if got := a.sm.AppliedIndex(); got != applied {
		t.Fatalf("applied index %d after an interrupted apply, want %d", got, applied)
	}
	if !errors.Is(a.sm.Fault(), replication.ErrInterrupted) {
		t.Fatalf("fault %v, want ErrInterrupted", a.sm.Fault())
	}
	if err := a.sm.Close(); err != nil {
		t.Fatal(err)
	}
	sm, err := replication.Open(a.sm.Path(), replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	if got := sm.AppliedIndex(); got != applied {
		t.Fatalf("reopened at applied index %d, want %d", got, applied)
	}
	a.sm, a.index = sm, applied // the interrupted entry comes again
	a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) VALUES ('after')`))
	if n := a.count(); n != 20001 {
		t.Fatalf("%d rows after the entry was applied again, want 20001", n)
	}
}

// An Interrupt that lands after a batch's commands ran, at its COMMIT, is
// an interruption too, not a fault nor the command's error: the response
// says ErrInterrupted (the cluster then reports the write as in flight at
// Close, not as failed), the applied index stays, and the entry applies
// again after reopening.
func TestInterruptAtBatchCommit(t *testing.T) {
	a := newApplier(t)
	applied := a.sm.AppliedIndex()
	if err := a.sm.InterruptAtCommit(); err != nil {
		t.Fatal(err)
	}
	r := a.exec(replication.Origin{Node: "n1", Session: 3, Seq: 1}, `INSERT INTO t(v) VALUES ('x')`)
	if !errors.Is(r.Err, replication.ErrInterrupted) {
		t.Fatalf("apply interrupted at its commit: %v, want ErrInterrupted", r.Err)
	}
	if !errors.Is(a.sm.Fault(), replication.ErrInterrupted) {
		t.Fatalf("fault %v, want ErrInterrupted", a.sm.Fault())
	}
	if got := a.sm.AppliedIndex(); got != applied {
		t.Fatalf("applied index %d after an interrupted commit, want %d", got, applied)
	}
}

// nodeerr.ErrTooLarge names the limit in MiB as text; it must say
// MaxCommandBytes.
func TestErrTooLargeNamesTheLimit(t *testing.T) {
	want := fmt.Sprintf("hiqlite: command exceeds the %d MiB limit", replication.MaxCommandBytes>>20)
	if got := nodeerr.ErrTooLarge.Error(); got != want {
		t.Errorf("ErrTooLarge = %q, want %q", got, want)
	}
}
