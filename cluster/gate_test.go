package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// long is a busy timeout no test waits out: a waiter that gets errBusy
// missed its wake-up.
const long = time.Hour

// waitGate polls until g has n waiters (parked on its channel) and fails
// the test after a minute.
func waitGate(t *testing.T, g *gate, n int) {
	t.Helper()
	waitfor.Cond(t, fmt.Sprintf("%d waiters at the gate", n), time.Minute, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.waiters == n
	})
}

// acquireAsync starts an acquire and returns the channel of its result.
func acquireAsync(ctx context.Context, g *gate, exclusive bool) <-chan error {
	done := make(chan error, 1)
	go func() { done <- g.acquire(ctx, exclusive, long) }()
	return done
}

func mustGet(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s: no wake-up (lost)", what)
	}
}

// Every change that can let a waiter in wakes it, whether or not a
// transaction waits: release of the last shared holder, release of the
// exclusive holder (nobody counted in waitingExcl then), and a waiting
// transaction that gives up.
func TestGateWakesWaiters(t *testing.T) {
	ctx := context.Background()
	t.Run("shared released", func(t *testing.T) {
		g := newGate()
		for range 2 {
			if err := g.acquire(ctx, false, long); err != nil {
				t.Fatal(err)
			}
		}
		excl := acquireAsync(ctx, g, true)
		waitGate(t, g, 1)
		g.release(false)
		g.release(false)
		mustGet(t, excl, "transaction after the writes")
	})
	t.Run("exclusive released", func(t *testing.T) {
		g := newGate()
		if err := g.acquire(ctx, true, long); err != nil {
			t.Fatal(err)
		}
		var writers []<-chan error
		for range 3 {
			writers = append(writers, acquireAsync(ctx, g, false))
		}
		waitGate(t, g, 3)
		g.release(true)
		for _, w := range writers {
			mustGet(t, w, "write after the transaction")
		}
	})
	t.Run("waiting transaction gives up", func(t *testing.T) {
		g := newGate()
		if err := g.acquire(ctx, false, long); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		excl := acquireAsync(cctx, g, true)
		waitGate(t, g, 1)
		writer := acquireAsync(ctx, g, false) // held back by the waiting transaction
		waitGate(t, g, 2)
		cancel()
		if err := <-excl; err == nil {
			t.Fatal("canceled transaction got the slot")
		}
		mustGet(t, writer, "write after the transaction gave up")
	})
}

// Many writers and transactions taking turns: none may wait out its busy
// timeout, and the slot is never shared with a transaction.
func TestGateNoLostWakeUp(t *testing.T) {
	g := newGate()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		shared int
		excl   bool
	)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for range 300 {
				exclusive := r.IntN(8) == 0
				if err := g.acquire(context.Background(), exclusive, long); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if excl || (exclusive && shared > 0) {
					t.Error("a transaction shares the write slot")
				}
				if exclusive {
					excl = true
				} else {
					shared++
				}
				mu.Unlock()
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(50)) * time.Microsecond) // hold the slot a little
				}
				mu.Lock()
				if exclusive {
					excl = false
				} else {
					shared--
				}
				mu.Unlock()
				g.release(exclusive)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("writers stuck: a wake-up was lost")
	}
}
