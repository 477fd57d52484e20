package replication_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// notifyWorkload raises notifications in every way a write can, and fails or
// rolls back some of the writes that raised them. want is what must be
// delivered: the notifications of committed writes, in log order, by index.
func notifyWorkload() (cmds []*replication.Command, want []string) {
	exec := func(sqls ...string) *replication.Command {
		c := &replication.Command{Kind: replication.KindExec}
		for _, q := range sqls {
			c.Stmts = append(c.Stmts, replication.Statement{SQL: q})
		}
		return c
	}
	cmds = []*replication.Command{
		/* 1 */ exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v UNIQUE)`,
			`CREATE TABLE r(v UNIQUE ON CONFLICT ROLLBACK)`,
			`CREATE TRIGGER tn AFTER INSERT ON t BEGIN SELECT hiqlite_notify('t', NEW.v); END`,
			`CREATE TRIGGER rn AFTER INSERT ON r BEGIN SELECT hiqlite_notify('r', NEW.v); END`),
		/* 2 */ exec(`INSERT INTO t(v) VALUES (1), (2)`),
		// The third row fails the statement: its first two rows are undone.
		/* 3 */ exec(`INSERT INTO t(v) VALUES (3), (4), (1)`),
		// The second statement fails: the first stands.
		/* 4 */ exec(`INSERT INTO t(v) VALUES (5)`, `INSERT INTO t(v) VALUES (2)`),
		/* 5 */ exec(`SELECT hiqlite_notify('direct', 'x')`),
		/* 6 */ exec(`INSERT INTO r VALUES (1)`),
		// The second statement rolls the whole transaction back (and the
		// batch's earlier commands, which are replayed).
		/* 7 */ exec(`INSERT INTO t(v) VALUES (6)`, `INSERT INTO r VALUES (1)`),
		/* 8 */ {Kind: replication.KindTx, Stmts: []replication.Statement{
			{SQL: `INSERT INTO t(v) VALUES (7)`},
			{SQL: `SAVEPOINT a`},
			{SQL: `INSERT INTO t(v) VALUES (8)`},
			{SQL: `ROLLBACK TO a`},
			{SQL: `RELEASE a`},
			{SQL: `INSERT INTO t(v) VALUES (7)`, Failed: true},
			{SQL: `INSERT INTO t(nope) VALUES (1)`, Failed: true},
		}},
		/* 9 */ exec(`INSERT INTO t(v) VALUES (9); SELECT hiqlite_notify('m', 'y')`),
		/* 10 */ exec(`SELECT hiqlite_notify('', 'empty channel')`),
		/* 11 */ exec(`SELECT hiqlite_notify(NULL)`),
		/* 12 */ exec(`SELECT hiqlite_notify('types', 42), hiqlite_notify('types', x'6869'), hiqlite_notify('types', NULL), hiqlite_notify('types')`),
		/* 13 */ exec(`UPDATE t SET v = v WHERE hiqlite_notify('upd', v) IS NULL AND v = 9`),
		// VACUUM runs with temp_store=FILE, which drops the notifications
		// table: it is made again, and notifications go on.
		/* 14 */ exec(`VACUUM`),
		/* 15 */ exec(`INSERT INTO t(v) VALUES (10)`),
	}
	for i, c := range cmds {
		c.Time = int64(1_700_000_000+i) * 1e9
	}
	want = []string{"2 t:1", "2 t:2", "4 t:5", "5 direct:x", "6 r:1", "8 t:7", "9 t:9", "9 m:y",
		"12 types:42", "12 types:hi", "12 types:", "12 types:", "15 t:10"}
	// UPDATE ... WHERE calls the function on rows it scans; which rows
	// depends on the plan, so only the row it updates is known for sure.
	return cmds, want
}

// Notifications are delivered exactly for committed writes, in log order,
// after their COMMIT, however the log is batched.
func TestNotifyOnCommit(t *testing.T) {
	cmds, want := notifyWorkload()
	r := rand.New(rand.NewPCG(3, 4))
	splits := map[string]func() int{
		"one at a time": func() int { return 1 },
		"all at once":   func() int { return 1 << 20 },
		"random":        func() int { return 1 + r.IntN(5) },
	}
	for name, split := range splits {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			var got []string
			var reader *sqlite3.Conn
			sm, err := replication.Open(path, replication.Options{NotifySink: func(ns []replication.Notification) {
				for _, n := range ns {
					got = append(got, fmt.Sprintf("%d %s:%s", n.Index, n.Channel, n.Payload))
					if n.Channel == "t" {
						// Delivered after COMMIT: another connection sees the row.
						s, _, err := reader.Prepare(`SELECT count(*) FROM t WHERE CAST(v AS TEXT) = ?`)
						if err != nil {
							t.Error(err)
							return
						}
						s.BindText(1, n.Payload)
						s.Step()
						if s.ColumnInt(0) != 1 {
							t.Errorf("notification %s:%s delivered before its row is visible", n.Channel, n.Payload)
						}
						s.Close()
					}
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer sm.Close()
			reader, err = sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			var logs []*raft.Log
			for i, c := range cmds {
				data, err := c.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data})
			}
			for len(logs) > 0 {
				n := min(split(), len(logs))
				for _, out := range sm.ApplyBatch(logs[:n]) {
					if err := out.(*replication.Response).Err; err != nil {
						t.Fatal(err)
					}
				}
				logs = logs[n:]
			}
			got = slices.DeleteFunc(got, func(s string) bool { return s == "13 upd:9" })
			if !slices.Equal(got, want) {
				t.Fatalf("delivered\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// The leader's interactive transaction raises its notifications as its
// statements run; they are delivered when the command that commits it is
// applied, with its index, and never when it rolls back.
func TestNotifyInteractiveTransaction(t *testing.T) {
	var mu sync.Mutex
	var got []string
	a := newApplierWith(t, replication.Options{NotifySink: func(ns []replication.Notification) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range ns {
			got = append(got, fmt.Sprintf("%d %s:%s", n.Index, n.Channel, n.Payload))
		}
	}})
	a.must(a.exec(replication.Origin{}, `CREATE TRIGGER tn AFTER INSERT ON t BEGIN SELECT hiqlite_notify('t', NEW.v); END`))
	o := replication.Origin{Node: "n", Session: 1, Seq: 1}
	if err := a.sm.BeginTx(o, 1e18, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.sm.ExecTx(context.Background(), o, replication.Statement{SQL: `INSERT INTO t(v) VALUES ('rolled back')`}, false); err != nil {
		t.Fatal(err)
	}
	a.sm.RollbackTx(o)

	o.Seq++
	if err := a.sm.BeginTx(o, 1e18, 2, 0); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{`INSERT INTO t(v) VALUES ('a')`, `SAVEPOINT s`, `INSERT INTO t(v) VALUES ('undone')`, `ROLLBACK TO s`, `INSERT INTO t(v) VALUES ('a')`, `INSERT INTO t(v) VALUES ('b')`} {
		a.sm.ExecTx(context.Background(), o, replication.Statement{SQL: st}, false) // one fails: v is UNIQUE
	}
	// A read in the transaction that calls the function is a write after all.
	if _, err := a.sm.ExecTx(context.Background(), o, replication.Statement{SQL: `SELECT hiqlite_notify('read', 'r')`}, true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 0 {
		t.Fatalf("delivered %q before COMMIT", got)
	}
	mu.Unlock()
	cmd, err := a.sm.CommitCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cmd.Stmts); n != 7 {
		t.Fatalf("the commit replicates %d statements, want 7 (the read that notified included)", n)
	}
	resp := a.must(a.apply(cmd))
	want := []string{
		fmt.Sprintf("%d t:a", resp.Index),
		fmt.Sprintf("%d t:b", resp.Index),
		fmt.Sprintf("%d read:r", resp.Index),
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}

	// A follower replays the same command, in a batch, to the same notifications.
	var fgot []string
	f := newApplierWith(t, replication.Options{NotifySink: func(ns []replication.Notification) {
		for _, n := range ns {
			fgot = append(fgot, fmt.Sprintf("%d %s:%s", n.Index, n.Channel, n.Payload))
		}
	}})
	f.must(f.exec(replication.Origin{}, `CREATE TRIGGER tn AFTER INSERT ON t BEGIN SELECT hiqlite_notify('t', NEW.v); END`))
	f.index = resp.Index - 1
	f.must(f.apply(cmd))
	if !slices.Equal(fgot, want) {
		t.Fatalf("follower delivered %q, want %q", fgot, want)
	}
}
