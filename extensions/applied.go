package extensions

import (
	"errors"
	"fmt"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// stop is the fail-stop of the machine (mu held for writing): an entry it
// cannot decode, whether corrupt or of a newer format than this code reads,
// is neither skipped nor guessed at, since every other member applies it.
// The machine applies nothing more, its applied index stays before the
// entry, and Faulted tells the node, which logs the error and shuts the
// group down on this node. It returns the fault.
func (m *Machine) stop(index uint64, err error) error {
	why := "restart the node once the cause is fixed"
	if errors.Is(err, encoding.ErrUnknownVersion) {
		why = "upgrade this node to the version of hiqlite that wrote it"
	}
	m.fault = fmt.Errorf("%w: the cache group stopped: its entry %d cannot be applied (%w); %s", nodeerr.ErrStopped, index, err, why)
	close(m.faulted)
	return m.fault
}

// Fault returns why the machine stopped applying entries, or nil. The error
// matches nodeerr.ErrStopped (hiqlite.ErrStopped), every later entry's
// error is this one, and it matches the decoding error of the entry (with errors.Is:
// encoding.ErrUnknownVersion for a newer format, ErrCorruptCommand for a
// corrupt one).
func (m *Machine) Fault() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.fault
}

// Faulted is closed when the machine stops (see Fault).
func (m *Machine) Faulted() <-chan struct{} { return m.faulted }

// AppliedIndex is the Raft index of the last entry the machine applied.
func (m *Machine) AppliedIndex() uint64 { return m.applied.Load() }

// WaitApplied blocks until the machine has applied index, or done is
// closed, or the machine stopped before applying it (then it returns the
// fault).
func (m *Machine) WaitApplied(index uint64, done <-chan struct{}) error {
	for {
		m.waitMu.Lock()
		ch := m.waitCh
		m.waitMu.Unlock()
		if m.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-m.faulted:
			if m.applied.Load() >= index {
				return nil
			}
			return m.Fault()
		case <-done:
			return errors.New("hiqlite: gave up waiting for the cache state machine")
		}
	}
}

// broadcast wakes the waits of WaitApplied after applied moved.
func (m *Machine) broadcast() {
	m.waitMu.Lock()
	close(m.waitCh)
	m.waitCh = make(chan struct{})
	m.waitMu.Unlock()
}
