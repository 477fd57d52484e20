package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Without a token, on loopback, the console answers only requests for a
// loopback name: a site that points its own name at 127.0.0.1 (DNS
// rebinding) is same-origin to the browser, but its Host gives it away.
func TestDashboardRefusesRebinding(t *testing.T) {
	t.Parallel()
	db, node := openTestNode(t, "rb1")
	srv := dashServer(t, db, node, newHTTPAccess(nil, true))

	send := func(host, method, path string) int {
		t.Helper()
		var body *bytes.Reader
		if method == "POST" {
			b, _ := json.Marshal(map[string]string{"sql": "CREATE TABLE IF NOT EXISTS pwned(x)"})
			body = bytes.NewReader(b)
		} else {
			body = bytes.NewReader(nil)
		}
		req, err := http.NewRequest(method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(dashboardHeader, "1")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, host := range []string{"evil.example:8080", "evil.example", "127.0.0.1.evil.example"} {
		if code := send(host, "POST", "/api/query"); code != http.StatusForbidden {
			t.Errorf("POST /api/query with Host %q: %d, want 403", host, code)
		}
		if code := send(host, "GET", "/api/members"); code != http.StatusForbidden {
			t.Errorf("GET /api/members with Host %q: %d, want 403", host, code)
		}
		if code := send(host, "POST", "/snapshot"); code != http.StatusForbidden {
			t.Errorf("POST /snapshot with Host %q: %d, want 403", host, code)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'pwned'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a rebound page created a table: %d, %v", n, err)
	}
	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST"} {
		if code := send(host, "POST", "/api/query"); code != http.StatusOK {
			t.Errorf("POST /api/query with Host %q: %d, want 200", host, code)
		}
	}
	// Health checks keep working whatever name they use.
	if code := send("lb.internal", "GET", "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz with Host lb.internal: %d, want 200", code)
	}
}

// A session lasts sessionMaxAge, only with this process's key, and only
// unaltered.
func TestDashboardSessionValue(t *testing.T) {
	t.Parallel()
	db, node := openTestNode(t, "sv1")
	acc := newHTTPAccess([]byte(testToken), false)
	a := &dashboard{node: node, db: db, acc: acc, sessionKey: []byte("key a, 32 bytes long, for tests")}
	b := &dashboard{node: node, db: db, acc: acc, sessionKey: []byte("key b, 32 bytes long, for tests")}
	now := time.Now()
	v := a.newSession(now)
	if strings.Contains(v, testToken) {
		t.Fatal("the session cookie carries the token")
	}
	if !a.validSession(v, now.Add(time.Hour)) {
		t.Error("a fresh session is refused")
	}
	if a.validSession(v, now.Add(sessionMaxAge+time.Second)) {
		t.Error("a session older than sessionMaxAge is accepted")
	}
	if b.validSession(v, now) {
		t.Error("another process (another key) accepts the session")
	}
	issued, mac, _ := strings.Cut(v, ".")
	if a.validSession(issued+"0."+mac, now) {
		t.Error("a session with its time changed is accepted")
	}
}

// The console cuts an answer at maxQueryBytes of values, whatever the
// row count.
func TestDashboardQueryBytesBounded(t *testing.T) {
	t.Parallel()
	db, node := openTestNode(t, "qb1")
	srv := dashServer(t, db, node, newHTTPAccess(nil, true))
	code, res := query(t, srv.URL, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
SELECT randomblob(1000000) FROM n`, "local", nil)
	if code != http.StatusOK {
		t.Fatalf("query: %d %+v", code, res.Error)
	}
	// A 1 MB blob is about 2 MB in the answer: 8 MiB holds 5 rows.
	if !res.Truncated || len(res.Rows) >= 100 || len(res.Rows) > maxQueryBytes/2_000_000+1 {
		t.Fatalf("100 rows of 1 MB: %d rows kept, truncated %v; want the answer cut near %d bytes", len(res.Rows), res.Truncated, maxQueryBytes)
	}
}
