package hiqlite_test

import (
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// benchDB opens a node with a table k(id INTEGER PRIMARY KEY, v TEXT)
// holding rows rows.
func benchDB(b *testing.B, rows int) *sql.DB {
	b.Helper()
	db := openDir(b, b.TempDir())
	if _, err := db.Exec(`CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		b.Fatal(err)
	}
	if rows > 0 {
		if _, err := db.Exec(`INSERT INTO k SELECT value, 'value ' || value FROM generate_series(1, ?)`, rows); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkInsert measures replicated single-row autocommit inserts with
// 1 and 16 concurrent writers on a single node (every write fsynced to the
// Raft log before it is acknowledged).
func BenchmarkInsert(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(itoa(writers)+"writers", func(b *testing.B) {
			db := benchDB(b, 0)
			db.SetMaxOpenConns(writers)
			insertConcurrently(b, db, writers)
		})
	}
}

// BenchmarkPointSelect measures local point reads by primary key with 1 and
// 16 readers.
func BenchmarkPointSelect(b *testing.B) {
	const rows = 10000
	for _, readers := range []int{1, 16} {
		b.Run(itoa(readers)+"readers", func(b *testing.B) {
			db := benchDB(b, rows)
			db.SetMaxOpenConns(readers)
			db.SetMaxIdleConns(readers)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var v string
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := db.QueryRow(`SELECT v FROM k WHERE id = ?`, i%rows+1).Scan(&v); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "selects/s")
		})
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// BenchmarkClusterInsert measures single-row inserts with 1 to 64 writers
// on the leader and 16 and 64 on a follower (forwarded) of a three-node
// loopback cluster. hiqlite bench measures the same beside its baselines.
func BenchmarkClusterInsert(b *testing.B) {
	c := clustertest.New(b, 3)
	l := c.Leader()
	mustExec(b, c.Members[l].DB, `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`)
	for _, m := range c.Members {
		m.DB.SetMaxIdleConns(64)
	}
	for _, bc := range []struct {
		on      string
		writers int
	}{{"leader", 1}, {"leader", 4}, {"leader", 16}, {"leader", 64}, {"follower", 16}, {"follower", 64}} {
		b.Run(bc.on+"/"+itoa(bc.writers)+"writers", func(b *testing.B) {
			db := c.Members[l].DB
			if bc.on == "follower" {
				db = c.Members[c.Follower()].DB
			}
			insertConcurrently(b, db, bc.writers)
		})
	}
}

// BenchmarkClusterBigTx measures transactions of 10,000 single-row inserts
// on the leader of a three-node loopback cluster, in rows per second.
func BenchmarkClusterBigTx(b *testing.B) {
	const rows = 10000
	c := clustertest.New(b, 3)
	db := c.Members[c.Leader()].DB
	mustExec(b, db, `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`)
	b.ResetTimer()
	for range b.N {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for range rows {
			if _, err := tx.Exec(`INSERT INTO k(v) VALUES (?)`, "x"); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}

// insertConcurrently runs b.N single-row inserts on db from writers
// goroutines and reports inserts per second.
func insertConcurrently(b *testing.B, db *sql.DB, writers int) {
	concurrently(b, writers, "inserts/s", func() error {
		_, err := db.Exec(`INSERT INTO k(v) VALUES (?)`, "x")
		return err
	})
}

// concurrently runs op b.N times in all from writers goroutines and
// reports the operations per second as unit.
func concurrently(b *testing.B, writers int, unit string, op func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}
