package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/replication"
)

// BenchmarkRestart measures how long a single node takes from Open to
// ready over a log of 1,000 and of 30,000 entries with no snapshot behind
// them: the database records its applied index, so a restart executes no
// entry again (the row count proves it) and only reads the log.
func BenchmarkRestart(b *testing.B) {
	for _, entries := range []int{1_000, 30_000} {
		b.Run(fmt.Sprintf("log=%d", entries), func(b *testing.B) {
			dir := b.TempDir()
			cfg := Config{Dir: dir, SnapshotThreshold: 1 << 30}
			nd := openSingle(b, cfg)
			mustNodeExec(b, nd, replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, v INT)`)
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for w := range 64 {
				wg.Go(func() {
					for i := w; i < entries; i += 64 {
						resp, err := nd.Exec(context.Background(), time.Second, replication.Origin{}, 0, stmt(`INSERT INTO t(v) VALUES(?)`, int64(i)))
						if err == nil {
							err = resp.Results[0].Err
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			if err := nd.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				began := time.Now()
				nd = openSingle(b, cfg)
				b.ReportMetric(float64(time.Since(began).Milliseconds()), "ms/restart")
				b.StopTimer()
				countEverywhere(b, []*Node{nd}, "1", int64(entries))
				if err := nd.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
