// Package damage damages SQLite database files for the corruption tests of
// every package: it finds a data page of a table, flips bytes, and
// checkpoints a WAL into its database first, so that flipped bytes are not
// overwritten by the WAL's replay. It imports nothing of hiqlite.
package damage

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Checkpoint copies the WAL of the database at path into the file and
// empties it (a clean close removes it; a node that runs keeps it open), so
// that no page of the file has a newer copy in the WAL. It waits for
// readers and the writer of a running node, which must be idle.
func Checkpoint(t testing.TB, path string) {
	t.Helper()
	db, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.BusyTimeout(10 * time.Second); err != nil {
		db.Close()
		t.Fatal(err)
	}
	if err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		db.Close()
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path + "-wal"); err == nil && st.Size() > 0 || err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s-wal still holds pages after a checkpoint (%v): bytes flipped in the file could be overwritten by its replay", path, err)
	}
}

// TablePage returns the offset in the database file at path of a leaf page
// of table, holding some of its rows: it walks the table's b-tree from its
// root page, taking the middle child of each interior page.
func TablePage(t testing.TB, path, table string) int64 {
	t.Helper()
	db, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	stmt, _, err := db.Prepare(`SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_schema WHERE type = 'table' AND name = ?`)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	stmt.BindText(1, table)
	found := stmt.Step()
	page, size := stmt.ColumnInt64(0), stmt.ColumnInt64(1)
	err = stmt.Err()
	stmt.Close()
	db.Close()
	if !found {
		t.Fatalf("no table %s in %s: %v", table, path, err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // a test's b-trees are far less deep
		if page < 1 || page*size > int64(len(file)) {
			t.Fatalf("page %d of table %s is past the end of %s (%d bytes): checkpoint first", page, table, path, len(file))
		}
		b := file[(page-1)*size : page*size]
		hdr := 0
		if page == 1 {
			hdr = 100 // the database header
		}
		switch b[hdr] {
		case 0x0d: // table leaf
			return (page - 1) * size
		case 0x05: // table interior: a 12-byte header, then 2-byte cell pointers
			cells := int(binary.BigEndian.Uint16(b[hdr+3:]))
			cell := binary.BigEndian.Uint16(b[hdr+12+2*(cells/2):])
			page = int64(binary.BigEndian.Uint32(b[cell:]))
		default:
			t.Fatalf("page %d of table %s has type %#x", page, table, b[hdr])
		}
	}
	t.Fatalf("no leaf page of table %s within 10 levels", table)
	return 0
}

// Flip inverts n bytes of the file at path from offset off, and syncs it.
func Flip(t testing.TB, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TableData flips the header of a leaf page of table (its page type and
// first cell pointers), which every read of those rows notices.
func TableData(t testing.TB, path, table string) {
	t.Helper()
	Flip(t, path, TablePage(t, path, table), 16)
}

// Header flips the magic string at the start of the database file
// ("SQLite format 3\x00"): SQLite then says the file is not a database.
func Header(t testing.TB, path string) {
	t.Helper()
	Flip(t, path, 0, 16)
}
