package hiqlite_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

func TestLockSingleNode(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	n := nodeOf(t, db)
	ctx := context.Background()
	l, err := n.Lock(ctx, "job", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.TryLock(ctx, "job", time.Minute); !errors.Is(err, hiqlite.ErrLockHeld) {
		t.Fatalf("TryLock of a held lock: %v", err)
	}
	// A waiter that gives up leaves the queue: the next Unlock frees the lock.
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := n.Lock(wctx, "job", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with a deadline: %v", err)
	}
	if err := l.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	default:
		t.Fatal("Lost not closed by Unlock")
	}
	again, err := n.TryLock(ctx, "job", time.Minute)
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	if again.Token() <= l.Token() {
		t.Fatalf("token %d after %d", again.Token(), l.Token())
	}
	// A lease that is not renewed expires, and is lost.
	short, err := n.Lock(ctx, "short", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-short.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("an expired lease is not lost")
	}
	next, err := n.Lock(ctx, "short", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := short.Renew(ctx); !errors.Is(err, hiqlite.ErrLockLost) {
		t.Fatalf("Renew of an expired lease: %v", err)
	}
	next.Unlock(ctx)
}

// Mutual exclusion under contention from every node: a counter updated
// with a read, a yield and a write loses no update, no two holders are
// ever inside at once, and each holder's token is above the one before.
func TestClusterLockContention(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const perWorker, workersPerNode = 8, 2
	var (
		counter   atomic.Int64
		inside    atomic.Int32
		lastToken atomic.Uint64
		wg        sync.WaitGroup
	)
	errs := make(chan error, len(c.Members)*workersPerNode)
	for _, m := range c.Members {
		for range workersPerNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWorker {
					l, err := m.Node.Lock(ctx, "counter", time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if inside.Add(1) != 1 {
						errs <- errors.New("two holders inside at once")
					}
					if prev := lastToken.Load(); l.Token() <= prev {
						errs <- errors.New("token did not grow")
					}
					lastToken.Store(l.Token())
					v := counter.Load()
					runtime.Gosched()
					counter.Store(v + 1)
					inside.Add(-1)
					if err := l.Unlock(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, want := counter.Load(), int64(len(c.Members)*workersPerNode*perWorker); got != want {
		t.Fatalf("counter = %d, want %d", got, want)
	}
}

// The lease of a holder that crashes expires, and the waiter gets the lock.
func TestClusterLockHolderKilled(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := c.Follower()
	w := (h + 1) % len(c.Members)
	held, err := c.Members[h].Node.Lock(ctx, "leader-job", 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *hiqlite.Lease, 1)
	werr := make(chan error, 1)
	go func() {
		l, err := c.Members[w].Node.Lock(ctx, "leader-job", time.Minute)
		if err != nil {
			werr <- err
			return
		}
		got <- l
	}()
	// Wait until the waiter is queued (Renew keeps the holder's lease
	// alive meanwhile), then crash the holder.
	clustertest.WaitFor(t, "the waiter to queue", 30*time.Second, func() bool {
		if err := held.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			t.Fatal("the waiter got a held lock")
		default:
		}
		return hiqlite.Waiting(c.Members[w].Node, "leader-job") == 1
	})
	c.Kill(h)
	select {
	case <-held.Lost():
	default:
		t.Fatal("a closed node's lease is not lost")
	}
	select {
	case l := <-got:
		if l.Token() <= held.Token() {
			t.Fatalf("waiter's token %d not above the crashed holder's %d", l.Token(), held.Token())
		}
		if err := l.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	case err := <-werr:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("the waiter never got the lock of the crashed holder")
	}
}
