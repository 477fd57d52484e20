package hiqlite_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// cacheLeader returns the member of c that leads the cache group.
func cacheLeader(tb testing.TB, c *clustertest.Cluster) int {
	tb.Helper()
	leader := -1
	c.WaitFor("a cache group leader", 30*time.Second, func() bool {
		for _, i := range c.Alive() {
			if hiqlite.CacheLeads(c.Members[i].Node) {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// BenchmarkCacheSet measures replicated cache Sets (16-byte values, no
// TTL) with 1, 16 and 64 concurrent writers on the cache group's leader of
// a three-node loopback cluster: each Set returns once a majority holds it.
func BenchmarkCacheSet(b *testing.B) {
	c := clustertest.New(b, 3)
	cache := c.Members[cacheLeader(b, c)].Node.Cache("bench")
	ctx := context.Background()
	value := []byte("0123456789abcdef")
	for _, writers := range []int{1, 16, 64} {
		b.Run(itoa(writers)+"writers", func(b *testing.B) {
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if err := cache.Set(ctx, strconv.FormatInt(i%10000, 10), value, 0); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
		})
	}
}

// BenchmarkCacheGet measures local cache Gets (a hit on a 16-byte value)
// on a single node, with one reader and with GOMAXPROCS readers.
func BenchmarkCacheGet(b *testing.B) {
	db := openDir(b, b.TempDir())
	n, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	cache := n.Cache("bench")
	const keys = 1000
	for i := range keys {
		if err := cache.Set(context.Background(), strconv.Itoa(i), []byte("0123456789abcdef"), 0); err != nil {
			b.Fatal(err)
		}
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	b.Run("1reader", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok := cache.Get(names[i%keys]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := cache.Get(names[i%keys]); !ok {
					b.Error("miss")
					return
				}
				i++
			}
		})
	})
}
