package extensions

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// local is a Replicator that applies commands to one machine at once, as a
// leader alone would, with a clock the test moves.
type local struct {
	mu    sync.Mutex
	m     *Machine
	index uint64
	term  uint64
	now   int64
	log   []*raft.Log
}

func newLocal() *local { return &local{m: NewMachine(), term: 1, now: 1e18} }

func (r *local) Machine() *Machine { return r.m }

func (r *local) Replicate(ctx context.Context, cmd Command, idempotent bool) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := MarshalEntry(r.now, []*Command{&cmd})
	if err != nil {
		return Result{}, err
	}
	r.index++
	l := &raft.Log{Index: r.index, Term: r.term, Type: raft.LogCommand, Data: data}
	r.log = append(r.log, l)
	out := r.m.Apply(l).(*Applied)
	if out.Err != nil {
		return Result{}, out.Err
	}
	return out.Results[0], nil
}

// advance moves the clock by d and ticks.
func (r *local) advance(t *testing.T, d time.Duration) {
	t.Helper()
	r.mu.Lock()
	r.now += int64(d)
	r.mu.Unlock()
	if _, err := r.Replicate(context.Background(), Command{Op: OpTick}, true); err != nil {
		t.Fatal(err)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range []*Command{
		{Op: OpSet, Time: -5, Cache: "c", Key: "k", Value: []byte("v"), TTL: 10},
		{Op: OpCompareAndSet, Cache: "ç", Key: "", Old: []byte{0}, HasOld: true, Value: []byte{}},
		{Op: OpAcquire, Cache: "lock", ID: 1 << 63, Token: 7, Wait: true, TTL: int64(time.Hour)},
		{Op: OpTick, Time: 1 << 62},
	} {
		b, _ := c.MarshalBinary()
		got, err := UnmarshalCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		want := *c
		if len(want.Value) == 0 {
			want.Value = nil
		}
		if got.Op != want.Op || got.Time != want.Time || got.Cache != want.Cache || got.Key != want.Key ||
			!bytes.Equal(got.Value, want.Value) || !bytes.Equal(got.Old, want.Old) || got.HasOld != want.HasOld ||
			got.TTL != want.TTL || got.ID != want.ID || got.Token != want.Token || got.Wait != want.Wait {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		for i := range b {
			if _, err := UnmarshalCommand(b[:i]); !errors.Is(err, ErrCorruptCommand) {
				t.Fatalf("%v truncated to %d bytes: %v", c.Op, i, err)
			}
		}
	}
	for _, r := range []Result{{}, {OK: true, Value: []byte{}, Token: 9}, {Queued: true, Value: []byte("x")}} {
		b, _ := r.MarshalBinary()
		got, err := UnmarshalResult(b)
		if err != nil || got.OK != r.OK || got.Queued != r.Queued || got.Token != r.Token || !bytes.Equal(got.Value, r.Value) || (got.Value == nil) != (r.Value == nil) {
			t.Fatalf("result %+v: got %+v, %v", r, got, err)
		}
	}
}

func TestCacheOps(t *testing.T) {
	r := newLocal()
	c := NewCache(r, "c")
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set(ctx, "a", []byte("1"), 0))
	must(c.Set(ctx, "b", []byte("2"), time.Second))
	if v, ok := c.Get("a"); !ok || string(v) != "1" {
		t.Fatalf("Get a = %q %v", v, ok)
	}
	if _, ok := NewCache(r, "other").Get("a"); ok {
		t.Fatal("caches share entries")
	}
	if ok, err := c.CompareAndSet(ctx, "a", []byte("x"), []byte("3"), 0); ok || err != nil {
		t.Fatalf("CAS with a wrong old value: %v %v", ok, err)
	}
	if ok, _ := c.CompareAndSet(ctx, "a", []byte("1"), []byte("3"), 0); !ok {
		t.Fatal("CAS with the right old value failed")
	}
	if ok, _ := c.CompareAndSet(ctx, "a", nil, []byte("4"), 0); ok {
		t.Fatal("CAS-if-absent replaced an entry")
	}
	if ok, _ := c.CompareAndSet(ctx, "new", nil, []byte{}, 0); !ok {
		t.Fatal("CAS-if-absent failed on a missing key")
	}
	if ok, _ := c.CompareAndSet(ctx, "new", []byte{}, []byte("5"), 0); !ok {
		t.Fatal("CAS of an empty value failed")
	}
	if v, ok, _ := c.GetAndDelete(ctx, "a"); !ok || string(v) != "3" {
		t.Fatalf("GetAndDelete = %q %v", v, ok)
	}
	if _, ok, _ := c.GetAndDelete(ctx, "a"); ok {
		t.Fatal("GetAndDelete of a deleted key found it")
	}
	if ok, _ := c.Delete(ctx, "new"); !ok {
		t.Fatal("Delete of an entry reported none")
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	// b expires a second after its Set, by the leader's clock.
	r.advance(t, 999*time.Millisecond)
	if _, ok := c.Get("b"); !ok {
		t.Fatal("b expired early")
	}
	if at, ok := r.m.NextDeadline(); !ok || at != 1e18+int64(time.Second) {
		t.Fatalf("NextDeadline = %d %v", at, ok)
	}
	r.advance(t, time.Millisecond)
	if _, ok := c.Get("b"); ok {
		t.Fatal("b did not expire")
	}
	// A Set replaces the TTL; the old deadline does not expire the new entry.
	must(c.Set(ctx, "t", []byte("1"), time.Second))
	must(c.Set(ctx, "t", []byte("2"), 0))
	r.advance(t, 2*time.Second)
	if v, ok := c.Get("t"); !ok || string(v) != "2" {
		t.Fatalf("t = %q %v after its TTL was removed", v, ok)
	}
	must(c.Clear(ctx))
	if c.Len() != 0 {
		t.Fatal("Clear left entries")
	}
	if err := c.Set(ctx, "x", nil, -1); err == nil {
		t.Fatal("negative TTL accepted")
	}
}

// Two machines that apply the same log, one through a snapshot, hold the
// same state.
func TestMachineSnapshotAndReplay(t *testing.T) {
	r := newLocal()
	c := NewCache(r, "c")
	ctx := context.Background()
	for i := range 50 {
		c.Set(ctx, string(rune('a'+i%26)), []byte{byte(i)}, time.Duration(i%3)*time.Second)
		if i%7 == 0 {
			r.advance(t, 500*time.Millisecond)
		}
	}
	l1, _ := Lock(ctx, r, "l", time.Minute)
	done := make(chan *Lease)
	go func() {
		l2, err := Lock(ctx, r, "l", time.Minute)
		if err != nil {
			t.Error(err)
		}
		done <- l2
	}()
	waitFor(t, func() bool { _, n := r.m.Holder("l"); return n == 1 })

	snap, err := r.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	fresh := NewMachine()
	if err := fresh.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	replay := NewMachine()
	replay.ApplyBatch(r.log)
	for _, m := range []*Machine{fresh, replay} {
		if !bytes.Equal(m.encodeLocked(), r.m.encodeLocked()) && !sameState(m, r.m) {
			t.Fatal("state differs")
		}
	}
	l1.Unlock(ctx)
	l2 := <-done
	if l2.Token() <= l1.Token() {
		t.Fatalf("token %d after %d", l2.Token(), l1.Token())
	}
	if err := fresh.Restore(io.NopCloser(bytes.NewReader([]byte{snapshotVersion, 1}))); err == nil {
		t.Fatal("a truncated snapshot restored")
	}
}

func sameState(a, b *Machine) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if a.now != b.now || a.token != b.token || len(a.caches) != len(b.caches) || len(a.locks) != len(b.locks) {
		return false
	}
	for name, c := range a.caches {
		d := b.caches[name]
		if len(c) != len(d) {
			return false
		}
		for k, e := range c {
			if f, ok := d[k]; !ok || !bytes.Equal(e.value, f.value) || e.expires != f.expires {
				return false
			}
		}
	}
	for name, ls := range a.locks {
		ms := b.locks[name]
		if ms == nil || ls.holder != ms.holder || ls.token != ms.token || ls.expires != ms.expires || !slices.Equal(ls.queue, ms.queue) {
			return false
		}
	}
	return true
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, "the condition", 10*time.Second, cond)
}

func TestLocksFIFO(t *testing.T) {
	r := newLocal()
	ctx := context.Background()
	first, err := Lock(ctx, r, "l", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(ctx, r, "l", time.Second); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("TryLock of a held lock: %v", err)
	}
	// Three waiters queue in order; the second gives up.
	type got struct {
		i     int
		lease *Lease
		err   error
	}
	results := make(chan got, 3)
	cancel2 := func() {}
	for i := range 3 {
		lctx := ctx
		if i == 1 {
			lctx, cancel2 = context.WithCancel(ctx)
		}
		go func() {
			l, err := Lock(lctx, r, "l", time.Second)
			results <- got{i, l, err}
		}()
		waitFor(t, func() bool { _, n := r.m.Holder("l"); return n == i+1 })
	}
	cancel2()
	if g := <-results; g.i != 1 || !errors.Is(g.err, context.Canceled) {
		t.Fatalf("cancelled waiter: %+v", g)
	}
	if _, n := r.m.Holder("l"); n != 2 {
		t.Fatalf("%d waiters after one left, want 2", n)
	}
	// The holder's lease expires by the leader's clock: waiter 0 gets it.
	r.advance(t, time.Second)
	select {
	case <-first.Lost():
	default:
		t.Fatal("expired lease not lost")
	}
	g := <-results
	if g.i != 0 || g.err != nil || g.lease.Token() <= first.Token() {
		t.Fatalf("after expiry: %+v (first token %d)", g, first.Token())
	}
	if err := first.Renew(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("renew of an expired lease: %v", err)
	}
	// Renewed, it outlives its first TTL; released, it goes to waiter 2.
	r.advance(t, 500*time.Millisecond)
	if err := g.lease.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	r.advance(t, 700*time.Millisecond)
	if tok, _ := r.m.Holder("l"); tok != g.lease.Token() {
		t.Fatal("renewed lease expired")
	}
	if err := g.lease.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	last := <-results
	if last.i != 2 || last.err != nil || last.lease.Token() <= g.lease.Token() {
		t.Fatalf("after unlock: %+v", last)
	}
	last.lease.Unlock(ctx)
	if tok, n := r.m.Holder("l"); tok != 0 || n != 0 {
		t.Fatalf("lock still held (%d) or waited for (%d)", tok, n)
	}
	if len(r.m.watchers) != 0 {
		t.Fatalf("%d watchers left", len(r.m.watchers))
	}
}

// Tokens keep growing across a restart of the whole group: the machine
// starts empty, but in a later term.
func TestTokensAcrossRestart(t *testing.T) {
	r := newLocal()
	ctx := context.Background()
	var last uint64
	for range 3 {
		l, err := Lock(ctx, r, "l", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if l.Token() <= last {
			t.Fatalf("token %d after %d", l.Token(), last)
		}
		last = l.Token()
		l.Unlock(ctx)
	}
	r2 := newLocal()
	r2.term = r.term + 1
	l, err := Lock(ctx, r2, "l", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l.Token() <= last {
		t.Fatalf("token %d after a restart, not above %d", l.Token(), last)
	}
}
