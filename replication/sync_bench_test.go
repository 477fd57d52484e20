package replication

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkApplySynchronous applies batches of single-row INSERTs with the
// state database at synchronous=NORMAL (hiqlite's setting) and FULL (an
// fsync of the WAL per batch commit), one batch per op. It is the
// measurement behind the choice of NORMAL: raft-wal has already fsynced
// every entry before it is applied, so FULL would buy nothing a restart
// cannot rebuild from the log, at the cost measured here.
func BenchmarkApplySynchronous(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		for _, size := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", sync, size), func(b *testing.B) {
				sm, err := Open(filepath.Join(b.TempDir(), "db"), Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer sm.Close()
				if err := sm.w.Exec(`PRAGMA synchronous=` + sync); err != nil {
					b.Fatal(err)
				}
				index := uint64(0)
				entry := func(sql string, session uint64) *raft.Log {
					index++
					cmd := &Command{Kind: KindExec, Time: 1, Origin: Origin{Node: "n", Session: session, Seq: index}, Stmts: []Statement{{SQL: sql}}}
					data, err := cmd.MarshalBinary()
					if err != nil {
						b.Fatal(err)
					}
					return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
				}
				batch := func(logs []*raft.Log) {
					for _, r := range sm.ApplyBatch(logs) {
						if err := r.(*Response).Err; err != nil {
							b.Fatal(err)
						}
					}
				}
				batch([]*raft.Log{entry(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`, 1)})
				b.ResetTimer()
				for range b.N {
					logs := make([]*raft.Log, size)
					for i := range logs {
						logs[i] = entry(`INSERT INTO t(v) VALUES ('a row of some text')`, uint64(i%16+1))
					}
					batch(logs)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*size), "µs/command")
			})
		}
	}
}
