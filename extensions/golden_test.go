package extensions

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/hiqlite/hiqlite/internal/golden"
)

// goldenCommands are the cache group's commands pinned by testdata/golden,
// one per op.
func goldenCommands() []Command {
	return []Command{
		{Op: OpSet, Time: 1_700_000_000_000_000_000, Cache: "sessions", Key: "k☃", Value: []byte{0, 1, 0xff}, TTL: 60e9},
		{Op: OpDelete, Time: 2, Cache: "c", Key: "k"},
		{Op: OpCompareAndSet, Time: 3, Cache: "c", Key: "k", Value: []byte("new"), Old: []byte("old"), HasOld: true, TTL: 1},
		{Op: OpGetAndDelete, Time: 4, Cache: "c", Key: "k"},
		{Op: OpTick, Time: -5},
		{Op: OpAcquire, Time: 6, Cache: "lock", TTL: 10e9, ID: 1 << 40, Wait: true},
		{Op: OpRenew, Time: 7, Cache: "lock", TTL: 10e9, ID: 9, Token: 300},
		{Op: OpRelease, Time: 8, Cache: "lock", ID: 9, Token: 300},
		{Op: OpClear, Time: 9, Cache: "c"},
	}
}

func TestGoldenCommands(t *testing.T) {
	for _, c := range goldenCommands() {
		name := fmt.Sprintf("cache_command_v1_%s", bytes.ReplaceAll([]byte(c.Op.String()), []byte("-"), []byte("_")))
		t.Run(name, func(t *testing.T) {
			enc, _ := c.MarshalBinary()
			b := golden.Bytes(t, name, fmt.Sprintf("Cache group command, version 1: %+v", c), enc)
			if !bytes.Equal(enc, b) {
				t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
			}
			got, err := UnmarshalCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c) {
				t.Errorf("decoded %+v\nwant %+v", *got, c)
			}
			if again, _ := got.MarshalBinary(); !bytes.Equal(again, b) {
				t.Errorf("re-encoding: %x\nwant %x", again, b)
			}
		})
	}
}

func TestGoldenEntry(t *testing.T) {
	cmds := goldenCommands()[:3]
	ptrs := []*Command{&cmds[0], &cmds[1], &cmds[2]}
	const at = 1_700_000_000_000_000_001
	enc, _ := MarshalEntry(at, ptrs)
	b := golden.Bytes(t, "cache_entry_v1", "Cache group log entry, version 1: time 1700000000000000001 and three\ncommands (set, delete, compare-and-set), which take the entry's time", enc)
	if !bytes.Equal(enc, b) {
		t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
	}
	gt, got, err := UnmarshalEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	if gt != at || !reflect.DeepEqual(got, cmds) {
		t.Errorf("decoded %d %+v\nwant %d %+v", gt, got, int64(at), cmds)
	}
	gp := []*Command{&got[0], &got[1], &got[2]}
	if again, _ := MarshalEntry(gt, gp); !bytes.Equal(again, b) {
		t.Errorf("re-encoding: %x\nwant %x", again, b)
	}
}

func TestGoldenResults(t *testing.T) {
	for _, c := range []struct {
		name, comment string
		r             Result
	}{
		{"cache_result_v1_value", "Cache group result: OK with a 2-byte value and token 7", Result{OK: true, Value: []byte{1, 2}, Token: 7}},
		{"cache_result_v1_empty_value", "Cache group result: queued, an empty (not nil) value", Result{Queued: true, Value: []byte{}}},
		{"cache_result_v1_zero", "Cache group result: the zero result (no value)", Result{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, err := c.r.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			b := golden.Bytes(t, c.name, c.comment, enc)
			if !bytes.Equal(enc, b) {
				t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
			}
			got, err := UnmarshalResult(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.r) {
				t.Errorf("decoded %+v\nwant %+v", got, c.r)
			}
			if again, _ := got.MarshalBinary(); !bytes.Equal(again, b) {
				t.Errorf("re-encoding: %x\nwant %x", again, b)
			}
		})
	}
}

func TestGoldenSnapshot(t *testing.T) {
	m := NewMachine()
	m.applied.Store(7)
	m.now, m.token = 50, 2
	m.caches["c"] = map[string]entry{"k": {value: []byte{1, 2}, expires: 100}}
	m.locks["l"] = &lockState{holder: 1, token: 2, ttl: 10, expires: 110, queue: []waiter{{id: 3, ttl: 20}}}
	enc := m.encodeLocked()
	b := golden.Bytes(t, "cache_snapshot_v1", "Cache group snapshot, version 1: applied 7, time 50, token 2; cache c\n"+
		"holding k = 01 02 expiring at 100; lock l held by 1 (token 2, ttl 10, expires\n110) with waiter 3 (ttl 20) queued", enc)
	if !bytes.Equal(enc, b) {
		t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
	}
	r := NewMachine()
	if err := r.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
	if r.applied.Load() != 7 || r.now != 50 || r.token != 2 || !reflect.DeepEqual(r.caches, m.caches) || !reflect.DeepEqual(r.locks, m.locks) {
		t.Errorf("restored %d %d %d %v %v", r.applied.Load(), r.now, r.token, r.caches, r.locks)
	}
	if again := r.encodeLocked(); !bytes.Equal(again, b) {
		t.Errorf("re-encoding: %x\nwant %x", again, b)
	}
}
