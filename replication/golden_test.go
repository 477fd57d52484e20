package replication_test

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/hiqlite/hiqlite/internal/golden"
	"github.com/hiqlite/hiqlite/replication"
)

// goldenCommands are the Raft log commands pinned by testdata/golden: the
// value encoded and the value decoded (a nil blob is logged as NULL).
func goldenCommands() []struct {
	name, comment string
	in, want      replication.Command
} {
	origin := replication.Origin{Node: "node-1", Session: 1<<63 + 5, Seq: 42}
	args := []replication.Arg{
		{Ordinal: 1, Value: int64(-1 << 63)},
		{Ordinal: 2, Value: "héllo ☃"},
		{Name: "c", Value: []byte{}},
		{Name: "d", Value: []byte{0, 1, 0xff}},
		{Ordinal: 5, Value: math.Inf(-1)},
		{Ordinal: 6, Value: 1.5},
		{Ordinal: 7, Value: nil},
		{Ordinal: 300, Value: []byte(nil)},
	}
	wantArgs := append([]replication.Arg(nil), args...)
	wantArgs[7].Value = nil
	exec := replication.Command{
		Kind: replication.KindExec, Time: 1_700_000_000_123_456_789, Seed: 0xdeadbeefcafef00d, Origin: origin,
		Flags: replication.FlagForeignKeys | replication.FlagNotMigrate,
		Stmts: []replication.Statement{
			{SQL: "INSERT INTO t VALUES (?1, ?2, :c, :d, ?5, ?6, ?7, ?300)", Args: args},
			{SQL: "DELETE FROM t"},
		},
	}
	execWant := exec
	execWant.Stmts = []replication.Statement{{SQL: exec.Stmts[0].SQL, Args: wantArgs}, exec.Stmts[1]}
	tx := replication.Command{
		Kind: replication.KindTx, Time: -5, Seed: 1, Origin: origin, Flags: replication.FlagNotMigrate,
		Stmts: []replication.Statement{
			{SQL: "SAVEPOINT a"},
			{SQL: "INSERT INTO t VALUES (?)", Args: []replication.Arg{{Ordinal: 1, Value: int64(7)}}, Failed: true},
			{SQL: "INSERT INTO t VALUES (?)", Args: []replication.Arg{{Ordinal: 1, Value: "x"}}},
			{SQL: "RELEASE a"},
		},
	}
	noop := replication.Command{Kind: replication.KindNoop, Time: 1}
	fence := replication.Command{Kind: replication.KindFence, Time: 2, Seed: 3, Origin: origin}
	lone := replication.Command{Kind: replication.KindExec, Time: 3, Seed: 4, Origin: replication.Origin{Node: "node-2", Session: 7, Seq: 1},
		Flags: replication.FlagForeignKeys, Stmts: []replication.Statement{{SQL: "DELETE FROM t"}}}
	batch := replication.Command{Kind: replication.KindBatch, Batch: []*replication.Command{&exec, &lone}}
	batchWant := replication.Command{Kind: replication.KindBatch, Batch: []*replication.Command{&execWant, &lone}}
	return []struct {
		name, comment string
		in, want      replication.Command
	}{
		{"raftlog_command_v1_exec", "Raft log command, version 1, kind exec: two statements, arguments of every\nvalue type by name and by ordinal (a nil blob is logged as NULL), both flags", exec, execWant},
		{"raftlog_command_v1_tx", "Raft log command, version 1, kind tx: four statements, one failed on the leader", tx, tx},
		{"raftlog_command_v1_noop", "Raft log command, version 1, kind noop, time 1, no origin", noop, noop},
		{"raftlog_command_v1_fence", "Raft log command, version 1, kind fence for origin node-1/2^63+5/42", fence, fence},
		{"raftlog_command_v2_batch", "Raft log command, version 2, kind batch of two exec commands (each a whole version 1\ncommand): raftlog_command_v1_exec, then one DELETE with foreign keys on", batch, batchWant},
	}
}

func TestGoldenCommands(t *testing.T) {
	for _, c := range goldenCommands() {
		t.Run(c.name, func(t *testing.T) {
			enc, err := c.in.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			b := golden.Bytes(t, c.name, c.comment, enc)
			if !bytes.Equal(enc, b) {
				t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
			}
			got, err := replication.UnmarshalCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("decoded %+v\nwant %+v", *got, c.want)
			}
			again, err := got.MarshalBinary()
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding: %x, %v\nwant %x", again, err, b)
			}
		})
	}
}
