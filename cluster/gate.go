package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// gate admits writes on the leader, as SQLite's write lock does for one
// file: any number of autocommit writes at once (they share Raft batches),
// or one interactive write transaction alone. A waiting transaction stops new
// autocommit writes from entering, so it cannot starve.
//
// mu guards every field; changed is closed and replaced whenever the state
// changes, which wakes all waiters to re-check.
type gate struct {
	mu          sync.Mutex
	shared      int
	exclusive   bool
	waitingExcl int
	changed     chan struct{}
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

func (g *gate) broadcastLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// errBusy is what a writer gets after waiting busy for the write slot.
func errBusy(busy time.Duration) error {
	return fmt.Errorf("hiqlite: a write transaction held the write slot for longer than _busy=%v: %w", busy, sqlite3.BUSY)
}

// acquire waits up to busy (or ctx) for the slot; exclusive for a
// transaction, shared for an autocommit write.
func (g *gate) acquire(ctx context.Context, exclusive bool, busy time.Duration) error {
	var timeout <-chan time.Time
	g.mu.Lock()
	if exclusive {
		g.waitingExcl++
		defer func() {
			g.mu.Lock()
			g.waitingExcl--
			g.broadcastLocked()
			g.mu.Unlock()
		}()
	}
	for {
		if exclusive && !g.exclusive && g.shared == 0 {
			g.exclusive = true
			g.mu.Unlock()
			return nil
		}
		if !exclusive && !g.exclusive && g.waitingExcl == 0 {
			g.shared++
			g.mu.Unlock()
			return nil
		}
		ch := g.changed
		g.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(busy)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ch:
		case <-timeout:
			return errBusy(busy)
		case <-ctx.Done():
			return ctx.Err()
		}
		g.mu.Lock()
	}
}

func (g *gate) release(exclusive bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if exclusive {
		g.exclusive = false
	} else {
		g.shared--
	}
	g.broadcastLocked()
}
