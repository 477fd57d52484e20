package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A damaged database moves aside with its WAL, index and marker, and only
// the newest keepCorrupt of them stay.
func TestMoveAsideCorruptKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, dbFile)
	t0 := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	var asides []string
	for i := range keepCorrupt + 2 {
		for _, suffix := range corruptFiles {
			if err := os.WriteFile(path+suffix, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		aside, err := moveAsideCorrupt(path, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		asides = append(asides, aside)
		for _, suffix := range corruptFiles {
			if _, err := os.Stat(path + suffix); !os.IsNotExist(err) {
				t.Fatalf("%s%s left in place: %v", path, suffix, err)
			}
			if _, err := os.Stat(aside + suffix); err != nil {
				t.Fatalf("%s%s not moved aside: %v", aside, suffix, err)
			}
		}
	}
	removed, err := pruneCorrupt(path, keepCorrupt)
	if err != nil {
		t.Fatal(err)
	}
	if want := asides[:2]; !slices.Equal(removed, want) {
		t.Fatalf("removed %q, want the oldest %q", removed, want)
	}
	left, _ := filepath.Glob(path + corruptSuffix + "*")
	if len(left) != keepCorrupt*len(corruptFiles) {
		t.Fatalf("left %q, want the newest %d with their files", left, keepCorrupt)
	}
}
