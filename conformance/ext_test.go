package conformance

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	sqlite3driver "github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/ext/fts5"
	"github.com/ncruces/go-sqlite3/ext/rtree"
)

// TestExtensions runs the FTS5, R*Tree and geopoly cases on plain SQLite
// with the same modules registered (ncruces/go-sqlite3/ext/fts5 and
// ext/rtree, what hiqlite registers on every connection), then on a single
// node and a follower of 3, and compares their transcripts line for line.
// At the end the nodes' tables, the modules' shadow tables among them,
// must equal plain SQLite's.
func TestExtensions(t *testing.T) {
	ref := openReferenceExt(t)
	ts := &transcripts{ref: ref, done: map[string][]string{}}
	t.Run("sqlite", func(t *testing.T) {
		for _, c := range extCases {
			t.Run(c.name, func(t *testing.T) { ts.of(t, c) })
		}
	})
	for _, topo := range []topology{topologies[0], topologies[2]} {
		t.Run(topo.name, func(t *testing.T) {
			e := topo.open(t)
			lines := 0
			for _, c := range extCases {
				t.Run(c.name, func(t *testing.T) {
					want := ts.of(t, c)
					lines += len(want)
					got := runCase(t, e, c)
					compareTranscripts(t, e.name, got, want)
				})
			}
			e.sameTables(t)
			// Every node answers searches alike, not only the one written to.
			wantProbe := runCase(t, ref, extProbe)
			for i, db := range e.nodes {
				on := *e
				on.db, on.name = db, e.name+"/"+fmt.Sprint(i+1)
				compareTranscripts(t, on.name, runCase(t, &on, extProbe), wantProbe)
				lines += len(wantProbe)
			}
			want, got := dumpApp(t, ref.db), dumpApp(t, e.db)
			if !bytes.Equal(got, want) {
				t.Errorf("%s's tables differ from plain SQLite's:\n--- %s\n%s\n--- sqlite\n%s", e.name, e.name, clip(got), clip(want))
			}
			t.Logf("%d transcript lines equal to plain SQLite's; %d tables (%d bytes of dump) equal to plain SQLite's", lines, bytes.Count(want, []byte("\n== ")), len(want))
		})
	}
}

// TestExtensionsNeedRegistering pins why the reference registers them:
// the ncruces driver alone has neither FTS5 nor R*Tree.
func TestExtensionsNeedRegistering(t *testing.T) {
	ref := openReference(t)
	for _, q := range []string{
		`CREATE VIRTUAL TABLE f USING fts5(a)`,
		`CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)`,
		`CREATE VIRTUAL TABLE g USING geopoly()`,
	} {
		if _, err := ref.db.Exec(q); err == nil || !strings.Contains(err.Error(), "no such module") {
			t.Errorf("plain ncruces driver: %s: %v, want no such module", q, err)
		}
	}
}

// openReferenceExt is openReference with FTS5, R*Tree and geopoly
// registered on every connection.
func openReferenceExt(t testing.TB) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ref.db")
	db, err := sqlite3driver.Open("file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)", func(c *sqlite3.Conn) error {
		if err := fts5.Register(c); err != nil {
			return err
		}
		return rtree.Register(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return &env{name: "sqlite", db: db, nodes: []*sql.DB{db}}
}

var extCases = []sqlCase{
	{"fts5_external", caseFTS5External},
	{"fts5_vocab", caseFTS5Vocab},
	{"fts5_tables", caseFTS5Tables},
	{"rtree", caseRTree},
	{"geopoly", caseGeopoly},
}

// stmtQuery lets the recorder run a prepared statement; the query text is
// only its name in the transcript.
type stmtQuery struct{ *sql.Stmt }

func (s stmtQuery) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.Stmt.QueryContext(ctx, args...)
}

// extProbe searches what the cases left, on every node.
var extProbe = sqlCase{"probe", func(r *recorder) {
	r.query(`SELECT rowid, bm25(docs_fts), snippet(docs_fts, 1, '[', ']', '…', 4) FROM docs_fts WHERE docs_fts MATCH 'leader OR log OR gossip' ORDER BY rank, rowid`)
	r.query(`SELECT term, doc, cnt FROM notes_row WHERE term < 'd' ORDER BY term`)
	r.query(`SELECT rowid, name FROM tri WHERE name LIKE '%sqlite%' ORDER BY rowid`)
	r.query(`SELECT id, name FROM boxes WHERE maxx >= 20 AND minx <= 60 AND maxy >= 10 AND miny <= 40 ORDER BY id`)
	r.query(`SELECT name, geopoly_area(_shape) FROM shapes WHERE geopoly_overlap(_shape, '[[0,0],[30,0],[30,30],[0,30],[0,0]]') ORDER BY name`)
}}

var ftsDocs = []struct{ title, body, lang string }{
	{"SQLite and WAL", "SQLite writes to the write ahead log, then checkpoints the log into the database file.", "en"},
	{"Raft consensus", "A raft leader replicates the log to followers; a majority acknowledges every entry.", "en"},
	{"Leader election", "When the leader stops sending heartbeats, a follower starts an election and may become leader.", "en"},
	{"Gossip", "Memberlist gossip spreads which nodes are alive; raft decides who writes.", "en"},
	{"Full-text search", "FTS5 indexes text; MATCH finds rows, bm25 ranks them, snippet and highlight show where.", "en"},
	{"R*Tree", "An rtree index answers range queries on boxes: which boxes overlap this one.", "en"},
	{"Crème brûlée", "Un café crème, une crème brûlée et un gâteau: le café est servi.", "fr"},
	{"Replication", "Replicated state machines apply the same log in the same order and reach the same database.", "en"},
	{"Snapshots", "A snapshot of the database lets a follower catch up without replaying the whole log.", "en"},
	{"SQLite SQLite SQLite", "sqlite sqlite: a title and body that say sqlite many times rank high in bm25.", "en"},
	{"Straße", "Die Straße ist lang; STRASSE und strasse sind andere Schreibweisen.", "de"},
	{"Writes", "Every write goes through the leader; reads are local to each node.", "en"},
}

// caseFTS5External is the external-content pattern: a table, its FTS5
// index with content='docs', and triggers keeping the index in step with
// inserts, updates and deletes (sent to the follower, so through the
// cluster); MATCH in its query syntax, rank and bm25 with weights,
// highlight, snippet, the index's commands, and errors.
func caseFTS5External(r *recorder) {
	r.mustExec(`CREATE TABLE docs(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, lang TEXT)`)
	r.mustExec(`CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='docs', content_rowid='id', tokenize='unicode61 remove_diacritics 2')`)
	r.mustExec(`CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN
		INSERT INTO docs_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
	END`)
	r.mustExec(`CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN
		INSERT INTO docs_fts(docs_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
	END`)
	r.mustExec(`CREATE TRIGGER docs_au AFTER UPDATE ON docs BEGIN
		INSERT INTO docs_fts(docs_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
		INSERT INTO docs_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
	END`)
	for _, d := range ftsDocs {
		r.mustExec(`INSERT INTO docs(title, body, lang) VALUES (?, ?, ?)`, d.title, d.body, d.lang)
	}
	search := func() {
		for _, m := range []string{
			`sqlite`, `raft AND leader`, `raft OR gossip`, `database NOT sqlite`,
			`"write ahead log"`, `NEAR(leader election, 3)`, `repl*`, `title:sqlite`,
			`{title body}: cafe`, `creme brulee`, `^a`, `body:(log OR wal) NOT title:raft`,
			`strasse`, `lead* + elect*`, `"the log"`,
		} {
			r.query(`SELECT rowid, title FROM docs_fts WHERE docs_fts MATCH ? ORDER BY rank, rowid`, m)
		}
		r.query(`SELECT rowid, bm25(docs_fts), bm25(docs_fts, 10.0, 1.0) FROM docs_fts WHERE docs_fts MATCH 'sqlite OR raft OR log' ORDER BY bm25(docs_fts, 10.0, 1.0), rowid`)
		r.query(`SELECT rowid, highlight(docs_fts, 0, '[', ']'), highlight(docs_fts, 1, '<b>', '</b>') FROM docs_fts WHERE docs_fts MATCH 'raft OR leader' ORDER BY rowid`)
		r.query(`SELECT rowid, snippet(docs_fts, 1, '[', ']', '…', 5), snippet(docs_fts, -1, '«', '»', '...', 3) FROM docs_fts WHERE docs_fts MATCH 'log' ORDER BY rank, rowid`)
		r.query(`SELECT docs.id, docs.lang, docs_fts.title FROM docs_fts JOIN docs ON docs.id = docs_fts.rowid WHERE docs_fts MATCH ? ORDER BY docs_fts.rank, docs.id`, `cafe OR straße`)
		r.query(`SELECT count(*) FROM docs_fts WHERE docs_fts MATCH ?`, `the`)
		r.query(`SELECT rowid, title FROM docs_fts(?) ORDER BY rowid`, `follower`)
	}
	search()

	// Updates and deletes, through the triggers.
	r.mustExec(`UPDATE docs SET body = ? WHERE id = ?`, "Heartbeats stopped: the followers hold an election for a new leader.", 3)
	r.mustExec(`UPDATE docs SET title = title || ' (fr)' WHERE lang = 'fr'`)
	r.mustExec(`DELETE FROM docs WHERE id IN (4, 9)`)
	r.mustExec(`DELETE FROM docs WHERE title LIKE 'Writes%'`)
	// In a transaction: a write, then a search that must see it.
	tx, err := r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.execOn(tx, `INSERT INTO docs(id, title, body, lang) VALUES (40, 'Gossip again', 'Gossip and raft, raft and gossip.', 'en')`)
	r.queryOn(tx, `SELECT rowid, highlight(docs_fts, 1, '[', ']') FROM docs_fts WHERE docs_fts MATCH 'gossip' ORDER BY rank, rowid`)
	r.execOn(tx, `DELETE FROM docs WHERE id = 2`)
	r.queryOn(tx, `SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'raft' ORDER BY rowid`)
	if err := tx.Commit(); err != nil {
		r.note("commit: %s", errText(err))
	}
	// Rolled back: leaves the index as it was.
	tx, err = r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.execOn(tx, `INSERT INTO docs(id, title, body) VALUES (41, 'Gone', 'rolled back zebra')`)
	r.queryOn(tx, `SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'zebra'`)
	if err := tx.Rollback(); err != nil {
		r.note("rollback: %s", errText(err))
	}
	r.query(`SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'zebra'`)
	search()

	// The index's commands.
	r.mustExec(`INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')`)
	r.mustExec(`INSERT INTO docs_fts(docs_fts, rank) VALUES ('rank', 'bm25(10.0, 5.0)')`)
	r.query(`SELECT rowid, rank FROM docs_fts WHERE docs_fts MATCH 'leader OR log' ORDER BY rank, rowid`)
	r.mustExec(`INSERT INTO docs_fts(docs_fts) VALUES ('optimize')`)
	r.mustExec(`INSERT INTO docs_fts(docs_fts) VALUES ('rebuild')`)
	r.mustExec(`INSERT INTO docs_fts(docs_fts, rank) VALUES ('automerge', 2)`)
	r.mustExec(`INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')`)
	r.query(`SELECT rowid, rank FROM docs_fts WHERE docs_fts MATCH 'leader OR log' ORDER BY rank, rowid`)

	// The auxiliary functions in a write: computed on the writer, stored
	// on every node.
	r.mustExec(`CREATE TABLE hits(id INTEGER PRIMARY KEY, score REAL, snip TEXT, hl TEXT)`)
	r.mustExec(`INSERT INTO hits SELECT rowid, bm25(docs_fts, 2.0, 1.0), snippet(docs_fts, 1, '[', ']', '…', 4), highlight(docs_fts, 0, '<', '>') FROM docs_fts WHERE docs_fts MATCH 'log OR leader'`)
	r.mustExec(`UPDATE docs SET lang = 'hit' WHERE id IN (SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'raft OR gossip')`)
	r.query(`SELECT * FROM hits ORDER BY id`)
	r.query(`SELECT id, lang FROM docs ORDER BY id`)

	// A prepared search, run with several arguments.
	st, err := r.db.PrepareContext(r.ctx, `SELECT rowid, highlight(docs_fts, 1, '[', ']') FROM docs_fts WHERE docs_fts MATCH ? ORDER BY rank, rowid`)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, m := range []string{`leader`, `log NOT raft`, `"same log"`, `nothing`} {
		r.queryOn(stmtQuery{st}, "prepared: "+m, m)
	}
	st.Close()

	// Errors: the query syntax, an unknown column, an index out of step.
	r.query(`SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?`, `"unterminated`)
	r.query(`SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?`, `nosuchcolumn: x`)
	r.query(`SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?`, `AND raft`)
	r.exec(`INSERT INTO docs_fts(docs_fts) VALUES ('no-such-command')`)
	r.query(`SELECT snippet(docs_fts, 1, '[', ']', '', 100) FROM docs_fts WHERE docs_fts MATCH 'log'`)
}

// caseFTS5Vocab reads the fts5vocab tables of an index (row, col and
// instance) before and after deletes and updates.
func caseFTS5Vocab(r *recorder) {
	r.mustExec(`CREATE VIRTUAL TABLE notes USING fts5(subject, text)`)
	r.mustExec(`CREATE VIRTUAL TABLE notes_row USING fts5vocab(notes, 'row')`)
	r.mustExec(`CREATE VIRTUAL TABLE notes_col USING fts5vocab(notes, 'col')`)
	r.mustExec(`CREATE VIRTUAL TABLE notes_inst USING fts5vocab(notes, 'instance')`)
	for i, d := range ftsDocs {
		r.mustExec(`INSERT INTO notes(rowid, subject, text) VALUES (?, ?, ?)`, 100+i, d.title, d.body)
	}
	vocab := func() {
		r.query(`SELECT term, doc, cnt FROM notes_row ORDER BY term`)
		r.query(`SELECT term, col, doc, cnt FROM notes_col WHERE term BETWEEN 'l' AND 'r' ORDER BY term, col`)
		r.query(`SELECT term, doc, col, offset FROM notes_inst WHERE term IN ('raft', 'log', 'sqlite', 'leader') ORDER BY term, doc, col, offset`)
		r.query(`SELECT count(*), sum(cnt), max(doc) FROM notes_row`)
	}
	vocab()
	r.mustExec(`DELETE FROM notes WHERE rowid IN (101, 103, 109)`)
	r.mustExec(`UPDATE notes SET text = 'log log log, raft raft' WHERE rowid = 100`)
	r.mustExec(`INSERT INTO notes(notes) VALUES ('optimize')`)
	vocab()
	r.query(`SELECT rowid, subject FROM notes WHERE notes MATCH 'log' ORDER BY rank, rowid`)
}

// caseFTS5Tables covers other kinds of FTS5 table: porter stemming and
// prefix indexes, trigram (LIKE and GLOB through the index), contentless
// with deletes, detail=column, and columns left out of the index.
func caseFTS5Tables(r *recorder) {
	r.mustExec(`CREATE VIRTUAL TABLE stem USING fts5(t, tokenize='porter unicode61', prefix='2 3')`)
	for i, s := range []string{"running runners ran", "the runner runs", "connection connected connecting", "a connective tissue", "ranking ranked"} {
		r.mustExec(`INSERT INTO stem(rowid, t) VALUES (?, ?)`, i+1, s)
	}
	for _, m := range []string{`run`, `running`, `connect`, `con*`, `ra*`, `rank`, `"runner run"`} {
		r.query(`SELECT rowid, highlight(stem, 0, '(', ')') FROM stem WHERE stem MATCH ? ORDER BY rank, rowid`, m)
	}

	r.mustExec(`CREATE VIRTUAL TABLE tri USING fts5(name, tokenize='trigram case_sensitive 0')`)
	for i, s := range []string{"hiqlite", "SQLite", "sqlite3_prepare", "Raft-WAL", "memberlist", "ncruces/go-sqlite3"} {
		r.mustExec(`INSERT INTO tri(rowid, name) VALUES (?, ?)`, i+1, s)
	}
	r.query(`SELECT rowid, name FROM tri WHERE name LIKE '%qlit%' ORDER BY rowid`)
	r.query(`SELECT rowid, name FROM tri WHERE name GLOB '*lite*' ORDER BY rowid`)
	r.query(`SELECT rowid, name FROM tri WHERE tri MATCH 'SQL' ORDER BY rank, rowid`)
	r.query(`SELECT rowid, name FROM tri WHERE name LIKE '%wa%' ORDER BY rowid`)

	r.mustExec(`CREATE VIRTUAL TABLE cl USING fts5(a, b, content='', contentless_delete=1)`)
	for i, d := range ftsDocs {
		r.mustExec(`INSERT INTO cl(rowid, a, b) VALUES (?, ?, ?)`, i+1, d.title, d.body)
	}
	r.query(`SELECT rowid, a, b FROM cl WHERE cl MATCH 'leader' ORDER BY rowid`)
	r.mustExec(`DELETE FROM cl WHERE rowid = 3`)
	r.exec(`UPDATE cl SET a = 'x' WHERE rowid = 2`)
	r.query(`SELECT rowid FROM cl WHERE cl MATCH 'leader' ORDER BY rowid`)
	r.mustExec(`INSERT INTO cl(cl, rank) VALUES ('merge', 16)`)
	r.mustExec(`INSERT INTO cl(cl) VALUES ('delete-all')`)
	r.query(`SELECT count(*) FROM cl WHERE cl MATCH 'leader OR log'`)

	r.mustExec(`CREATE VIRTUAL TABLE dc USING fts5(a, b UNINDEXED, detail=column)`)
	for i, d := range ftsDocs {
		r.mustExec(`INSERT INTO dc(rowid, a, b) VALUES (?, ?, ?)`, i+1, d.body, d.lang)
	}
	r.query(`SELECT rowid, b FROM dc WHERE dc MATCH 'log AND the' ORDER BY rank, rowid`)
	r.query(`SELECT rowid FROM dc WHERE dc MATCH '"the log"'`)
	r.query(`SELECT rowid FROM dc WHERE dc MATCH 'fr'`)
	r.query(`SELECT rowid, b FROM dc WHERE b = 'fr'`)
}

// caseRTree covers an R*Tree with auxiliary columns: range queries
// (overlap, containment), a join, 32-bit float rounding, updates and
// deletes, rtreecheck, rtree_i32, and a box that is not one.
func caseRTree(r *recorder) {
	r.mustExec(`CREATE VIRTUAL TABLE boxes USING rtree(id, minx, maxx, miny, maxy, +name, +kind)`)
	r.mustExec(`CREATE TABLE owners(box INTEGER PRIMARY KEY, owner TEXT)`)
	tx, err := r.db.BeginTx(r.ctx, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := range 10 {
		for j := range 10 {
			id := i*10 + j + 1
			x, y := float64(i)*10.1, float64(j)*7.3
			if _, err := tx.ExecContext(r.ctx, `INSERT INTO boxes VALUES (?, ?, ?, ?, ?, ?, ?)`, id, x, x+6.66, y, y+3.33, "b"+string(rune('a'+i))+string(rune('a'+j)), id%3); err != nil {
				r.t.Fatal(err)
			}
			if id%4 == 0 {
				if _, err := tx.ExecContext(r.ctx, `INSERT INTO owners VALUES (?, ?)`, id, "owner"+string(rune('0'+id%7))); err != nil {
					r.t.Fatal(err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		r.t.Fatal(err)
	}
	queries := func() {
		r.query(`SELECT id FROM boxes WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ? ORDER BY id`, 20.0, 35.5, 10.0, 22.0)
		r.query(`SELECT id, name FROM boxes WHERE minx >= ? AND maxx <= ? AND miny >= ? AND maxy <= ? ORDER BY id`, 10.0, 50.0, 0.0, 30.0)
		r.query(`SELECT * FROM boxes WHERE id IN (1, 37, 100) ORDER BY id`)
		r.query(`SELECT kind, count(*), sum(maxx - minx) FROM boxes WHERE minx < 40 GROUP BY kind ORDER BY kind`)
		r.query(`SELECT b.id, o.owner FROM boxes b JOIN owners o ON o.box = b.id WHERE b.miny > 30 AND b.maxx < 60 ORDER BY b.id`)
		r.query(`SELECT count(*) FROM boxes WHERE id BETWEEN 20 AND 40`)
		r.query(`SELECT rtreecheck('boxes')`)
	}
	queries()
	r.mustExec(`UPDATE boxes SET minx = minx + 1000, maxx = maxx + 1000 WHERE id % 9 = 0`)
	r.mustExec(`UPDATE boxes SET name = 'renamed' WHERE id BETWEEN 45 AND 47`)
	r.mustExec(`DELETE FROM boxes WHERE id % 4 = 0`)
	r.mustExec(`DELETE FROM owners WHERE box NOT IN (SELECT id FROM boxes)`)
	queries()
	r.query(`SELECT id FROM boxes WHERE minx > 900 ORDER BY id`)
	r.mustExec(`DELETE FROM owners WHERE box IN (SELECT id FROM boxes WHERE minx > 900)`)
	r.mustExec(`CREATE TABLE far AS SELECT id, minx, maxy, name FROM boxes WHERE minx > 900`)
	r.mustExec(`DELETE FROM boxes WHERE id IN (SELECT id FROM boxes WHERE maxx >= 1040)`)
	r.query(`SELECT * FROM far ORDER BY id`)
	// minx > maxx is refused.
	r.exec(`INSERT INTO boxes(id, minx, maxx, miny, maxy) VALUES (500, 5, 1, 0, 1)`)
	r.exec(`INSERT INTO boxes(id, minx, maxx, miny, maxy) VALUES (1, 0, 1, 0, 1)`)
	r.mustExec(`INSERT OR REPLACE INTO boxes(id, minx, maxx, miny, maxy, name) VALUES (1, 0, 1, 0, 1, 'replaced')`)
	r.query(`SELECT * FROM boxes WHERE id = 1`)

	r.mustExec(`CREATE VIRTUAL TABLE ib USING rtree_i32(id, x0, x1, y0, y1)`)
	r.mustExec(`INSERT INTO ib VALUES (1, 0, 10, 0, 10), (2, 5.7, 20.2, -3, 4), (3, -2147483648, 2147483647, 0, 0)`)
	r.query(`SELECT * FROM ib ORDER BY id`)
	r.query(`SELECT id FROM ib WHERE x1 >= 6 AND x0 <= 8 ORDER BY id`)
	r.query(`SELECT rtreecheck('ib')`)
}

// caseGeopoly covers geopoly: shapes stored from JSON, their area, bbox,
// JSON and SVG forms, overlap and within searches, point containment,
// transforms and updates of _shape.
func caseGeopoly(r *recorder) {
	r.mustExec(`CREATE VIRTUAL TABLE shapes USING geopoly(name, color)`)
	for _, s := range []struct{ name, shape, color string }{
		{"square", `[[0,0],[4,0],[4,4],[0,4],[0,0]]`, "red"},
		{"triangle", `[[5,5],[9,5],[7,9],[5,5]]`, "green"},
		{"thin", `[[-3,1],[10,1],[10,1.5],[-3,1.5],[-3,1]]`, "blue"},
		{"far", `[[100,100],[101,100],[101,101],[100,100]]`, "black"},
	} {
		r.mustExec(`INSERT INTO shapes(_shape, name, color) VALUES (?, ?, ?)`, s.shape, s.name, s.color)
	}
	r.mustExec(`INSERT INTO shapes(_shape, name, color) VALUES (geopoly_regular(20, 20, 5, 8), 'octagon', 'white')`)
	queries := func() {
		r.query(`SELECT rowid, name, geopoly_area(_shape), geopoly_json(_shape), geopoly_json(geopoly_bbox(_shape)) FROM shapes ORDER BY rowid`)
		r.query(`SELECT name FROM shapes WHERE geopoly_overlap(_shape, ?) ORDER BY name`, `[[3,3],[6,3],[6,6],[3,6],[3,3]]`)
		r.query(`SELECT name FROM shapes WHERE geopoly_within(_shape, ?) ORDER BY name`, `[[-5,-5],[12,-5],[12,12],[-5,12],[-5,-5]]`)
		r.query(`SELECT name, geopoly_contains_point(_shape, 2, 1.2) FROM shapes ORDER BY rowid`)
		r.query(`SELECT geopoly_svg(_shape, 'fill="' || color || '"') FROM shapes WHERE name IN ('square', 'triangle') ORDER BY rowid`)
		r.query(`SELECT geopoly_json(geopoly_group_bbox(_shape)) FROM shapes WHERE name <> 'far'`)
		r.query(`SELECT _shape FROM shapes WHERE name = 'triangle'`)
	}
	queries()
	r.mustExec(`UPDATE shapes SET _shape = geopoly_xform(_shape, 1, 0, 0, 1, 10, 10) WHERE name = 'square'`)
	r.mustExec(`UPDATE shapes SET _shape = geopoly_ccw(?) WHERE name = 'far'`, `[[0,0],[0,1],[1,1],[1,0],[0,0]]`)
	r.mustExec(`DELETE FROM shapes WHERE name = 'thin'`)
	queries()
	r.query(`SELECT geopoly_json(geopoly_regular(0, 0, 1, 4)), geopoly_area(geopoly_regular(0, 0, 1, 1000))`)
	r.exec(`INSERT INTO shapes(_shape, name) VALUES ('not a polygon', 'bad')`)
	r.query(`SELECT count(*) FROM shapes`)
}
