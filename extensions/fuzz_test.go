package extensions

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzUnmarshalEntry: arbitrary bytes never panic the decoder or the
// machine, and whatever decodes encodes back to the same bytes.
func FuzzUnmarshalEntry(f *testing.F) {
	cmds := []*Command{
		{Op: OpSet, Cache: "c", Key: "k", Value: []byte("v"), TTL: 5},
		{Op: OpCompareAndSet, Cache: "c", Key: "k", Old: []byte("v"), HasOld: true, Value: []byte("w")},
		{Op: OpAcquire, Cache: "l", ID: 7, TTL: 1e9, Wait: true},
		{Op: OpRelease, Cache: "l", ID: 7, Token: 1 << 41},
		{Op: OpTick},
	}
	for i := range cmds {
		b, _ := MarshalEntry(int64(i)*1e9, cmds[:i+1])
		f.Add(b)
	}
	f.Add([]byte{entryVersion, 0, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := NewMachine()
		m.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data})
		tm, cmds, err := UnmarshalEntry(data)
		if err != nil {
			return
		}
		ptrs := make([]*Command, len(cmds))
		for i := range cmds {
			ptrs[i] = &cmds[i]
		}
		again, err := MarshalEntry(tm, ptrs)
		if err != nil {
			t.Fatal(err)
		}
		tm2, cmds2, err := UnmarshalEntry(again)
		if err != nil || tm2 != tm || !reflect.DeepEqual(cmds, cmds2) {
			t.Fatalf("re-encoded entry decodes to %v %+v, %v; want %v %+v", tm2, cmds2, err, tm, cmds)
		}
	})
}

var t0 = context.Background()

// FuzzRestore: an arbitrary snapshot never panics Restore, and one that
// restores snapshots to the same state.
func FuzzRestore(f *testing.F) {
	r := newLocal()
	c := NewCache(r, "c")
	c.Set(t0, "a", []byte("1"), 0)
	c.Set(t0, "b", []byte("2"), 1e9)
	Lock(t0, r, "l", 1e9)
	TryLock(t0, r, "l", 1e9)
	f.Add(r.m.encodeLocked())
	f.Add(EmptyState())
	f.Fuzz(func(t *testing.T, data []byte) {
		m := NewMachine()
		if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			return
		}
		again := NewMachine()
		if err := again.Restore(io.NopCloser(bytes.NewReader(m.encodeLocked()))); err != nil {
			t.Fatal(err)
		}
		if !sameState(m, again) {
			t.Fatal("a restored snapshot snapshots to another state")
		}
	})
}

// FuzzUnmarshalCommand: a command (as CacheRequest carries it) never
// panics the decoder, and whatever decodes encodes to bytes that decode to
// the same command.
func FuzzUnmarshalCommand(f *testing.F) {
	for _, c := range goldenCommands() {
		b, _ := c.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{commandVersion + 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := UnmarshalCommand(data)
		if err != nil {
			return
		}
		if len(c.Value)+len(c.Old)+len(c.Key)+len(c.Cache) > len(data) {
			t.Fatalf("%d bytes of fields from %d bytes", len(c.Value)+len(c.Old)+len(c.Key)+len(c.Cache), len(data))
		}
		b, _ := c.MarshalBinary()
		c2, err := UnmarshalCommand(b)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", c, c2, err)
		}
	})
}

// FuzzUnmarshalResult: a result never panics the decoder, and whatever
// decodes encodes to bytes that decode to the same result.
func FuzzUnmarshalResult(f *testing.F) {
	for _, r := range []Result{{OK: true, Value: []byte{1}, Token: 9}, {Queued: true, Value: []byte{}}, {}} {
		b, _ := r.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := UnmarshalResult(data)
		if err != nil {
			return
		}
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := UnmarshalResult(b)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", r, r2, err)
		}
	})
}
