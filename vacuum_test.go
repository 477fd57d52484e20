package hiqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// dumpRowids renders the rows of tables, rowid included, in rowid order.
func dumpRowids(t *testing.T, db *sql.DB, tables ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, name := range tables {
		fmt.Fprintf(&out, "== %s\n", name)
		rows, err := db.Query(`SELECT rowid, * FROM ` + name + ` ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(&out, "%T:%v ", v, v)
			}
			out.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out.Bytes()
}

// fileSize is the size of the file at path, 0 if there is none.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestVacuumCluster(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	fol := c.Members[c.Follower()].DB

	// About 7 MB: a table with an INTEGER PRIMARY KEY, one without but
	// with an index (VACUUM keeps its rowids), and one with neither, whose
	// rowids VACUUM renumbers in order, 1, 2, ..., as SQLite does.
	mustExec(t, fol, `CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB)`)
	mustExec(t, fol, `CREATE TABLE norowid(k TEXT, v BLOB)`)
	mustExec(t, fol, `CREATE INDEX norowid_k ON norowid(k)`)
	mustExec(t, fol, `CREATE TABLE plain(k TEXT, v BLOB)`)
	const fill = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) `
	mustExec(t, fol, fill+`INSERT INTO big(b) SELECT randomblob(2000) FROM n`)
	mustExec(t, fol, fill+`INSERT INTO norowid(k, v) SELECT hex(randomblob(6)), randomblob(2000) FROM n`)
	mustExec(t, fol, fill+`INSERT INTO plain(k, v) SELECT hex(randomblob(6)), randomblob(2000) FROM n`)
	mustExec(t, fol, `DELETE FROM big WHERE id % 10 != 0`)
	mustExec(t, fol, `DELETE FROM norowid WHERE rowid % 10 != 3`)
	mustExec(t, fol, `DELETE FROM plain WHERE rowid % 10 != 7`)
	c.EnsureSame()

	pageSize := int64(0)
	if err := fol.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	before := map[string]int64{}
	want := dumpRowids(t, c.Members[c.Leader()].DB, "big", "norowid")
	wantPlain := strs(t, c.Members[c.Leader()].DB, `SELECT k FROM plain ORDER BY rowid`)
	for _, m := range c.Members {
		var pages int64
		if err := m.DB.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if pages*pageSize < 4<<20 {
			t.Fatalf("%s: %d pages before VACUUM, want at least 4 MiB", m.ID, pages)
		}
		before[m.ID] = pages * pageSize
	}

	if _, err := fol.Exec(`VACUUM`); err != nil {
		t.Fatalf("VACUUM from a follower: %v", err)
	}
	c.EnsureSame()
	wantAfter := dumpRowids(t, c.Members[c.Leader()].DB, "big", "norowid", "plain")
	for _, m := range c.Members {
		if got := dumpRowids(t, m.DB, "big", "norowid", "plain"); !bytes.Equal(got, wantAfter) {
			t.Errorf("%s: rows or rowids differ from the leader's after VACUUM", m.ID)
		}
		path := filepath.Join(m.Dir, "hiqlite.db")
		var pages, free int64
		if err := m.DB.QueryRow(`SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count FROM pragma_freelist_count)`).Scan(&pages, &free); err != nil {
			t.Fatal(err)
		}
		// The checkpoint after VACUUM wrote the database back into its
		// file and truncated the WAL.
		size, wal := fileSize(t, path), fileSize(t, path+"-wal")
		t.Logf("%s: %d bytes before VACUUM, file %d bytes and WAL %d after (%d pages, %d free)", m.ID, before[m.ID], size, wal, pages, free)
		if free != 0 || size != pages*pageSize || size > before[m.ID]/3 {
			t.Errorf("%s: after VACUUM the file is %d bytes (%d pages, %d free), want it to hold the database's %d pages, a third of %d bytes at most", m.ID, size, pages, free, pages, before[m.ID])
		}
		if got := dumpRowids(t, m.DB, "big", "norowid"); !bytes.Equal(got, want) {
			t.Errorf("%s: rows or rowids changed by VACUUM", m.ID)
		}
		if got := strs(t, m.DB, `SELECT rowid || ':' || k FROM plain ORDER BY rowid`); len(got) != len(wantPlain) || len(got) == 0 || got[0] != "1:"+wantPlain[0] || got[len(got)-1] != fmt.Sprintf("%d:%s", len(got), wantPlain[len(got)-1]) {
			t.Errorf("%s: plain after VACUUM: %d rows, first %q, last %q; want %d rows renumbered in order", m.ID, len(got), got[0], got[len(got)-1], len(wantPlain))
		}
		var check string
		if err := m.DB.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("%s: integrity_check = %q, %v", m.ID, check, err)
		}
	}

	// Writes go on; VACUUM INTO and VACUUM in a transaction are refused.
	mustExec(t, fol, `INSERT INTO norowid(k) VALUES ('after')`)
	_, err := fol.Exec(`VACUUM INTO ?`, filepath.Join(t.TempDir(), "copy.db"))
	if !errors.Is(err, hiqlite.ErrRefused) || !strings.Contains(err.Error(), "VACUUM INTO") {
		t.Errorf("VACUUM INTO: %v, want ErrRefused", err)
	}
	_, err = fol.Exec(`VACUUM INTO '` + filepath.Join(t.TempDir(), "copy.db") + `'`)
	if !errors.Is(err, hiqlite.ErrRefused) {
		t.Errorf("VACUUM INTO 'file': %v, want ErrRefused", err)
	}
	tx, err := fol.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO norowid(k) VALUES ('tx')`)
	if _, err := tx.Exec(`VACUUM`); err == nil || !strings.Contains(err.Error(), "cannot VACUUM from within a transaction") {
		t.Errorf("VACUUM in a transaction: %v", err)
	}
	tx.Rollback()
	c.EnsureSame()
}

// An in-memory node (ncruces' mvcc VFS) vacuums too, and keeps its rows.
func TestVacuumMemory(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("hiqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `CREATE TABLE m(k TEXT, v BLOB)`)
	mustExec(t, db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) INSERT INTO m SELECT i, randomblob(2000) FROM n`)
	mustExec(t, db, `DELETE FROM m WHERE rowid % 4 != 0`)
	want := strs(t, db, `SELECT k FROM m ORDER BY rowid`)
	var before, after int64
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	r := mustExec(t, db, `VACUUM`)
	if n, _ := r.RowsAffected(); n != 0 {
		t.Errorf("VACUUM: RowsAffected = %d, want 0", n)
	}
	if id, _ := r.LastInsertId(); id != 0 {
		t.Errorf("VACUUM: LastInsertId = %d, want 0", id)
	}
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after >= before/2 {
		t.Errorf("page_count %d after VACUUM, %d before", after, before)
	}
	// Without an INTEGER PRIMARY KEY or an index, VACUUM renumbers the
	// rowids (as SQLite does), keeping their order.
	if got := strs(t, db, `SELECT k FROM m ORDER BY rowid`); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rows changed by VACUUM: %.100v, want %.100v", got, want)
	}
}
