package hiqlite_test

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkVacuumPause measures how long VACUUM holds up the writes of a
// single node whose database holds 4, 16 and 64 MiB: while VACUUM runs
// (alone, between two batches of the log), a writer inserts one row at a
// time. Reported per VACUUM: vacuum-ms, how long the VACUUM write took, and
// pause-ms, the longest latency of one of the writer's inserts meanwhile;
// insert-ms is that writer's median latency without VACUUM. Run it with
// -benchtime=1x: each VACUUM rewrites the whole database.
func BenchmarkVacuumPause(b *testing.B) {
	for _, mib := range []int{4, 16, 64} {
		b.Run(itoa(mib)+"MiB", func(b *testing.B) {
			db := openDir(b, b.TempDir())
			mustExec(b, db, `CREATE TABLE v(id INTEGER PRIMARY KEY, b BLOB)`)
			mustExec(b, db, `CREATE TABLE w(id INTEGER PRIMARY KEY, at INT)`)
			// 4 MiB per write: 1024 rows of about 4 KiB.
			for range mib / 4 {
				mustExec(b, db, `INSERT INTO v(b) SELECT randomblob(4000) FROM generate_series(1, 1024)`)
			}
			insert := func() time.Duration {
				start := time.Now()
				mustExec(b, db, `INSERT INTO w(at) VALUES (1)`)
				return time.Since(start)
			}
			var quiet []time.Duration
			for range 50 {
				quiet = append(quiet, insert())
			}
			b.ResetTimer()
			var vacuum, pause time.Duration
			for range b.N {
				stop := make(chan struct{})
				var worst time.Duration
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						worst = max(worst, insert())
					}
				}()
				start := time.Now()
				mustExec(b, db, `VACUUM`)
				vacuum += time.Since(start)
				close(stop)
				wg.Wait()
				pause += worst
			}
			b.ReportMetric(float64(vacuum.Milliseconds())/float64(b.N), "vacuum-ms")
			b.ReportMetric(float64(pause.Milliseconds())/float64(b.N), "pause-ms")
			b.ReportMetric(float64(median(quiet).Microseconds())/1000, "insert-ms")
		})
	}
}

// median returns the median of d (it sorts d).
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
