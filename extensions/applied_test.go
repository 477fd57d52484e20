package extensions

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// An entry the machine cannot decode, corrupt or of a newer format, stops
// it: the entry is not skipped, nothing after it is applied, its applied
// index stays before it, waits for later entries end with the fault, and
// the fault says which entry and what to do.
func TestMachineStopsOnUndecodableEntry(t *testing.T) {
	set := func(key, value string) []byte {
		b, err := MarshalEntry(1e18, []*Command{{Op: OpSet, Cache: "c", Key: key, Value: []byte(value)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	newer := set("k2", "v2")
	newer[0] = entryVersion + 1
	for _, tc := range []struct {
		name  string
		bad   []byte
		match error
		says  string
	}{
		{"newer version", newer, encoding.ErrUnknownVersion, "upgrade this node"},
		{"corrupt", []byte{entryVersion, 0xff}, ErrCorruptCommand, "restart the node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine()
			apply := func(i uint64, data []byte) *Applied {
				return m.Apply(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data}).(*Applied)
			}
			if out := apply(1, set("k1", "v1")); out.Err != nil {
				t.Fatal(out.Err)
			}
			out := apply(2, tc.bad)
			if !errors.Is(out.Err, nodeerr.ErrStopped) || !errors.Is(out.Err, tc.match) {
				t.Fatalf("entry 2: %v, want ErrStopped and %v", out.Err, tc.match)
			}
			if msg := out.Err.Error(); !strings.Contains(msg, "entry 2") || !strings.Contains(msg, tc.says) {
				t.Errorf("fault %q: want it to name entry 2 and say %q", msg, tc.says)
			}
			select {
			case <-m.Faulted():
			default:
				t.Fatal("Faulted not closed after the fault")
			}
			if err := m.Fault(); err != out.Err {
				t.Errorf("Fault() = %v, want the entry's error %v", err, out.Err)
			}
			// A good entry after the fault is not applied.
			if out := apply(3, set("k3", "v3")); out.Err != m.Fault() {
				t.Errorf("entry 3 after the fault: %v, want the fault", out.Err)
			}
			if _, ok := m.Get("c", "k3"); ok {
				t.Error("entry 3 was applied after the fault")
			}
			if v, ok := m.Get("c", "k1"); !ok || string(v) != "v1" {
				t.Errorf("k1 = %q, %v: the state before the fault was lost", v, ok)
			}
			if got := m.AppliedIndex(); got != 1 {
				t.Errorf("AppliedIndex = %d, want 1 (the last entry applied)", got)
			}
			if err := m.WaitApplied(3, make(chan struct{})); err != m.Fault() {
				t.Errorf("WaitApplied(3) = %v, want the fault", err)
			}
			if err := m.WaitApplied(1, make(chan struct{})); err != nil {
				t.Errorf("WaitApplied(1) = %v, want nil", err)
			}
			// raft would label a snapshot with its own index, past the
			// entry the machine could not apply.
			if _, err := m.Snapshot(); err != m.Fault() {
				t.Errorf("Snapshot after the fault: %v, want the fault", err)
			}
		})
	}
}
