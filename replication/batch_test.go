package replication_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/replication"
)

// groupInBatches puts runs of consecutive commands that may share a batch
// (replication.CanBatch, one key) into KindBatch entries of at most size()
// commands; the others stay alone, as the leader's batcher does.
func groupInBatches(cmds []*replication.Command, size func() int) []*replication.Command {
	var out []*replication.Command
	for i := 0; i < len(cmds); {
		key, ok := replication.CanBatch(cmds[i])
		j := i + 1
		for n := size(); ok && j < len(cmds) && j-i < n; j++ {
			if k, ok := replication.CanBatch(cmds[j]); !ok || k != key {
				break
			}
		}
		if j-i == 1 {
			out = append(out, cmds[i])
		} else {
			out = append(out, &replication.Command{Kind: replication.KindBatch, Batch: cmds[i:j]})
		}
		i = j
	}
	return out
}

// userTables drops the sections of the state machine's own tables from a
// dumpFile dump: the indexes in them follow the log's entries, which
// batching changes.
func userTables(dump []byte) []byte {
	parts := bytes.Split(dump, []byte("\n== "))
	out := parts[0]
	for _, p := range parts[1:] {
		if !bytes.HasPrefix(p, []byte("_hiqlite")) {
			out = append(append(out, "\n== "...), p...)
		}
	}
	return out
}

// A batch is invisible: the workload with its commands carried in batches
// of every size gives each command the results it got alone and the same
// rows; and one batched log gives the same database, byte for byte,
// whatever batches raft hands the state machine.
func TestBatchCommandsAreInvisible(t *testing.T) {
	cmds := batchWorkload()
	lone, want := applyInBatches(t, cmds, func() int { return 1 })
	r := rand.New(rand.NewPCG(3, 4))
	sizes := map[string]func() int{
		"pairs":  func() int { return 2 },
		"random": func() int { return 1 + r.IntN(6) },
		"max":    func() int { return replication.MaxBatch },
	}
	for name, size := range sizes {
		t.Run(name, func(t *testing.T) {
			entries := groupInBatches(cmds, size)
			if len(entries) >= len(cmds) {
				t.Fatalf("%d entries for %d commands: nothing batched", len(entries), len(cmds))
			}
			resps, got := applyInBatches(t, entries, func() int { return 1 })
			if !bytes.Equal(userTables(got), userTables(want)) {
				t.Fatalf("rows differ from the commands alone:\n--- alone\n%s\n--- %s\n%s", userTables(want), name, userTables(got))
			}
			if len(resps) != len(lone) {
				t.Fatalf("%d responses, want %d", len(resps), len(lone))
			}
			for i := range resps {
				a, b := *resps[i], *lone[i]
				a.Index, b.Index = 0, 0 // the entries' indexes differ
				if !sameResponse(&a, &b) {
					t.Fatalf("command %d: response differs:\n%+v\nwant\n%+v", i, resps[i], lone[i])
				}
			}
			_, again := applyInBatches(t, entries, func() int { return 1 + r.IntN(5) })
			if !bytes.Equal(again, got) {
				t.Fatalf("the same batched log gave another database under other raft batches")
			}
		})
	}
}

// Each command of a batch gets its own response: a failing one, and one
// that rolls the whole SQLite transaction back, fail alone; a copy of a
// write in the same batch, or in an earlier one, is answered from the
// record and not applied twice.
func TestBatchResponses(t *testing.T) {
	sm, err := replication.Open(filepath.Join(t.TempDir(), "db"), replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	exec := func(session, seq uint64, sql string) *replication.Command {
		return &replication.Command{Kind: replication.KindExec, Time: int64(seq) * 1e9, Seed: seq,
			Origin: replication.Origin{Node: "n", Session: session, Seq: seq}, Stmts: []replication.Statement{{SQL: sql}}}
	}
	index := uint64(0)
	apply := func(cmd *replication.Command) *replication.Response {
		t.Helper()
		data, err := cmd.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		index++
		resp := sm.ApplyBatch([]*raft.Log{{Index: index, Term: 1, Type: raft.LogCommand, Data: data}})[0].(*replication.Response)
		if resp.Err != nil {
			t.Fatal(resp.Err)
		}
		return resp
	}
	apply(exec(0, 0, `CREATE TABLE t(id INTEGER PRIMARY KEY, v UNIQUE ON CONFLICT ROLLBACK)`))
	first := exec(1, 1, `INSERT INTO t(v) VALUES ('a')`)
	resp := apply(&replication.Command{Kind: replication.KindBatch, Batch: []*replication.Command{
		first,
		exec(2, 1, `INSERT INTO nope VALUES (1)`),   // fails
		exec(3, 1, `INSERT INTO t(v) VALUES ('b')`), // applied
		exec(4, 1, `INSERT INTO t(v) VALUES ('a')`), // rolls the transaction back
		first, // a copy in the same batch
		exec(5, 1, `INSERT INTO t(v) VALUES ('c')`),
	}})
	if len(resp.Batch) != 6 || resp.Index != 2 {
		t.Fatalf("response %+v", resp)
	}
	b := resp.Batch
	for i, r := range b {
		if r.Err != nil {
			t.Errorf("command %d: %v", i, r.Err)
		}
	}
	if b[0].Results[0].Err != nil || b[0].Results[0].LastInsertID != 1 {
		t.Errorf("command 0: %+v", b[0].Results[0])
	}
	if b[1].Results[0].Err == nil || b[3].Results[0].Err == nil {
		t.Errorf("commands 1 and 3 did not fail: %+v, %+v", b[1].Results, b[3].Results)
	}
	if b[2].Results[0].Err != nil || b[2].Results[0].LastInsertID != 2 {
		t.Errorf("command 2: %+v", b[2].Results[0])
	}
	if !b[4].Duplicate || b[4].Index != 2 || !reflect.DeepEqual(b[4].Results, b[0].Results) {
		t.Errorf("the copy in the batch: %+v, want the first one's results", b[4])
	}
	if b[5].Results[0].Err != nil || b[5].Results[0].LastInsertID != 3 {
		t.Errorf("command 5: %+v", b[5].Results[0])
	}
	// A copy in a later batch.
	resp = apply(&replication.Command{Kind: replication.KindBatch, Batch: []*replication.Command{exec(3, 1, `INSERT INTO t(v) VALUES ('b')`), exec(6, 1, `INSERT INTO t(v) VALUES ('d')`)}})
	if !resp.Batch[0].Duplicate || resp.Batch[0].Index != 2 || resp.Batch[1].Results[0].LastInsertID != 4 {
		t.Errorf("second batch: %+v, %+v", resp.Batch[0], resp.Batch[1])
	}
}

// Only autocommit writes that never commit the open transaction before they
// run share a batch: every node refuses any other batch as corrupt.
func TestBatchDecodeRefuses(t *testing.T) {
	exec := func(fk bool, sql string) *replication.Command {
		c := &replication.Command{Kind: replication.KindExec, Stmts: []replication.Statement{{SQL: sql}}}
		if fk {
			c.Flags = replication.FlagForeignKeys
		}
		return c
	}
	enc := func(cmds ...*replication.Command) []byte {
		var subs [][]byte
		for _, c := range cmds {
			b, err := c.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, b)
		}
		return replication.MarshalBatch(subs)
	}
	ok := enc(exec(false, "INSERT INTO t VALUES (1)"), exec(false, "DELETE FROM t"))
	if c, err := replication.UnmarshalCommand(ok); err != nil || len(c.Batch) != 2 || c.Batch[1].Stmts[0].SQL != "DELETE FROM t" {
		t.Fatalf("a good batch: %+v, %v", c, err)
	}
	v1 := bytes.Clone(ok)
	v1[0] = 1 // a batch is version 2
	cases := map[string][]byte{
		"foreign keys differ": enc(exec(false, "INSERT INTO t VALUES (1)"), exec(true, "INSERT INTO t VALUES (1)")),
		"a VACUUM":            enc(exec(false, "INSERT INTO t VALUES (1)"), exec(false, "VACUUM")),
		"a tx":                enc(exec(false, "INSERT INTO t VALUES (1)"), &replication.Command{Kind: replication.KindTx}),
		"a batch in a batch":  enc(exec(false, "INSERT INTO t VALUES (1)"), &replication.Command{Kind: replication.KindBatch, Batch: []*replication.Command{exec(false, "SELECT 1")}}),
		"empty":               replication.MarshalBatch(nil),
		"version 1":           v1,
		"trailing bytes":      append(bytes.Clone(ok), 0),
	}
	// A batch in a batch in ...: refused at the first level, without
	// decoding its way down (an entry of 63 MiB could nest millions deep).
	deep, err := exec(false, "SELECT 1").MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for range 20_000 {
		deep = replication.MarshalBatch([][]byte{deep})
	}
	cases["20,000 nested batches"] = deep
	for name, data := range cases {
		if _, err := replication.UnmarshalCommand(data); !errors.Is(err, replication.ErrCorruptCommand) {
			t.Errorf("%s: %v, want a corrupt command", name, err)
		}
	}
	// A node of version 1 stops at a batch rather than misread it: a
	// newer version, not corruption.
	var ve *encoding.VersionError
	newer := bytes.Clone(ok)
	newer[0] = 3
	if _, err := replication.UnmarshalCommand(newer); !errors.As(err, &ve) {
		t.Errorf("version 3: %v, want a VersionError", err)
	}
	if !strings.Contains(replication.KindBatch.String(), "batch") {
		t.Error(replication.KindBatch.String())
	}
}
