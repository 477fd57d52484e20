package replication

import (
	"context"
	"path/filepath"
	"testing"
)

// The copy a backup streams holds the database as of its index, with the
// schema hash of that database; ForgetSeen makes the seen index the
// applied one.
func TestCopyDatabase(t *testing.T) {
	dir := t.TempDir()
	sm, err := Open(filepath.Join(dir, "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if err := sm.w.Exec(`CREATE TABLE t(x); INSERT INTO t VALUES (1); UPDATE _hiqlite_state SET applied_index = 7, applied_term = 2, seen_index = 9`); err != nil {
		t.Fatal(err)
	}
	if err := sm.loadState(); err != nil {
		t.Fatal(err)
	}
	c, err := sm.CopyDatabase(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove()
	if c.Index != 7 || c.Term != 2 {
		t.Fatalf("copy at %d/%d, want 7/2", c.Index, c.Term)
	}
	sum, err := CheckDatabase(c.Path)
	if err != nil || sum != c.SchemaHash {
		t.Fatalf("CheckDatabase: %x, %v; the copy's hash %x", sum[:4], err, c.SchemaHash[:4])
	}
	if _, err := ForgetSeen(c.Path); err != nil {
		t.Fatal(err)
	}
	r, err := Open(c.Path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.AppliedIndex() != 7 || r.SeenIndex() != 7 {
		t.Fatalf("after ForgetSeen: applied %d, seen %d; want 7, 7", r.AppliedIndex(), r.SeenIndex())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sm.CopyDatabase(ctx, dir); err == nil {
		t.Fatal("a cancelled copy succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "backup-*.db")); len(left) != 1 {
		t.Fatalf("copies in dir: %v, want only the first", left)
	}
}
