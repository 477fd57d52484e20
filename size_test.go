//go:build unix

package hiqlite_test

import (
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
)

// TestEmptyNodeSmall checks that an empty node's DATA_DIR takes well under
// 10 MB of disk: raft-wal preallocates its first log segment, so the
// default _log_segment is most of it. Blocks counts what is allocated,
// preallocated space included.
func TestEmptyNodeSmall(t *testing.T) {
	db, dir := open(t)
	mustExec(t, db, `CREATE TABLE t(x)`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Well under 10 MB: 4.2 MB at the default _log_segment of 4MiB.
	const limit = 5 << 20
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n := int64(st.Blocks) * 512
			total += n
			t.Logf("%s: %d bytes allocated", path[len(dir):], n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("empty node: %d bytes allocated", total)
	if total >= limit {
		t.Errorf("an empty node takes %d bytes of disk, want under %d", total, limit)
	}
}
