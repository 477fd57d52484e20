package main

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite"
)

// The commands end to end on a single node: backup (encrypted), list,
// verify with and without the key, restore, and a restore refused.
func TestBackupCommands(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "node")
	db, err := sql.Open(hiqlite.DriverName, dir+"?_node=c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t(x); INSERT INTO t VALUES ('command row')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	id, _ := age.GenerateX25519Identity()
	key := filepath.Join(tmp, "key.txt")
	pub := filepath.Join(tmp, "key.pub")
	os.WriteFile(key, []byte(id.String()+"\n"), 0o600)
	os.WriteFile(pub, []byte(id.Recipient().String()+"\n"), 0o600)
	dest := filepath.Join(tmp, "backups")
	cli := func(want int, args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(ctx, args, strings.NewReader(""), &out, &errOut); code != want {
			t.Fatalf("hiqlite %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}
	out, _ := cli(exitOK, "backup", "--dsn", dir, "--to", dest, "--key-file", pub)
	if !strings.HasPrefix(out, "hiqlite-") || !strings.Contains(out, "-c1.hqb") {
		t.Fatalf("backup printed %q", out)
	}
	out, _ = cli(exitOK, "backup", "list", dest)
	if !strings.Contains(out, "c1") || !strings.Contains(out, "true") {
		t.Fatalf("list printed %q", out)
	}
	if _, e := cli(exitFail, "backup", "verify", dest); !strings.Contains(e, "encrypted") {
		t.Fatalf("verify without the key: %q", e)
	}
	if _, e := cli(exitFail, "backup", "verify", dest, "--identity", pub); !strings.Contains(e, "only public keys") {
		t.Fatalf("verify with the public key: %q", e)
	}
	if out, _ := cli(exitOK, "backup", "verify", dest, "--identity", key); !strings.Contains(out, ": ok") {
		t.Fatalf("verify printed %q", out)
	}
	restored := filepath.Join(tmp, "restored")
	if out, _ := cli(exitOK, "restore", "--from", dest, "--dir", restored, "--identity", key); !strings.Contains(out, "as node c1") {
		t.Fatalf("restore printed %q", out)
	}
	if _, e := cli(exitFail, "restore", "--from", dest, "--dir", restored, "--identity", key); !strings.Contains(e, "not empty") {
		t.Fatalf("a second restore: %q", e)
	}
	r, err := sql.Open(hiqlite.DriverName, restored)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var x string
	if err := r.QueryRow(`SELECT x FROM t`).Scan(&x); err != nil || x != "command row" {
		t.Fatalf("restored %q, %v", x, err)
	}
}
