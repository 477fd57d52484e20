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

	"filippo.io/age"
)

// The key file rule: age keys one per line, else the first line is a
// passphrase.
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	secret := write("secret.txt", "# created: today\n"+a.String()+"\n\n"+b.String()+"\n")
	public := write("public.txt", a.Recipient().String()+"\n# second\n"+b.Recipient().String()+"\n")
	pass := write("pass.txt", "correct horse battery staple\r\nignored second line\n")
	empty := write("empty.txt", "\n")

	rs, err := LoadRecipients(public)
	if err != nil || len(rs) != 2 {
		t.Fatalf("public keys: %d recipients, %v", len(rs), err)
	}
	if rs, err := LoadRecipients(secret); err != nil || len(rs) != 2 {
		t.Fatalf("secret keys as recipients: %d, %v", len(rs), err)
	}
	ids, err := LoadIdentities(secret)
	if err != nil || len(ids) != 2 {
		t.Fatalf("secret keys: %d identities, %v", len(ids), err)
	}
	if _, err := LoadIdentities(public); err == nil || !strings.Contains(err.Error(), "only public keys") {
		t.Fatalf("public keys as identities: %v", err)
	}
	if _, err := LoadRecipients(empty); err == nil || !strings.Contains(err.Error(), "empty first line") {
		t.Fatalf("an empty key file: %v", err)
	}
	if _, err := LoadRecipients(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing key file: %v", err)
	}
	if _, err := LoadRecipients(write("bad.txt", "age1notakey\n")); err == nil || !strings.Contains(err.Error(), "key 1") {
		t.Fatalf("a malformed key: %v", err)
	}
	// Encrypted to the public keys, opened by the second secret key only.
	obj := encodeObject(t, []byte("body"), rs)
	var out bytes.Buffer
	if _, err := Decode(context.Background(), bytes.NewReader(obj), ids[1:], &out); err != nil || out.String() != "body" {
		t.Fatalf("decoded %q, %v", out.String(), err)
	}
	// A passphrase: the first line without its line end.
	prs, err := LoadRecipients(pass)
	if err != nil || len(prs) != 1 {
		t.Fatalf("passphrase: %v", err)
	}
	obj = encodeObject(t, []byte("body"), prs)
	good, _ := age.NewScryptIdentity("correct horse battery staple")
	if _, err := Decode(context.Background(), bytes.NewReader(obj), []age.Identity{good}, io.Discard); err != nil {
		t.Fatalf("the passphrase's first line does not open it: %v", err)
	}
	pids, err := LoadIdentities(pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(context.Background(), bytes.NewReader(obj), ids, io.Discard); !errors.Is(err, ErrKey) {
		t.Fatalf("X25519 keys on a passphrase backup: %v", err)
	}
	if _, err := Decode(context.Background(), bytes.NewReader(obj), pids, io.Discard); err != nil {
		t.Fatalf("LoadIdentities of the passphrase file: %v", err)
	}
}

// RemoteKeys sends public keys, never a secret key, or the passphrase;
// ParseRecipients takes them back and names a bad one.
func TestRemoteKeys(t *testing.T) {
	dir := t.TempDir()
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	keys := filepath.Join(dir, "keys.txt")
	os.WriteFile(keys, []byte("# mixed\n"+a.String()+"\n"+b.Recipient().String()+"\n"), 0o600)
	rs, pass, err := RemoteKeys(keys)
	if err != nil || pass != "" || len(rs) != 2 || rs[0] != a.Recipient().String() || rs[1] != b.Recipient().String() {
		t.Fatalf("RemoteKeys(keys) = %q, %q, %v", rs, pass, err)
	}
	if _, err := ParseRecipients(rs, ""); err != nil {
		t.Fatal(err)
	}
	phrase := filepath.Join(dir, "phrase.txt")
	os.WriteFile(phrase, []byte("open sesame\r\nignored\n"), 0o600)
	if rs, pass, err := RemoteKeys(phrase); err != nil || len(rs) != 0 || pass != "open sesame" {
		t.Fatalf("RemoteKeys(phrase) = %q, %q, %v", rs, pass, err)
	}
	if _, err := ParseRecipients([]string{"age1nope"}, ""); err == nil || !strings.Contains(err.Error(), `"age1nope"`) {
		t.Errorf("a bad key: %v", err)
	}
	if _, err := ParseRecipients(rs, "pass"); err == nil || !strings.Contains(err.Error(), "cannot be combined") {
		t.Errorf("keys and a passphrase: %v", err)
	}
}
