package cluster

import (
	"os"
	"path/filepath"
	"testing"
)

// The cache group's stable store keeps raft's term and vote across a
// reopen, and reports a missing key as raft expects.
func TestFileStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stable")
	s, err := openFileStable(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing key: %v, want raft's \"not found\"", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	again, err := openFileStable(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := again.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("term after reopen: %d %v", v, err)
	}
	if v, err := again.Get([]byte("LastVoteCand")); err != nil || string(v) != "node2" {
		t.Fatalf("vote after reopen: %q %v", v, err)
	}
	if v, err := again.Get([]byte("empty")); err != nil || len(v) != 0 {
		t.Fatalf("empty value after reopen: %q %v", v, err)
	}
	if err := os.WriteFile(path, []byte{0xff}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openFileStable(path); err == nil {
		t.Fatal("a corrupt file opened")
	}
}
