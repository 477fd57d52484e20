package replication_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

type ctxKey struct{}

// The statements of a transaction that share a context share one interrupt
// context on the writer; it still ends with their context and with
// Interrupt, a statement under another context gets its own, and none
// outlives the transaction.
func TestTxInterruptContextShared(t *testing.T) {
	a := newApplier(t)
	ins := func(ctx context.Context, v string) error {
		st := replication.Statement{SQL: `INSERT INTO t(v) VALUES (?)`, Args: []replication.Arg{{Ordinal: 1, Value: v}}}
		_, err := a.sm.ExecTx(ctx, replication.Origin{Node: "n1", Session: 1, Seq: uint64(a.index + 1)}, st, false)
		return err
	}
	begin := func() replication.Origin {
		t.Helper()
		o := replication.Origin{Node: "n1", Session: 1, Seq: uint64(a.index + 1)}
		if err := a.sm.BeginTx(o, 1e18, 1, 0); err != nil {
			t.Fatal(err)
		}
		return o
	}

	o := begin()
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	for _, v := range []string{"a", "b"} {
		if err := ins(ctx1, v); err != nil {
			t.Fatal(err)
		}
	}
	d1 := a.sm.TxInterruptContext()
	if d1 == nil || d1.Err() != nil {
		t.Fatalf("interrupt context after two statements: %v", d1)
	}
	// Another context with the same Done ends with it: shared too.
	if err := ins(context.WithValue(ctx1, ctxKey{}, 1), "c"); err != nil {
		t.Fatal(err)
	}
	if a.sm.TxInterruptContext() != d1 {
		t.Error("a context with the same Done got an interrupt context of its own")
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if err := ins(ctx2, "d"); err != nil {
		t.Fatal(err)
	}
	d2 := a.sm.TxInterruptContext()
	if d2 == d1 || d1.Err() == nil {
		t.Error("the first interrupt context was kept or not released under another context")
	}
	cmd, err := a.sm.CommitCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	a.must(a.apply(cmd))
	if d2.Err() == nil {
		t.Error("the interrupt context outlived the committed transaction")
	}
	if n := a.count(); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}

	// The shared context ends with its statements' context: the next
	// statement aborts the transaction.
	o = begin()
	ctx3, cancel3 := context.WithCancel(context.Background())
	if err := ins(ctx3, "e"); err != nil {
		t.Fatal(err)
	}
	d3 := a.sm.TxInterruptContext()
	cancel3()
	if err := ins(ctx3, "f"); !errors.Is(err, nodeerr.ErrTxAborted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("statement after its context ended: %v, want ErrTxAborted and context.Canceled", err)
	}
	if a.sm.TxInterruptContext() != nil || d3.Err() == nil {
		t.Error("the aborted transaction left its interrupt context")
	}
	if _, err := a.sm.CommitCommand(o); !errors.Is(err, nodeerr.ErrTxAborted) {
		t.Fatalf("commit after the abort: %v", err)
	}

	// And with Interrupt.
	begin()
	ctx4, cancel4 := context.WithCancel(context.Background())
	defer cancel4()
	if err := ins(ctx4, "g"); err != nil {
		t.Fatal(err)
	}
	d4 := a.sm.TxInterruptContext()
	a.sm.Interrupt()
	select { // Interrupt ends it from a goroutine of its own
	case <-d4.Done():
	case <-time.After(time.Minute):
		t.Fatal("Interrupt left the shared interrupt context running")
	}
	if err := ins(ctx4, "h"); !errors.Is(err, nodeerr.ErrTxAborted) || !errors.Is(err, replication.ErrInterrupted) {
		t.Fatalf("statement after Interrupt: %v, want ErrTxAborted and ErrInterrupted", err)
	}
}

// The writer's statement cache holds no whole-transaction text, so a cached
// text needs no reading before it runs; a whole-transaction text made of
// cached statements still runs whole or not at all.
func TestCachedTextsAreNoTransactions(t *testing.T) {
	a := newApplier(t)
	a.must(a.exec(replication.Origin{}, `INSERT INTO t(v) VALUES ('x1')`))
	r := a.must(a.exec(replication.Origin{}, `BEGIN; INSERT INTO t(v) VALUES ('x2'); INSERT INTO t(v) VALUES ('x1'); COMMIT;`))
	if r.Results[0].Err == nil {
		t.Fatal("a duplicate inside a transaction text succeeded")
	}
	a.must(a.exec(replication.Origin{}, `BEGIN; INSERT INTO t(v) VALUES ('x3'); COMMIT;`))
	if r := a.must(a.exec(replication.Origin{}, `BEGIN; INSERT INTO t(v) VALUES ('x3'); COMMIT;`)); r.Results[0].Err == nil {
		t.Fatal("the duplicate of a cached body succeeded")
	}
	o := replication.Origin{Node: "n1", Session: 1, Seq: 1}
	if err := a.sm.BeginTx(o, 1e18, 1, 0); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"y1", "y2", "y3"} {
		st := replication.Statement{SQL: `INSERT INTO t(v) VALUES (?)`, Args: []replication.Arg{{Ordinal: 1, Value: v}}}
		if _, err := a.sm.ExecTx(context.Background(), o, st, false); err != nil {
			t.Fatal(err)
		}
	}
	// Inside a transaction, a whole-transaction text whose body is cached
	// still runs whole (in a savepoint): the duplicate undoes x4.
	st := replication.Statement{SQL: `BEGIN; INSERT INTO t(v) VALUES ('x4'); INSERT INTO t(v) VALUES ('y1'); COMMIT;`}
	if _, err := a.sm.ExecTx(context.Background(), o, st, false); err == nil {
		t.Fatal("a duplicate inside a transaction text succeeded")
	}
	cmd, err := a.sm.CommitCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	a.must(a.apply(cmd))
	if n := a.count(); n != 5 { // x1, x3, y1-y3
		t.Fatalf("%d rows, want 5", n)
	}
	texts := a.sm.CachedTexts()
	if len(texts) == 0 {
		t.Fatal("nothing cached")
	}
	for _, q := range texts {
		if whole, err := replication.WholeTransaction(q); whole || err != nil {
			t.Errorf("cached %q: whole transaction %v, %v", q, whole, err)
		}
	}
}
