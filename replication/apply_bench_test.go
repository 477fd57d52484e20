package replication_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/replication"
)

// BenchmarkApplyInserts applies batches of single-row INSERT commands, as
// raft hands them to the state machine, with and without exactly-once
// sessions (16 sessions taking turns). One op is one command; cpu-µs/cmd is
// the CPU time of the process per command, steadier than the wall time on
// a shared machine.
func BenchmarkApplyInserts(b *testing.B) {
	for _, sessions := range []bool{false, true} {
		for _, size := range []int{1, 16, 64} {
			name := "nosession"
			if sessions {
				name = "sessions"
			}
			b.Run(name+"/batch"+strconv.Itoa(size), func(b *testing.B) {
				benchApplyInserts(b, size, sessions)
			})
		}
	}
}

func benchApplyInserts(b *testing.B, size int, sessions bool) {
	sm, err := replication.Open(filepath.Join(b.TempDir(), "db"), replication.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sm.Close()
	var index uint64
	entry := func(cmd *replication.Command) *raft.Log {
		data, err := cmd.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		index++
		return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
	}
	create := &replication.Command{Kind: replication.KindExec, Time: 1e18, Stmts: []replication.Statement{{SQL: `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`}}}
	if r := sm.ApplyBatch([]*raft.Log{entry(create)})[0].(*replication.Response); r.Err != nil {
		b.Fatal(r.Err)
	}
	const nSessions = 16
	seq := make([]uint64, nSessions)
	logs := make([]*raft.Log, 0, size)
	flush := func() {
		for _, r := range sm.ApplyBatch(logs) {
			if resp := r.(*replication.Response); resp.Err != nil || resp.Duplicate {
				b.Fatalf("entry %d: %+v", resp.Index, resp)
			}
		}
		logs = logs[:0]
	}
	cpu := processCPU()
	b.ResetTimer()
	for i := range b.N {
		cmd := &replication.Command{Kind: replication.KindExec, Time: 1e18 + int64(i), Seed: uint64(i),
			Stmts: []replication.Statement{{SQL: `INSERT INTO k(v) VALUES (?)`, Args: []replication.Arg{{Ordinal: 1, Value: "value"}}}}}
		if sessions {
			s := i % nSessions
			seq[s]++
			cmd.Origin = replication.Origin{Node: "node-1", Session: uint64(s + 1), Seq: seq[s]}
		}
		logs = append(logs, entry(cmd))
		if len(logs) == size {
			flush()
		}
	}
	if len(logs) > 0 {
		flush()
	}
	b.StopTimer()
	if c := processCPU() - cpu; c > 0 {
		b.ReportMetric(float64(c.Microseconds())/float64(b.N), "cpu-µs/cmd")
	}
}
