package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestRemoteShellAndStatus: shell and status attach to a running cluster
// through a remote DSN, opening no node here.
func TestRemoteShellAndStatus(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := clustertest.New(t, 3)
	dsn := c.RemoteDSN(c.Follower())

	var out, errOut bytes.Buffer
	in := "CREATE TABLE rs(a);\nINSERT INTO rs VALUES (1), (2);\nBEGIN;\nINSERT INTO rs VALUES (3);\nCOMMIT;\nSELECT sum(a) AS total FROM rs;\n"
	if code := run(ctx, []string{"shell", "--dsn", dsn}, strings.NewReader(in), &out, &errOut); code != exitOK {
		t.Fatalf("shell: exit %d, stderr: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "total\n-----\n6\n") {
		t.Errorf("shell output lacks the sum 6:\n%s", out.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"status", "--dsn", dsn}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("status: exit %d, stderr: %s", code, errOut.String())
	}
	want := []string{"node:          " + c.Members[c.Follower()].ID + "\n", "leader:        ", "data dir:      (the member's; not shown to a remote client)", "members:"}
	for _, m := range c.Members {
		want = append(want, "  "+m.ID+"  "+m.Listen)
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("status output lacks %q:\n%s", w, out.String())
		}
	}

	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"status", "--dsn", "hiqlite://127.0.0.1:1?_listen=127.0.0.1:2"}, nil, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "_listen is a node's") {
		t.Errorf("status with a node's parameter in a remote DSN: exit %d, stderr %s", code, errOut.String())
	}
}

// TestRemoteBackupCLI: backup takes a remote DSN; the object lands in
// --to on this side, encrypted to --key-file, and backup verify passes on
// it with the key file.
func TestRemoteBackupCLI(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := clustertest.New(t, 3)
	lead := c.Members[c.Leader()].DB
	if _, err := lead.Exec(`CREATE TABLE rb(a TEXT); INSERT INTO rb VALUES ('remote-row-1'), ('remote-row-2')`); err != nil {
		t.Fatal(err)
	}
	c.EnsureSame()
	dest := filepath.Join(t.TempDir(), "out")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"backup", "--dsn", c.RemoteDSN(c.Follower()), "--to", dest, "--key-file", keyFile}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("backup: exit %d, stderr: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), ".hqb: index ") || !strings.Contains(errOut.String(), "through a remote client to "+dest) {
		t.Errorf("backup output:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
	entries, err := os.ReadDir(dest)
	if err != nil || len(entries) != 1 {
		t.Fatalf("the destination holds %v, %v; want one object", entries, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dest, entries[0].Name()))
	if bytes.Contains(raw, []byte("remote-row-1")) {
		t.Error("the encrypted backup holds row text in plain")
	}

	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"backup", "verify", dest, "--identity", keyFile}, nil, &out, &errOut); code != exitOK || !strings.Contains(out.String(), ": ok (node "+c.Members[c.Follower()].ID) {
		t.Fatalf("backup verify: exit %d, stdout %s, stderr: %s", code, out.String(), errOut.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"backup", "--dsn", "hiqlite://127.0.0.1:1?_listen=127.0.0.1:2", "--to", dest}, nil, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "_listen is a node's") {
		t.Errorf("backup with a node's parameter in a remote DSN: exit %d, stderr %s", code, errOut.String())
	}
}
