package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeMetrics: GET /metrics serves the node's metrics to a caller
// with the token, and answers 401 without it.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	tokFile := writeToken(t, tmp, testToken)
	s := startServe(t, "--dsn", filepath.Join(tmp, "node")+"?_node=m1", "--http", "127.0.0.1:0", "--http-token-file", tokFile)
	base := "http://" + s.http
	c := testClient()

	if code, auth, body := do(t, c, "GET", base+"/metrics", ""); code != http.StatusUnauthorized || !strings.HasPrefix(auth, "Bearer") {
		t.Errorf("GET /metrics without the token: %d, WWW-Authenticate %q, %q; want 401", code, auth, body)
	}
	// The node elects itself; wait for the readiness check first so the
	// role is settled.
	if code, _, body := do(t, c, "GET", base+"/readyz?timeout=30s", ""); code != http.StatusOK {
		t.Fatalf("GET /readyz: %d %q", code, body)
	}
	code, _, body := do(t, c, "GET", base+"/metrics", testToken)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics with the token: %d %q", code, body)
	}
	for _, want := range []string{`hiqlite_raft_state{node="m1",state="leader"} 1`, "# TYPE hiqlite_writes_total counter", "hiqlite_raft_applied_index{node=\"m1\"}"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %q:\n%s", want, body)
		}
	}
	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exited %d; output:\n%s", code, s.output())
	}
}
