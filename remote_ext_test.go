package hiqlite_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestRemoteExtensions: caches, locks with fencing tokens and
// notifications through a remote client, as on a member.
func TestRemoteExtensions(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	f := c.Follower()
	db := openRemote(t, c, f)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := hiqlite.ClientOf(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hiqlite.ClientOf(ctx, c.Members[0].DB); err == nil {
		t.Fatal("ClientOf took a node's *sql.DB")
	}
	if _, err := hiqlite.NodeOf(ctx, db); err == nil || !strings.Contains(err.Error(), "use ClientOf") {
		t.Fatalf("NodeOf of a remote client: %v, want a pointer to ClientOf", err)
	}
	var ext hiqlite.Extensions = cl

	// Caches.
	cache := ext.Cache("remote")
	if err := cache.Set(ctx, "k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := cache.GetContext(ctx, "k"); err != nil || !ok || string(v) != "v1" {
		t.Fatalf("Get after Set: %q %v %v", v, ok, err)
	}
	if ok, err := cache.CompareAndSet(ctx, "k", []byte("nope"), []byte("v2"), 0); err != nil || ok {
		t.Fatalf("CompareAndSet with a wrong old value: %v %v", ok, err)
	}
	if ok, err := cache.CompareAndSet(ctx, "k", []byte("v1"), []byte("v2"), 0); err != nil || !ok {
		t.Fatalf("CompareAndSet: %v %v", ok, err)
	}
	if ok, err := cache.CompareAndSet(ctx, "new", nil, []byte{}, 0); err != nil || !ok {
		t.Fatalf("CompareAndSet of an absent key: %v %v", ok, err)
	}
	if v, ok := cache.Get("new"); !ok || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %v %v", v, ok)
	}
	if n := cache.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	// A member sees what the client wrote.
	node := c.Members[c.Leader()].Node
	clustertest.WaitFor(t, "the leader's replica to hold k", 10*time.Second, func() bool {
		v, _ := node.Cache("remote").Get("k")
		return bytes.Equal(v, []byte("v2"))
	})
	if v, ok, err := cache.GetAndDelete(ctx, "k"); err != nil || !ok || string(v) != "v2" {
		t.Fatalf("GetAndDelete: %q %v %v", v, ok, err)
	}
	if ok, err := cache.Delete(ctx, "k"); err != nil || ok {
		t.Fatalf("Delete of a deleted key: %v %v", ok, err)
	}
	if err := cache.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.Get("new"); ok {
		t.Fatal("an entry survived Clear")
	}

	// Locks: fencing tokens grow, a held lock refuses TryLock, Unlock
	// closes Lost and hands the lock on.
	l1, err := ext.Lock(ctx, "job", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ext.TryLock(ctx, "job", time.Second); !errors.Is(err, hiqlite.ErrLockHeld) {
		t.Fatalf("TryLock of a held lock: %v, want ErrLockHeld", err)
	}
	if _, err := node.TryLock(ctx, "job", time.Second); !errors.Is(err, hiqlite.ErrLockHeld) {
		t.Fatalf("a member's TryLock of the client's lock: %v, want ErrLockHeld", err)
	}
	if err := l1.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l1.Lost():
	default:
		t.Fatal("Lost is open after Unlock")
	}
	if err := l1.Renew(ctx); !errors.Is(err, hiqlite.ErrLockLost) {
		t.Fatalf("Renew after Unlock: %v, want ErrLockLost", err)
	}
	l2, err := ext.TryLock(ctx, "job", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Token() <= l1.Token() {
		t.Fatalf("fencing token %d after %d", l2.Token(), l1.Token())
	}
	// A waiter whose context ends leaves the queue; one that waits gets
	// the lock when it is released.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = ext.Lock(short, "job", time.Second)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past its deadline: %v, want context.DeadlineExceeded", err)
	}
	clustertest.WaitFor(t, "the abandoned waiter to leave the queue", 10*time.Second, func() bool {
		return hiqlite.Waiting(node, "job") == 0
	})
	got := make(chan *hiqlite.Lease, 1)
	go func() {
		l, err := ext.Lock(ctx, "job", 30*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	clustertest.WaitFor(t, "the remote waiter in the queue", 10*time.Second, func() bool {
		return hiqlite.Waiting(node, "job") == 1
	})
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	l3 := <-got
	if l3 == nil || l3.Token() <= l2.Token() {
		t.Fatalf("the waiter's lease: %v", l3)
	}
	if err := l3.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	// Notifications: from a member's Notify and from SQL through the
	// client, in order; Close ends Next.
	mustExec(t, db, `CREATE TABLE n(a)`)
	lis, err := ext.Listen(ctx, "chan")
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Notify(ctx, "chan", "one"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `INSERT INTO n SELECT hiqlite_notify('chan', 'two')`)
	if err := ext.Notify(ctx, "chan", "three"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two", "three"} {
		m, err := lis.Next(ctx)
		if err != nil || m.Payload != want || m.Channel != "chan" || m.Index == 0 {
			t.Fatalf("Next: %+v %v, want %q", m, err, want)
		}
	}
	// A buffer too large to allocate is refused by the member, which goes
	// on serving (it once allocated whatever the client asked for).
	if huge, err := ext.Listen(ctx, "huge", hiqlite.ListenBuffer(1<<40)); err == nil || !strings.Contains(err.Error(), "1099511627776") {
		if huge != nil {
			huge.Close()
		}
		t.Fatalf("Listen with a buffer of 1<<40: %v, want an error naming the size", err)
	}
	if err := c.Members[f].Node.Notify(ctx, "huge", "still up"); err != nil {
		t.Fatalf("the member after a refused Listen: %v", err)
	}
	// A full buffer drops the oldest and counts it: the member's
	// listener, read remotely, says so.
	small, err := ext.Listen(ctx, "small", hiqlite.ListenBuffer(1))
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	for _, p := range []string{"a", "b", "c"} {
		// Notify returns once the sending member delivered it: the
		// member the client listens on.
		if err := c.Members[f].Node.Notify(ctx, "small", p); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := small.Next(ctx); err != nil || m.Payload != "c" || m.Missed != 2 {
		t.Fatalf("after an overflow: %+v %v, want c with 2 missed", m, err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := lis.Next(ctx)
		done <- err
	}()
	lis.Close()
	if err := <-done; !errors.Is(err, hiqlite.ErrListenerClosed) {
		t.Fatalf("Next after Close: %v, want ErrListenerClosed", err)
	}
}
