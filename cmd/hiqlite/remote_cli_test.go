package main

import (
	"bytes"
	"strings"
	"testing"

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
