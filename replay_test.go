package hiqlite_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// TestReplayIsDeterministic writes through a node with every
// non-deterministic built-in, then feeds the node's Raft log to a fresh
// state machine: both databases must hold the same tables value for value.
func TestReplayIsDeterministic(t *testing.T) {
	t.Parallel()
	db, dir := open(t)
	before := time.Now()
	mustExec(t, db, `CREATE TABLE d(
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		created DEFAULT CURRENT_TIMESTAMP,
		day DEFAULT CURRENT_DATE,
		clock DEFAULT CURRENT_TIME,
		r INT, rb BLOB, dt TEXT, s TEXT, jd REAL, ue INT, sub REAL, td TEXT)`)
	ins := `INSERT INTO d(r, rb, dt, s, jd, ue, sub, td) VALUES
		(random(), randomblob(16), datetime('now'), strftime('%s','now'), julianday(), unixepoch(), unixepoch('now','subsec'), timediff('now', '2000-01-01'))
		RETURNING id, r`
	returned := map[int64]int64{}
	for range 10 {
		var id, r int64
		if err := db.QueryRow(ins).Scan(&id, &r); err != nil {
			t.Fatal(err)
		}
		returned[id] = r
	}
	// In a transaction too, with reads in between and a savepoint undone.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		var id, r int64
		if err := tx.QueryRow(ins).Scan(&id, &r); err != nil {
			t.Fatal(err)
		}
		returned[id] = r
		if n := count(t, tx, `SELECT count(*) FROM d WHERE random() <> 0`); n == 0 {
			t.Fatal("the transaction does not see its own writes")
		}
		if i == 2 {
			mustExec(t, tx, `SAVEPOINT sp`)
			mustExec(t, tx, `INSERT INTO d(r) VALUES (random())`)
			mustExec(t, tx, `ROLLBACK TO sp`)
			mustExec(t, tx, `RELEASE sp`)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	// Values: random values differ between rows, times are the clock's.
	rows, err := db.Query(`SELECT id, r, hex(rb), dt, s, ue FROM d`)
	if err != nil {
		t.Fatal(err)
	}
	seenR, seenRB := map[int64]bool{}, map[string]bool{}
	for rows.Next() {
		var id, r, ue int64
		var rb, dt, s string
		if err := rows.Scan(&id, &r, &rb, &dt, &s, &ue); err != nil {
			t.Fatal(err)
		}
		if returned[id] != r {
			t.Errorf("row %d: RETURNING gave random() = %d, the table holds %d", id, returned[id], r)
		}
		if seenR[r] || seenRB[rb] || len(rb) != 32 {
			t.Errorf("row %d: random values repeat or are malformed: %d %s", id, r, rb)
		}
		seenR[r], seenRB[rb] = true, true
		at, err := time.Parse(time.DateTime, dt)
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(before.Add(-2*time.Second)) || at.After(after.Add(2*time.Second)) {
			t.Errorf("row %d: datetime('now') = %s, outside [%v, %v]", id, dt, before, after)
		}
		if sec, _ := strconv.ParseInt(s, 10, 64); sec != ue || sec < before.Unix()-2 || sec > after.Unix()+2 {
			t.Errorf("row %d: strftime('%%s') = %s, unixepoch() = %d", id, s, ue)
		}
	}
	rows.Close()
	if len(seenR) != 15 {
		t.Fatalf("%d rows, want 15", len(seenR))
	}

	want := dumpDB(t, filepath.Join(dir, "hiqlite.db"))
	db.Close()

	// Feed the log to a fresh state machine.
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	log, err := wal.Open(filepath.Join(dir, "raft"), wal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	first, _ := log.FirstIndex()
	last, _ := log.LastIndex()
	fresh := filepath.Join(t.TempDir(), "replay.db")
	sm, err := replication.Open(fresh, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := log.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		for _, r := range sm.ApplyBatch([]*raft.Log{&l}) {
			if resp, ok := r.(*replication.Response); ok && resp.Err != nil {
				t.Fatalf("replay of entry %d: %v", i, resp.Err)
			}
		}
	}
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	got := dumpDB(t, fresh)
	if !bytes.Equal(got, want) {
		t.Errorf("replayed database differs:\n--- node\n%s\n--- replay\n%s", want, got)
	}
}

// dumpDB renders every table of the database at path, rows in rowid order
// (WITHOUT ROWID tables, which have at least three columns here, by them),
// each value with its storage class, so equal dumps mean equal tables.
func dumpDB(t *testing.T, path string) []byte {
	t.Helper()
	c, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var names []string
	noRowid := map[string]bool{}
	s, _, err := c.Prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for s.Step() {
		names = append(names, s.ColumnText(0))
		noRowid[s.ColumnText(0)] = strings.Contains(strings.ToUpper(s.ColumnText(1)), "WITHOUT ROWID")
		fmt.Fprintf(&out, "%s\n", s.ColumnText(1))
	}
	s.Close()
	for _, name := range names {
		order := "rowid"
		if noRowid[name] {
			order = "1, 2, 3" // _hiqlite_sessions and the like: (node, session, ...)
		}
		q, _, err := c.Prepare(`SELECT * FROM "` + name + `" ORDER BY ` + order)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "== %s\n", name)
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
