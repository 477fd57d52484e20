// Package golden reads the golden files of the binary formats hiqlite keeps
// on disk or sends between nodes: testdata/golden/*.hex at the module root.
//
// A golden file holds the bytes of one value in one version of one format,
// as hex, after comment lines (starting with #) that say what the value is.
// The files are kept forever: a format that changes its bytes takes a new
// version and a new file, and the old file must still decode.
//
// Bytes writes a missing file when HIQLITE_GOLDEN_WRITE=1 is set; it never
// overwrites one.
package golden

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir returns the module's testdata/golden directory.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/hiqlite/hiqlite\n")) {
			return filepath.Join(dir, "testdata", "golden")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("golden: module root not found")
		}
		dir = parent
	}
}

// Bytes returns the bytes of golden file name (without .hex). If the file
// does not exist and HIQLITE_GOLDEN_WRITE=1, it first writes want there,
// with comment as its header.
func Bytes(t testing.TB, name, comment string, want []byte) []byte {
	t.Helper()
	path := filepath.Join(Dir(t), name+".hex")
	text, err := os.ReadFile(path)
	if os.IsNotExist(err) && os.Getenv("HIQLITE_GOLDEN_WRITE") == "1" {
		if err := os.WriteFile(path, Format(comment, want), 0o644); err != nil {
			t.Fatal(err)
		}
		return want
	}
	if err != nil {
		t.Fatalf("golden file %s: %v", name, err)
	}
	b, err := Parse(text)
	if err != nil {
		t.Fatalf("golden file %s: %v", path, err)
	}
	return b
}

// Format returns a golden file's text.
func Format(comment string, b []byte) []byte {
	var s strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(comment), "\n") {
		s.WriteString("# " + strings.TrimSpace(line) + "\n")
	}
	for i := 0; i < len(b); i += 32 {
		s.WriteString(hex.EncodeToString(b[i:min(i+32, len(b))]) + "\n")
	}
	return []byte(s.String())
}

// Parse returns the bytes of a golden file's text: hex digits, with white
// space and comment lines ignored.
func Parse(text []byte) ([]byte, error) {
	var digits []byte
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if _, err := hex.DecodeString(f); err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			digits = append(digits, f...)
		}
	}
	return hex.DecodeString(string(digits))
}
