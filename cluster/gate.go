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
// changes while someone waits on it (waiters > 0), which wakes them all to
// re-check. A waiter counts itself and takes changed under mu before it
// lets go of mu, so a change after that always closes its channel.
type gate struct {
	mu          sync.Mutex
	shared      int
	exclusive   bool
	waitingExcl int
	waiters     int // goroutines in acquire waiting on changed
	changed     chan struct{}
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// wakeLocked wakes the waiters, if any, to re-check the state.
func (g *gate) wakeLocked() {
	if g.waiters == 0 {
		return
	}
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
			g.wakeLocked()
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
		g.waiters++
		g.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(busy)
			defer t.Stop()
			timeout = t.C
		}
		var err error
		select {
		case <-ch:
		case <-timeout:
			err = errBusy(busy)
		case <-ctx.Done():
			err = ctx.Err()
		}
		g.mu.Lock()
		g.waiters--
		if err != nil {
			g.mu.Unlock()
			return err
		}
	}
}

// tryShared takes k shared places at once if autocommit writes may enter
// now (no transaction holds the slot or waits for it), else none.
func (g *gate) tryShared(k int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exclusive || g.waitingExcl > 0 {
		return false
	}
	g.shared += k
	return true
}

func (g *gate) release(exclusive bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if exclusive {
		g.exclusive = false
	} else {
		g.shared--
	}
	g.wakeLocked()
}
