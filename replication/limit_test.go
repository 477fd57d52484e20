package replication_test

import (
	"context"
	"errors"
	"testing"

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
	if !errors.Is(err, replication.ErrTooLarge) {
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
	if err := replication.CheckSize(0, []replication.Statement{{SQL: "x", Args: []replication.Arg{{Ordinal: 1, Value: make([]byte, replication.MaxCommandBytes)}}}}); !errors.Is(err, replication.ErrTooLarge) {
		t.Fatalf("CheckSize of a value of MaxCommandBytes: %v", err)
	}
}
