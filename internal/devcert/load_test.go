package devcert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadCA: a CA written to files loads back and issues leaves that
// verify against the original; a mismatched key, a leaf in place of a CA
// and a missing file are errors that name the file.
func TestLoadCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{ca.WriteCA(path("ca.crt")), ca.WriteCAKey(path("ca.key")), other.WriteCAKey(path("other.key"))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	loaded, err := LoadCA(path("ca.crt"), path("ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("the loaded CA certificate differs from the written one")
	}
	now := time.Now()
	leaf, err := loaded.Issue("n1", []string{"localhost"}, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(path("n1.crt"), path("n1.key")); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(path("junk"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ cert, key, err string }{
		{"ca.crt", "other.key", "does not belong"},
		{"n1.crt", "n1.key", "n1.crt is not a CA"},
		{"missing.crt", "ca.key", "missing.crt"},
		{"ca.crt", "junk", "junk holds no PEM block"},
		{"ca.crt", "ca.crt", "ca.crt: not an ECDSA private key"},
	} {
		_, err := LoadCA(path(tt.cert), path(tt.key))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("LoadCA(%s, %s) = %v, want an error with %q", tt.cert, tt.key, err, tt.err)
		}
	}
}
