package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDirStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "backups")
	s, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "a", "c"} {
		if err := s.Put(ctx, name, strings.NewReader("object "+name)); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 || objs[0].Name != "a" || objs[2].Name != "c" || objs[0].Size != int64(len("object a")) {
		t.Fatalf("listed %+v", objs)
	}
	rc, err := s.Open(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "object b" {
		t.Fatalf("read %q", b)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != storeDirMode {
		t.Errorf("directory mode %v, want %v", fi.Mode().Perm(), os.FileMode(storeDirMode))
	}
	if fi, _ := os.Stat(filepath.Join(dir, "a")); fi.Mode().Perm() != storeFileMode {
		t.Errorf("file mode %v, want %v", fi.Mode().Perm(), os.FileMode(storeFileMode))
	}
	if err := s.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if objs, _ := s.List(ctx); len(objs) != 2 {
		t.Fatalf("after Remove: %+v", objs)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if err := s.Put(ctx, bad, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "object name") {
			t.Errorf("Put(%q): %v, want an error naming it", bad, err)
		}
	}
	if _, err := OpenStore(ctx, "file://"+dir+"?x=1"); err == nil {
		t.Error("a file:// URL with a query was accepted")
	}
	if _, err := OpenStore(ctx, "ftp://host/x"); err == nil || !strings.Contains(err.Error(), `"ftp"`) {
		t.Errorf("ftp: %v", err)
	}
}

type failAfter struct{ n int }

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("source failed")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

// A Put that fails half way, or is cancelled, leaves no object; a
// temporary a crash left is not listed and a later Put removes it once
// stale.
func TestDirStorePartial(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := NewDirStore(dir)
	if err := s.Put(ctx, "x", &failAfter{n: 100 << 10}); err == nil {
		t.Fatal("a failing source was stored")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "y", bytes.NewReader(make([]byte, 1<<20))); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("a failed Put left %v", entries)
	}
	// What a crash leaves: a temporary, recent and old.
	fresh := filepath.Join(dir, ".z"+tempInfix+"1")
	stale := filepath.Join(dir, ".z"+tempInfix+"2")
	for _, p := range []string{fresh, stale} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if objs, _ := s.List(ctx); len(objs) != 0 {
		t.Fatalf("List shows temporaries: %+v", objs)
	}
	if err := s.Put(ctx, "z", strings.NewReader("whole")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale temporary is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a recent temporary (a Put in progress elsewhere) was removed: %v", err)
	}
}

func TestNames(t *testing.T) {
	h := goldenHeader()
	name := ObjectName(h)
	if name != "hiqlite-20260102T030405Z-00000000000000001234-n1.hqb" || !IsBackupName(name) || NodeOf(name) != "n1" {
		t.Fatalf("name %q, node %q", name, NodeOf(name))
	}
	later := h
	later.Index = 99999
	later.Time = h.Time.Add(time.Second)
	if ObjectName(later) <= name {
		t.Fatalf("names do not sort by time: %q <= %q", ObjectName(later), name)
	}
}

// A plain path is a directory as written, whatever characters it holds; a
// file:// URL is unescaped as URLs are.
func TestDirDestinations(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ dest, dir string }{
		{"my backups/x", "my backups/x"},
		{"/tmp/a%20b", "/tmp/a%20b"},
		{"/tmp/50%", "/tmp/50%"},
		{"/tmp/a#b", "/tmp/a#b"},
		{"./rel", "rel"},
		{"file:///abs/y", "/abs/y"},
		{"file:///abs/a%20b", "/abs/a b"},
		{"file://rel/dir", "rel/dir"},
	} {
		s, err := OpenStore(ctx, tc.dest)
		if err != nil || s.String() != tc.dir {
			t.Errorf("OpenStore(%q) = %v, %v; want the directory %q", tc.dest, s, err, tc.dir)
		}
	}
}

// TestPruneSpares: Prune keeps the newest backups, and never the one it is
// told was just taken, even when that one sorts oldest (its node's clock
// runs behind).
func TestPruneSpares(t *testing.T) {
	ctx := context.Background()
	s := NewDirStore(t.TempDir())
	names := []string{
		"hiqlite-20260101T000000Z-00000000000000000005-n2.hqb", // just taken by n2, whose clock is behind
		"hiqlite-20260102T000000Z-00000000000000000001-n1.hqb",
		"hiqlite-20260103T000000Z-00000000000000000002-n1.hqb",
		"hiqlite-20260104T000000Z-00000000000000000003-n1.hqb",
	}
	for _, n := range names {
		if err := s.Put(ctx, n, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Prune(ctx, s, 2, names[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, " ") != names[1] {
		t.Fatalf("removed %v, want only %s", removed, names[1])
	}
	left, _ := Backups(ctx, s)
	if len(left) != 3 {
		t.Fatalf("left %v", left)
	}
}
