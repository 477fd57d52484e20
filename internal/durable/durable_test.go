package durable_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hiqlite/hiqlite/internal/durable"
)

// WriteFile replaces a file whole, with the permissions asked for, and
// leaves no temporary file behind.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "id")
	for _, want := range []string{"first\n", "second, longer\n", "3\n"} {
		if err := durable.WriteFile(path, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("content = %q, want %q", got, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}

// A directory that cannot be written to makes WriteFile fail, naming the
// path in its error, and leaves nothing.
func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "id")
	err := durable.WriteFile(path, []byte("x"), 0o600)
	if err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	if _, serr := os.Stat(path); !os.IsNotExist(serr) {
		t.Errorf("stat after failed write = %v, want not exist", serr)
	}
}
