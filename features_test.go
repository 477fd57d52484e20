package hiqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/uuidtest"
)

// allRows runs q on db and renders every row, values with their Go types.
func allRows(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := []string{}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, v := range vals {
			if s, ok := v.([]byte); ok {
				v = string(s)
			}
			fmt.Fprintf(&b, "%T:%v|", v, v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// sameEverywhere runs q on every member (after EnsureSame) and returns
// its rows, failing when two members differ.
func sameEverywhere(t *testing.T, c *clustertest.Cluster, q string, args ...any) []string {
	t.Helper()
	var want []string
	for i, m := range c.Members {
		got := allRows(t, m.DB, q, args...)
		if i == 0 {
			want = got
		} else if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s on %s:\n%q\nwant (on %s)\n%q", q, m.ID, got, c.Members[0].ID, want)
		}
	}
	return want
}

// The SQLite docs' external-content pattern
// (https://sqlite.org/fts5.html#external_content_tables), written from a
// follower and searched on every node.
func TestClusterFTS5AndRTree(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	fol := c.Members[c.Follower()].DB

	mustExec(t, fol, `CREATE TABLE doc(id INTEGER PRIMARY KEY, title TEXT, body TEXT)`)
	mustExec(t, fol, `CREATE VIRTUAL TABLE doc_fts USING fts5(title, body, content='doc', content_rowid='id')`)
	mustExec(t, fol, `CREATE TRIGGER doc_ai AFTER INSERT ON doc BEGIN
		INSERT INTO doc_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
	END`)
	mustExec(t, fol, `CREATE TRIGGER doc_ad AFTER DELETE ON doc BEGIN
		INSERT INTO doc_fts(doc_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
	END`)
	mustExec(t, fol, `CREATE TRIGGER doc_au AFTER UPDATE ON doc BEGIN
		INSERT INTO doc_fts(doc_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
		INSERT INTO doc_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
	END`)
	docs := [][2]string{
		{"Raft", "Raft is a consensus algorithm that is designed to be easy to understand."},
		{"SQLite", "SQLite is a small, fast, self-contained SQL database engine."},
		{"FTS5", "FTS5 is an SQLite virtual table module that provides full-text search."},
		{"R*Tree", "An R*Tree is a special index that is designed for doing range queries."},
		{"Gossip", "Nodes gossip to find each other; the database engine does not."},
	}
	for i, d := range docs {
		// From every node, and some of them in a transaction.
		db := c.Members[i%len(c.Members)].DB
		if i%2 == 0 {
			mustExec(t, db, `INSERT INTO doc(title, body) VALUES (?, ?)`, d[0], d[1])
			continue
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, `INSERT INTO doc(title, body) VALUES (?, ?)`, d[0], d[1])
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, fol, `UPDATE doc SET body = 'Nodes gossip to find each other; raft elects a leader.' WHERE title = 'Gossip'`)
	mustExec(t, fol, `DELETE FROM doc WHERE title = 'R*Tree'`)
	// Read your writes on the follower, through the index.
	if n := count(t, fol, `SELECT count(*) FROM doc_fts WHERE doc_fts MATCH 'raft'`); n != 2 {
		t.Errorf("follower finds %d documents matching raft right after its writes, want 2", n)
	}
	c.EnsureSame()

	match := sameEverywhere(t, c, `SELECT rowid, title, round(bm25(doc_fts), 6),
			highlight(doc_fts, 1, '[', ']'), snippet(doc_fts, 1, '<', '>', '...', 4)
		FROM doc_fts WHERE doc_fts MATCH ? ORDER BY bm25(doc_fts), rowid`, `database OR raft`)
	if len(match) != 3 {
		t.Errorf("MATCH 'database OR raft': %q, want 3 rows", match)
	}
	if got := sameEverywhere(t, c, `SELECT title FROM doc_fts WHERE doc_fts MATCH 'designed' ORDER BY rank`); !reflect.DeepEqual(got, []string{"string:Raft|"}) {
		t.Errorf("deleted document still found, or the kept one lost: %q", got)
	}
	if got := sameEverywhere(t, c, `SELECT highlight(doc_fts, 1, '[', ']') FROM doc_fts WHERE doc_fts MATCH 'leader'`); !reflect.DeepEqual(got, []string{"string:Nodes gossip to find each other; raft elects a [leader].|"}) {
		t.Errorf("updated document: %q", got)
	}
	// The index agrees with its content table on every node.
	for _, m := range c.Members {
		if _, err := m.DB.Exec(`INSERT INTO doc_fts(doc_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
			t.Errorf("integrity-check from %s: %v", m.ID, err)
		}
	}

	// R*Tree and geopoly, written from the follower, queried on followers.
	mustExec(t, fol, `CREATE VIRTUAL TABLE box USING rtree(id, minX, maxX, minY, maxY)`)
	mustExec(t, fol, `INSERT INTO box VALUES (1, -10, -5, 30, 35), (2, 100, 105, 0, 5), (3, -11, -4, 29, 36)`)
	mustExec(t, fol, `CREATE VIRTUAL TABLE area USING geopoly(name)`)
	mustExec(t, fol, `INSERT INTO area(name, _shape) VALUES ('triangle', '[[0,0],[2,0],[1,2],[0,0]]'), ('far', '[[10,10],[12,10],[11,12],[10,10]]')`)
	c.EnsureSame()
	l := c.Leader()
	for i, m := range c.Members {
		if i == l {
			continue
		}
		if got := allRows(t, m.DB, `SELECT id FROM box WHERE minX >= -12 AND maxX <= -4 AND minY >= 28 AND maxY <= 36 ORDER BY id`); !reflect.DeepEqual(got, []string{"int64:1|", "int64:3|"}) {
			t.Errorf("R*Tree query on follower %s: %q", m.ID, got)
		}
		if got := allRows(t, m.DB, `SELECT name FROM area WHERE geopoly_contains_point(_shape, 1, 1)`); !reflect.DeepEqual(got, []string{"string:triangle|"}) {
			t.Errorf("geopoly query on follower %s: %q", m.ID, got)
		}
	}
	// EnsureSame compares every table, the shadow tables of FTS5 and
	// R*Tree (doc_fts_data, box_node, ...) with the rest.
	dump := clustertest.Dump(t, c.Members[0].DB)
	for _, shadow := range []string{"doc_fts_data", "doc_fts_idx", "box_node", "area_node"} {
		if !bytes.Contains(dump, []byte("== "+shadow+"\n")) {
			t.Errorf("the dump lacks %s", shadow)
		}
	}

	// A 'delete' that does not match what was indexed leaves the index out
	// of step with its external content, and FTS5 reports that as
	// SQLITE_CORRUPT_VTAB ("database disk image is malformed"). It is the
	// statement's error on every node alike, not a damaged file: the nodes
	// keep running.
	mustExec(t, fol, `INSERT INTO doc_fts(doc_fts, rowid, title, body) VALUES ('delete', 1, 'Raft', 'not what was indexed')`)
	_, err := fol.Exec(`INSERT INTO doc_fts(doc_fts, rank) VALUES ('integrity-check', 1)`)
	if !errors.Is(err, sqlite3.CORRUPT_VTAB) {
		t.Errorf("integrity-check of an index out of step: %v, want SQLITE_CORRUPT_VTAB", err)
	}
	mustExec(t, fol, `INSERT INTO doc(title, body) VALUES ('after', 'the cluster still writes')`)
	c.EnsureSame()
	sameEverywhere(t, c, `SELECT rowid FROM doc_fts WHERE doc_fts MATCH 'cluster'`)
}

// UUID defaults filled from every node, in autocommit and in transactions:
// the same on every node, well formed, version 7 stamped with the command
// time.
func TestClusterUUIDDefaults(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	fol := c.Members[c.Follower()].DB
	mustExec(t, fol, `CREATE TABLE u(id TEXT PRIMARY KEY DEFAULT (uuid4()), t TEXT DEFAULT (uuid7()), n)`)

	type span struct{ from, to int64 } // wall clock around a write, ms
	spans := map[string]span{}         // n -> when its command ran
	var order []string                 // n in the order written
	write := func(n string, f func()) {
		from := time.Now().UnixMilli()
		f()
		spans[n] = span{from, time.Now().UnixMilli()}
		order = append(order, n)
	}
	for round := range 2 {
		for i, m := range c.Members {
			db := m.DB
			n := fmt.Sprintf("%d-%s-", round, m.ID)
			write(n+"auto", func() {
				var id, u7 string
				if err := db.QueryRow(`INSERT INTO u(n) VALUES (?) RETURNING id, t`, n+"auto").Scan(&id, &u7); err != nil {
					t.Fatal(err)
				}
				c.EnsureSame()
				for _, m := range c.Members {
					var got string
					if err := m.DB.QueryRow(`SELECT t FROM u WHERE id = ?`, id).Scan(&got); err != nil || got != u7 {
						t.Errorf("%s holds %q for %s (%v), the writer returned %q", m.ID, got, id, err, u7)
					}
				}
			})
			write(n+"multi", func() {
				mustExec(t, db, `INSERT INTO u(n) VALUES (?1), (?1), (?1)`, n+"multi")
			})
			write(n+"tx", func() {
				tx, err := db.Begin()
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, tx, `INSERT INTO u(n) VALUES (?)`, n+"tx")
				mustExec(t, tx, `INSERT INTO u(n) SELECT n FROM u WHERE n = ?`, n+"tx")
				if i == 1 {
					mustExec(t, tx, `INSERT INTO u(id, n) VALUES (gen_random_uuid(), ?)`, n+"tx")
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	c.EnsureSame()
	rows := sameEverywhere(t, c, `SELECT rowid, id, t, n FROM u ORDER BY rowid`)
	if len(rows) != 2*(3*(1+3+2)+1) {
		t.Errorf("%d rows, want %d", len(rows), 2*(3*(1+3+2)+1))
	}

	r, err := fol.Query(`SELECT id, t, n FROM u ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	last := map[string]string{} // n -> its last uuid7
	ids := map[string]bool{}
	for r.Next() {
		var id, u7, n string
		if err := r.Scan(&id, &u7, &n); err != nil {
			t.Fatal(err)
		}
		uuidtest.Check(t, id, 4)
		ms := uuidtest.Millis(uuidtest.Check(t, u7, 7))
		if s := spans[n]; ms < s.from || ms > s.to {
			t.Errorf("%s: uuid7 %s stamped %d, outside its command's %d..%d", n, u7, ms, s.from, s.to)
		}
		if ids[id] {
			t.Errorf("uuid4 %s twice", id)
		}
		ids[id] = true
		// The rows of one command, in the order it made them.
		if u7 <= last[n] {
			t.Errorf("%s: uuid7 %s after %s", n, u7, last[n])
		}
		last[n] = u7
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	// Commands written one after another: their UUIDs sort likewise,
	// except that two commands of one millisecond may come either way.
	for i := 1; i < len(order); i++ {
		prev, cur := order[i-1], order[i]
		if spans[prev].to < spans[cur].from && last[prev] >= last[cur] {
			t.Errorf("%s (uuid7 %s) sorts after the later %s (%s)", prev, last[prev], cur, last[cur])
		}
	}
}

// A follower that catches up from the leader's snapshot (its database
// wiped, the leader's log compacted past it) searches its restored copy
// like the others, and keeps its index up to date afterwards.
func TestClusterFTS5Snapshot(t *testing.T) {
	t.Parallel()
	// Small segments, so that compaction can drop the start of the log.
	c := clustertest.New(t, 3, "_snapshot_entries=16", "_log_segment=1048576")
	l := c.Leader()
	lead := c.Members[l].DB
	mustExec(t, lead, `CREATE TABLE doc(id INTEGER PRIMARY KEY, body TEXT)`)
	mustExec(t, lead, `CREATE VIRTUAL TABLE doc_fts USING fts5(body, content='doc', content_rowid='id')`)
	mustExec(t, lead, `CREATE TRIGGER doc_ai AFTER INSERT ON doc BEGIN
		INSERT INTO doc_fts(rowid, body) VALUES (new.id, new.body);
	END`)
	mustExec(t, lead, `CREATE VIRTUAL TABLE box USING rtree(id, minX, maxX)`)
	f := c.Follower()
	c.Kill(f)
	c.Wipe(f)
	mustExec(t, lead, `CREATE TABLE filler(b)`)
	for range 3 {
		mustExec(t, lead, `INSERT INTO filler VALUES (?)`, make([]byte, 600<<10))
	}
	for i := range 40 {
		mustExec(t, lead, `INSERT INTO doc(body) VALUES (?)`, fmt.Sprintf("entry %d of the log, word%d", i, i%7))
		mustExec(t, lead, `INSERT INTO box VALUES (?, ?, ?)`, i, i, i+1)
	}
	if err := c.Members[l].Node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.Start(f)
	c.WaitReady(30 * time.Second)
	// The follower stored the leader's snapshot it installed.
	if got, _ := filepath.Glob(filepath.Join(c.Members[f].Dir, "snapshots", "snapshots", "*", "meta.json")); len(got) == 0 {
		t.Fatal("the wiped follower caught up without a snapshot")
	}
	mustExec(t, c.Members[f].DB, `INSERT INTO doc(body) VALUES ('written after the restore, word3')`)
	c.EnsureSame()
	got := sameEverywhere(t, c, `SELECT rowid, highlight(doc_fts, 0, '[', ']') FROM doc_fts WHERE doc_fts MATCH 'word3' ORDER BY rank, rowid`)
	if len(got) != 7 {
		t.Errorf("word3 found in %d documents, want 7: %q", len(got), got)
	}
	if n := count(t, c.Members[f].DB, `SELECT count(*) FROM box WHERE minX >= 10 AND maxX <= 20`); n != 10 {
		t.Errorf("R*Tree on the restored follower: %d boxes, want 10", n)
	}
}
