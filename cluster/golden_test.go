package cluster

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hiqlite/hiqlite/internal/golden"
)

// The cache group's stable store file, pinned by testdata/golden.

func TestGoldenStableFile(t *testing.T) {
	dir := t.TempDir()
	s, err := openFileStable(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 5); err != nil {
		t.Fatal(err)
	}
	enc, err := os.ReadFile(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b := golden.Bytes(t, "stablefile_v1", "Stable store file of the cache group's Raft (no version byte: a sequence of\nuvarint-length key and value): key CurrentTerm = uint64 5, big endian", enc)
	if !bytes.Equal(enc, b) {
		t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := openFileStable(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.GetUint64([]byte("CurrentTerm")); err != nil || v != 5 {
		t.Errorf("CurrentTerm = %d, %v; want 5", v, err)
	}
}
