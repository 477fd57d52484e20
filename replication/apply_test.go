package replication_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// batchWorkload is a sequence of commands that exercises what group commit
// must keep invisible: failing statements, statements that roll the whole
// transaction back (ON CONFLICT ROLLBACK, RAISE(ROLLBACK) in a trigger),
// foreign key settings that change between commands, retried and fenced
// writes, transactions with savepoints, random() and 'now'.
func batchWorkload() []*replication.Command {
	exec := func(o replication.Origin, fk bool, sqls ...string) *replication.Command {
		c := &replication.Command{Kind: replication.KindExec, Origin: o}
		if fk {
			c.Flags = replication.FlagForeignKeys
		}
		for _, q := range sqls {
			c.Stmts = append(c.Stmts, replication.Statement{SQL: q})
		}
		return c
	}
	o := func(session, seq uint64) replication.Origin {
		return replication.Origin{Node: "n", Session: session, Seq: seq}
	}
	cmds := []*replication.Command{
		exec(replication.Origin{}, false,
			`CREATE TABLE p(id INTEGER PRIMARY KEY, v UNIQUE ON CONFLICT ROLLBACK)`,
			`CREATE TABLE c(id INTEGER PRIMARY KEY AUTOINCREMENT, p REFERENCES p(id), r, at DEFAULT CURRENT_TIMESTAMP)`,
			`CREATE TABLE guard(x)`,
			`CREATE TRIGGER no_neg BEFORE INSERT ON guard WHEN NEW.x < 0 BEGIN SELECT RAISE(ROLLBACK, 'negative'); END`),
	}
	seq := map[uint64]uint64{}
	next := func(s uint64) replication.Origin { seq[s]++; return o(s, seq[s]) }
	for i := range 60 {
		s := uint64(i%4 + 1)
		switch i % 10 {
		case 0, 5:
			cmds = append(cmds, exec(next(s), false, fmt.Sprintf(`INSERT INTO p(v) VALUES (%d) RETURNING id, random()`, i)))
		case 1:
			// Rolls back the whole transaction: v = 0 exists after i=0.
			cmds = append(cmds, exec(next(s), false, `INSERT INTO c(p, r) VALUES (1, random())`, `INSERT INTO p(v) VALUES (0)`))
		case 2:
			cmds = append(cmds, exec(next(s), true, `INSERT INTO c(p, r) VALUES (999, 1)`)) // FK violation
		case 3:
			cmds = append(cmds, exec(next(s), false, `INSERT INTO guard VALUES (1)`, `INSERT INTO guard VALUES (-1)`, `INSERT INTO guard VALUES (2)`))
		case 4:
			// A retry of the session's last write: a duplicate.
			c := *cmds[len(cmds)-1]
			cmds = append(cmds, &c)
		case 6:
			cmds = append(cmds, &replication.Command{Kind: replication.KindFence, Origin: o(s, seq[s]+1)})
			seq[s]++
		case 7:
			cmds = append(cmds, &replication.Command{Kind: replication.KindTx, Origin: next(s), Stmts: []replication.Statement{
				{SQL: `INSERT INTO c(r) VALUES (random())`},
				{SQL: `SAVEPOINT a`},
				{SQL: `INSERT INTO c(r) VALUES (datetime('now'))`},
				{SQL: `ROLLBACK TO a`},
				{SQL: `RELEASE a`},
				{SQL: `INSERT INTO guard(nope) VALUES (1)`, Failed: true},
			}})
		case 8:
			cmds = append(cmds, exec(next(s), true, `INSERT INTO c(p, r) VALUES (1, randomblob(4)) RETURNING id, at`))
		case 9:
			cmds = append(cmds, exec(next(s), false, `UPDATE c SET r = r || 'x' WHERE id % 2 = 0`, `DELETE FROM guard WHERE x = 2`))
			switch i {
			case 19:
				// VACUUM runs between two batches (vacuum.go); then a
				// retry of it, a duplicate, and at i=21 a command that
				// rolls back the batch the VACUUM's record is in.
				cmds = append(cmds, exec(replication.Origin{}, false, `DELETE FROM c WHERE id % 3 = 0`))
				cmds = append(cmds, exec(next(s), false, `VACUUM`))
				c := *cmds[len(cmds)-1]
				cmds = append(cmds, &c)
			case 39:
				cmds = append(cmds, exec(replication.Origin{}, true, `VACUUM main`))
			case 49:
				// Not alone in its command: SQLite's error, on every node.
				cmds = append(cmds, exec(next(s), false, `DELETE FROM guard`, `VACUUM`))
			}
		}
	}
	for i, c := range cmds {
		c.Time = int64(1_700_000_000+i) * 1e9
		c.Seed = uint64(i) * 7919
	}
	return cmds
}

// applyInBatches applies cmds to a fresh state machine in batches whose
// sizes split draws, and returns the responses and a dump of the database.
func applyInBatches(t *testing.T, cmds []*replication.Command, split func() int) ([]*replication.Response, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	sm, err := replication.Open(path, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i, c := range cmds {
		data, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data})
		if i%17 == 16 { // a configuration change now and then
			logs = append(logs, &raft.Log{Type: raft.LogConfiguration})
		}
	}
	for i, l := range logs {
		l.Index = uint64(i + 1)
	}
	var resps []*replication.Response
	for len(logs) > 0 {
		n := min(split(), len(logs))
		for i, r := range sm.ApplyBatch(logs[:n]) {
			if logs[i].Type != raft.LogCommand {
				continue
			}
			resp := r.(*replication.Response)
			subs := []*replication.Response{resp}
			if resp.Batch != nil {
				subs = resp.Batch // a KindBatch: its commands' responses
			}
			for _, resp := range subs {
				if resp.Err != nil && !strings.Contains(resp.Err.Error(), "not applied") {
					t.Fatalf("entry %d: %v", resp.Index, resp.Err)
				}
				resps = append(resps, resp)
			}
		}
		if err := sm.CheckSessionMirror(); err != nil {
			t.Fatalf("after entry %d: %v", logs[n-1].Index, err)
		}
		logs = logs[n:]
	}
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	return resps, dumpFile(t, path)
}

// Group commit is invisible: the same log applied one entry at a time, all
// at once, and in random batches gives the same responses and the same
// database, byte for byte.
func TestBatchingIsInvisible(t *testing.T) {
	cmds := batchWorkload()
	wantResps, want := applyInBatches(t, cmds, func() int { return 1 })
	if !bytes.Contains(want, []byte("== guard")) {
		t.Fatal("workload did not run")
	}
	vacuums := 0
	for i, c := range cmds {
		if last := c.Stmts; len(last) > 0 && strings.HasPrefix(last[len(last)-1].SQL, "VACUUM") {
			vacuums++
			res := wantResps[i].Results
			err := res[len(res)-1].Err
			if lone := len(last) == 1; lone != (err == nil) || !lone && !strings.Contains(fmt.Sprint(err), "cannot VACUUM from within a transaction") {
				t.Errorf("command %d (%d statements, VACUUM last): %v", i, len(last), err)
			}
		}
	}
	if vacuums != 4 {
		t.Fatalf("%d VACUUM commands in the workload, want 4", vacuums)
	}
	r := rand.New(rand.NewPCG(1, 2))
	splits := map[string]func() int{
		"all at once": func() int { return 1 << 20 },
		"random":      func() int { return 1 + r.IntN(9) },
		"pairs":       func() int { return 2 },
	}
	for name, split := range splits {
		t.Run(name, func(t *testing.T) {
			resps, got := applyInBatches(t, cmds, split)
			if !bytes.Equal(got, want) {
				t.Fatalf("database differs from one-at-a-time:\n--- one at a time\n%s\n--- %s\n%s", want, name, got)
			}
			if len(resps) != len(wantResps) {
				t.Fatalf("%d responses, want %d", len(resps), len(wantResps))
			}
			for i := range resps {
				if !sameResponse(resps[i], wantResps[i]) {
					t.Fatalf("response %d differs:\n%+v\nwant\n%+v", i, resps[i], wantResps[i])
				}
			}
		})
	}
}

func sameResponse(a, b *replication.Response) bool {
	if a.Index != b.Index || a.Duplicate != b.Duplicate || a.NotApplied != b.NotApplied || fmt.Sprint(a.Err) != fmt.Sprint(b.Err) || len(a.Results) != len(b.Results) {
		return false
	}
	for i := range a.Results {
		x, y := a.Results[i], b.Results[i]
		if fmt.Sprint(x.Err) != fmt.Sprint(y.Err) {
			return false
		}
		x.Err, y.Err = nil, nil
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// dumpFile renders every table of the database at path, each value with its
// storage class, ordered by rowid (or by every column without a rowid).
func dumpFile(t *testing.T, path string) []byte {
	t.Helper()
	c, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type table struct{ name, sql string }
	var tables []table
	s, _, err := c.Prepare(`SELECT name, sql FROM sqlite_schema WHERE type IN ('table', 'trigger') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for s.Step() {
		tables = append(tables, table{s.ColumnText(0), s.ColumnText(1)})
		fmt.Fprintln(&out, s.ColumnText(1))
	}
	s.Close()
	for _, tb := range tables {
		if strings.HasPrefix(tb.sql, "CREATE TRIGGER") {
			continue
		}
		order := "rowid"
		if strings.Contains(strings.ToUpper(tb.sql), "WITHOUT ROWID") {
			order = "1, 2"
		}
		q, _, err := c.Prepare(`SELECT * FROM "` + tb.name + `" ORDER BY ` + order)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "== %s\n", tb.name)
		for q.Step() {
			for i := range q.ColumnCount() {
				fmt.Fprintf(&out, "%v:%q ", q.ColumnType(i), q.ColumnText(i))
			}
			out.WriteByte('\n')
		}
		if err := q.Err(); err != nil {
			t.Fatal(err)
		}
		q.Close()
	}
	return out.Bytes()
}
