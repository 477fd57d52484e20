package hiqlite_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// checkPrivate fails the test for every directory under dir (dir included)
// that others may enter and every file that others may read.
func checkPrivate(t *testing.T, dir string) (files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm()&^want != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDataDirPrivate: a node's DATA_DIR is 0700 and every file in it 0600,
// whatever the umask, including the files made later: log segments, the
// snapshots a node takes and the ones a wiped node receives, and SQLite's
// WAL and its index.
func TestDataDirPrivate(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3, "_log_segment=1MiB")
	l, f := c.Leader(), c.Follower()
	mustExec(t, c.Members[l].DB, `CREATE TABLE p(x)`)
	// Enough rows to fill more than one 1 MiB log segment.
	for range 40 {
		mustExec(t, c.Members[l].DB, `INSERT INTO p VALUES (randomblob(40000))`)
	}
	for _, i := range c.Alive() {
		if err := c.Members[i].Node.Snapshot(); err != nil {
			t.Fatalf("snapshot %s: %v", c.Members[i].ID, err)
		}
	}
	c.Kill(f)
	c.Wipe(f)
	c.Start(f)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()
	for _, m := range c.Members {
		if n := checkPrivate(t, m.Dir); n < 5 {
			t.Errorf("%s holds %d files; the check saw too little", m.Dir, n)
		}
	}
}

// TestDataDirNarrowedAtOpen: a data directory made by an older version, or
// loosened by hand, is private again once a node opens it.
func TestDataDirNarrowedAtOpen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	open := func() {
		db := openDir(t, dir)
		mustExec(t, db, `CREATE TABLE IF NOT EXISTS n(x)`)
		mustExec(t, db, `INSERT INTO n VALUES (1)`)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	open()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	open()
	checkPrivate(t, dir)
}
