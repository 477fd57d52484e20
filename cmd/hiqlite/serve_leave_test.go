package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestServeLeave: POST /leave without the token is refused and changes
// nothing; with it, the follower asked leaves the cluster, the others drop
// it from their configuration, and serve is told to stop.
func TestServeLeave(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	f := c.Follower()
	gone := c.Members[f]
	var stopped atomic.Int32
	stop := func() { stopped.Add(1) }
	next := http.NotFoundHandler()
	cl := testClient()

	refused := httptest.NewServer(withLeave(next, gone.Node, newHTTPAccess([]byte(testToken), false), stop))
	code, _, body := do(t, cl, "POST", refused.URL+"/leave", "")
	refused.Close()
	if code != http.StatusUnauthorized || stopped.Load() != 0 {
		t.Fatalf("POST /leave without the token: %d %q, stop called %d times; want 401 and no stop", code, body, stopped.Load())
	}

	srv := httptest.NewServer(withLeave(next, gone.Node, newHTTPAccess([]byte(testToken), false), stop))
	defer srv.Close()
	code, _, body = do(t, cl, "POST", srv.URL+"/leave", testToken)
	if code != http.StatusOK || !strings.Contains(body, "left the cluster") || stopped.Load() != 1 {
		t.Fatalf("POST /leave: %d %q, stop called %d times; want 200, \"left the cluster\", one stop", code, body, stopped.Load())
	}
	if code, _, _ := do(t, cl, "GET", srv.URL+"/status", testToken); code != http.StatusNotFound {
		t.Fatalf("GET /status through withLeave: %d, want the next handler's 404", code)
	}
	c.Kill(f)
	l := c.Leader()
	c.WaitFor("the leader's configuration without the node that left", 30*time.Second, func() bool {
		ms, err := c.Members[l].Node.Members()
		if err != nil || len(ms) != 2 {
			return false
		}
		for _, m := range ms {
			if m.ID == gone.ID {
				return false
			}
		}
		return true
	})
}
