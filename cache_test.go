package hiqlite_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

func TestCacheSingleNode(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	n := nodeOf(t, db)
	ctx := context.Background()
	c := n.Cache("sessions")
	if err := c.Set(ctx, "a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get("a"); !ok || string(v) != "1" {
		t.Fatalf("Get = %q %v", v, ok)
	}
	if ok, err := c.CompareAndSet(ctx, "a", []byte("1"), []byte("2"), 0); !ok || err != nil {
		t.Fatalf("CompareAndSet = %v %v", ok, err)
	}
	if v, ok, err := c.GetAndDelete(ctx, "a"); !ok || err != nil || string(v) != "2" {
		t.Fatalf("GetAndDelete = %q %v %v", v, ok, err)
	}
	// Reached through conn.Raw too.
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = sc.Raw(func(dc any) error {
		return dc.(hiqlite.NodeConn).Node().Cache("sessions").Set(ctx, "short", []byte("x"), 50*time.Millisecond)
	})
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("short"); !ok {
		t.Fatal("a fresh entry with a TTL is missing")
	}
	clustertest.WaitFor(t, "the entry to expire", 10*time.Second, func() bool { _, ok := c.Get("short"); return !ok })
}

// Values and expiry agree on every node: each node writes (followers
// forward to the cache group's leader), every node reads the same, and
// entries with a TTL disappear everywhere.
func TestClusterCache(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	ctx := context.Background()
	caches := make([]*hiqlite.Cache, len(c.Members))
	for i, m := range c.Members {
		caches[i] = m.Node.Cache("c")
	}
	// Once a write went through, every member names the same cache
	// leader, a member.
	if err := caches[0].Set(ctx, "first", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "every member to know the cache group's leader", 30*time.Second, func() bool {
		id0, addr0 := c.Members[0].Node.CacheLeader()
		for _, m := range c.Members {
			if id, addr := m.Node.CacheLeader(); id == "" || id != id0 || addr != addr0 {
				return false
			}
		}
		return true
	})
	leaders := 0
	for _, m := range c.Members {
		if hiqlite.CacheLeads(m.Node) {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d members lead the cache group by CacheLeader, want 1", leaders)
	}
	if _, err := caches[0].Delete(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	for i, cache := range caches {
		for j := range 10 {
			key := fmt.Sprintf("k%d-%d", i, j)
			ttl := time.Duration(0)
			if j%2 == 1 {
				ttl = 300 * time.Millisecond
			}
			if err := cache.Set(ctx, key, []byte(key), ttl); err != nil {
				t.Fatal(err)
			}
			// Read your writes on the node that wrote.
			if v, ok := cache.Get(key); !ok && ttl == 0 || ok && string(v) != key {
				t.Fatalf("%s reads %q %v right after its Set", c.Members[i].ID, v, ok)
			}
		}
	}
	// CompareAndSet is atomic across nodes: exactly one of the nodes wins.
	won := make(chan bool, len(caches))
	for i, cache := range caches {
		go func() {
			ok, err := cache.CompareAndSet(ctx, "once", nil, []byte(c.Members[i].ID), 0)
			if err != nil {
				t.Error(err)
			}
			won <- ok
		}()
	}
	winners := 0
	for range caches {
		if <-won {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d nodes won the CompareAndSet of an absent key", winners)
	}
	// Every odd key expires everywhere; every even key stays everywhere.
	state := func(cache *hiqlite.Cache) []string {
		var s []string
		for i := range caches {
			for j := range 10 {
				key := fmt.Sprintf("k%d-%d", i, j)
				if v, ok := cache.Get(key); ok {
					s = append(s, string(v))
				}
			}
		}
		v, _ := cache.Get("once")
		return append(s, "once="+string(v))
	}
	for i, cache := range caches {
		clustertest.WaitFor(t, c.Members[i].ID+" to expire the entries with a TTL", 30*time.Second, func() bool {
			return len(state(cache)) == 3*5+1
		})
	}
	ref := state(caches[0])
	for i := range caches {
		if got := state(caches[i]); !slices.Equal(got, ref) {
			t.Fatalf("%s holds %q, %s holds %q", c.Members[i].ID, got, c.Members[0].ID, ref)
		}
		if n := caches[i].Len(); n != 16 {
			t.Fatalf("%s: Len = %d, want 16", c.Members[i].ID, n)
		}
	}
}

// The cache group's members keep their memory only while they run: a
// restarted node is caught up by the group's leader, a node added later
// joins the group, and the whole cluster restarted starts with empty
// caches, in a later term, so fencing tokens keep growing.
func TestClusterCacheRestart(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := c.Leader()
	if err := c.Members[l].Node.Cache("c").Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	lease, err := c.Members[l].Node.Lock(ctx, "l", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	has := func(i int) func() bool {
		return func() bool {
			v, ok := c.Members[i].Node.Cache("c").Get("k")
			return ok && string(v) == "v"
		}
	}
	// More entries than the group keeps behind a snapshot: the restarted
	// node is caught up by a snapshot.
	cl := cacheLeader(t, c)
	for i := range 300 {
		if err := c.Members[cl].Node.Cache("many").Set(ctx, "k", []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := hiqlite.SnapshotCache(c.Members[cl].Node); err != nil {
		t.Fatal(err)
	}
	f := (cl + 1) % len(c.Members)
	c.Restart(f)
	c.WaitFor("the restarted node to catch up its cache", time.Minute, has(f))
	if v, ok := c.Members[f].Node.Cache("many").Get("k"); !ok || v[0] != byte(299%256) {
		t.Fatalf("restarted node reads %v %v, want the last value", v, ok)
	}

	j := c.Add(c.NewMember("node4"))
	c.WaitFor("the added node to catch up its cache", time.Minute, has(j))
	if err := c.Members[j].Node.Cache("c").Set(ctx, "from4", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("every node to get the added node's write", time.Minute, func() bool {
		for _, i := range c.Alive() {
			if _, ok := c.Members[i].Node.Cache("c").Get("from4"); !ok {
				return false
			}
		}
		return true
	})

	for i := range c.Members {
		c.Kill(i)
	}
	for i := range c.Members {
		c.Start(i)
	}
	c.WaitReady(time.Minute)
	again, err := c.Members[0].Node.Lock(ctx, "l", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if again.Token() <= lease.Token() {
		t.Fatalf("token %d after a restart of the whole cluster, not above %d", again.Token(), lease.Token())
	}
	again.Unlock(ctx)
	for _, i := range c.Alive() {
		if _, ok := c.Members[i].Node.Cache("c").Get("k"); ok {
			t.Fatalf("%s kept a cache entry across a restart of the whole cluster", c.Members[i].ID)
		}
	}
	if err := c.Members[1].Node.Cache("c").Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for _, i := range c.Alive() {
		c.WaitFor("the restarted group to replicate", time.Minute, has(i))
	}
}
