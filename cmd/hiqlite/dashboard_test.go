package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
)

// openTestNode opens a single node in a temporary directory and waits
// until it is ready.
func openTestNode(t *testing.T, id string) (*sql.DB, *hiqlite.Node) {
	t.Helper()
	db, err := sql.Open(hiqlite.DriverName, filepath.Join(t.TempDir(), id)+"?_node="+id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	node, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.WaitReady(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return db, node
}

// dashServer serves serve's handler, dashboard included, for node.
func dashServer(t *testing.T, db *sql.DB, node *hiqlite.Node, acc httpAccess) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(withDashboard(newStatusHandler(node, acc), db, node, acc, &leaderLog{}))
	t.Cleanup(srv.Close)
	return srv
}

// dashReq sends a request as the dashboard's page does: JSON with the
// dashboard's header. hdr adds or, with an empty value, removes headers.
func dashReq(t *testing.T, method, url string, body any, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(dashboardHeader, "1")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// query runs POST /api/query and decodes the answer.
func query(t *testing.T, base, text, consistency string, hdr map[string]string) (int, queryResult) {
	t.Helper()
	code, _, b := dashReq(t, "POST", base+"/api/query", queryRequest{SQL: text, Consistency: consistency}, hdr)
	var res queryResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("POST /api/query %q: %d, not JSON: %v: %s", text, code, err, b)
	}
	return code, res
}

func TestDashboardAPI(t *testing.T) {
	t.Parallel()
	db, node := openTestNode(t, "d1")
	srv := dashServer(t, db, node, newHTTPAccess(nil, true))

	code, hdr, body := dashReq(t, "GET", srv.URL+"/", nil, nil)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte(`id="members"`)) {
		t.Fatalf("GET /: %d %q %.200s", code, hdr.Get("Content-Type"), body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q lets other scripts run", csp)
	}
	if code, _, _ := dashReq(t, "GET", srv.URL+"/dashboard/app.js", nil, nil); code != http.StatusOK {
		t.Errorf("GET /dashboard/app.js: %d", code)
	}
	if code, _, _ := dashReq(t, "GET", srv.URL+"/dashboard/index.html", nil, nil); code != http.StatusNotFound {
		t.Errorf("GET /dashboard/index.html: %d, want 404 (pages only at /)", code)
	}
	// serve's other endpoints still answer.
	if code, _, body := httpGet(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: %d %s", code, body)
	}

	code, _, body = dashReq(t, "GET", srv.URL+"/api/members", nil, nil)
	var mem membersReply
	if err := json.Unmarshal(body, &mem); err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/members: %d %v %s", code, err, body)
	}
	if mem.Self != "d1" || mem.Leader != "d1" || len(mem.Members) != 1 || mem.Members[0]["node_id"] != "d1" || mem.Members[0]["is_leader"] != float64(1) {
		t.Errorf("GET /api/members: %s, want d1 alone and leading", body)
	}

	for _, cons := range []string{"local", "linearizable"} {
		code, res := query(t, srv.URL, "SELECT 1+1 AS two", cons, nil)
		if code != http.StatusOK || res.Error != "" || len(res.Rows) != 1 || res.Rows[0][0] != float64(2) || res.Columns[0] != "two" || res.Wrote {
			t.Errorf("%s SELECT 1+1: %d %+v", cons, code, res)
		}
	}
	if code, res := query(t, srv.URL, "CREATE TABLE t(x)", "", nil); code != http.StatusOK || !res.Wrote || res.Columns == nil || res.Rows == nil {
		t.Fatalf("CREATE TABLE: %d %+v", code, res)
	}
	if code, res := query(t, srv.URL, "INSERT INTO t VALUES (x'00ff'), (NULL) RETURNING x", "local", nil); code != http.StatusOK || !res.Wrote || len(res.Rows) != 2 {
		t.Fatalf("INSERT: %d %+v", code, res)
	}
	if code, res := query(t, srv.URL, "SELECT x FROM t ORDER BY rowid", "linearizable", nil); code != http.StatusOK || fmt.Sprint(res.Rows) != "[[X'00FF'] [<nil>]]" {
		t.Errorf("SELECT x: %d %+v, want the blob as X'00FF' and a null", code, res)
	}

	code, res := query(t, srv.URL, "SELEC 1", "local", nil)
	if code != http.StatusBadRequest || !strings.Contains(res.Error, "syntax error") {
		t.Errorf("bad SQL: %d %+v, want 400 with the syntax error", code, res)
	}
	code, res = query(t, srv.URL, "SELECT 1", "eventual", nil)
	if code != http.StatusBadRequest || !strings.Contains(res.Error, `"eventual" is not local or linearizable`) {
		t.Errorf("bad consistency: %d %+v", code, res)
	}
	code, res = query(t, srv.URL, "  ;", "local", nil)
	if code != http.StatusBadRequest || !strings.Contains(res.Error, "no SQL statement") {
		t.Errorf("blank SQL: %d %+v", code, res)
	}

	var st statsReply
	code, _, body = dashReq(t, "GET", srv.URL+"/api/stats", nil, nil)
	if err := json.Unmarshal(body, &st); err != nil || code != http.StatusOK || !st.Console || st.Token || st.ConsoleWrites != 2 || st.AppliedIndex < 2 {
		t.Errorf("GET /api/stats: %d %v %s", code, err, body)
	}
}

// TestDashboardCrossSite checks that a page of another site cannot make
// the dashboard run SQL.
func TestDashboardCrossSite(t *testing.T) {
	t.Parallel()
	db, node := openTestNode(t, "d2")
	srv := dashServer(t, db, node, newHTTPAccess(nil, true))
	for name, hdr := range map[string]map[string]string{
		"no dashboard header":    {dashboardHeader: ""},
		"form content type":      {"Content-Type": "application/x-www-form-urlencoded"},
		"cross-site fetch":       {"Sec-Fetch-Site": "cross-site"},
		"another origin":         {"Origin": "https://evil.example"},
		"text/plain simple POST": {"Content-Type": "text/plain", dashboardHeader: ""},
	} {
		code, _, body := dashReq(t, "POST", srv.URL+"/api/query", queryRequest{SQL: "CREATE TABLE x(y)"}, hdr)
		if code != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", name, code, body)
		}
	}
	if _, res := query(t, srv.URL, "SELECT count(*) FROM sqlite_schema WHERE name = 'x'", "local", nil); len(res.Rows) != 1 || res.Rows[0][0] != float64(0) {
		t.Errorf("a refused request created table x: %+v", res)
	}
}

// TestDashboardConsoleNeedsToken checks that without a token, off
// loopback, the console runs nothing, read or write, however it is spelled.
func TestDashboardConsoleNeedsToken(t *testing.T) {
	t.Parallel()
	db, node := openTestNode(t, "d3")
	if _, err := db.Exec("CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	srv := dashServer(t, db, node, newHTTPAccess(nil, false))
	for _, text := range []string{
		"SELECT * FROM t",
		"INSERT INTO t VALUES (1)",
		"WITH a(v) AS (SELECT 1) INSERT INTO t SELECT v FROM a",
		"DROP TABLE t",
		"PRAGMA user_version = 7",
	} {
		code, res := query(t, srv.URL, text, "local", nil)
		if code != http.StatusForbidden || !strings.Contains(res.Error, "--http-token-file") || res.Rows != nil {
			t.Errorf("%s: %d %+v, want 403 naming --http-token-file", text, code, res)
		}
	}
	var n, version int
	if err := db.QueryRow("SELECT count(*), (SELECT user_version FROM pragma_user_version) FROM t").Scan(&n, &version); err != nil || n != 0 || version != 0 {
		t.Errorf("after the refused writes: %d rows, user_version %d (%v), want an empty t and 0", n, version, err)
	}
	var st statsReply
	_, _, body := dashReq(t, "GET", srv.URL+"/api/stats", nil, nil)
	if err := json.Unmarshal(body, &st); err != nil || st.Console {
		t.Errorf("GET /api/stats: %v %s, want console false", err, body)
	}
	// The members stay visible, as /status is.
	if code, _, body := dashReq(t, "GET", srv.URL+"/api/members", nil, nil); code != http.StatusOK {
		t.Errorf("GET /api/members: %d %s", code, body)
	}
}

// TestRunQueryClassifies checks that a write is told from a read by what it
// does, not by its text.
func TestRunQueryClassifies(t *testing.T) {
	t.Parallel()
	db, _ := openTestNode(t, "d5")
	ctx := testContext(t)
	for _, tt := range []struct {
		text  string
		wrote bool
	}{
		{"CREATE TABLE t(x)", true},
		{"SELECT count(*) FROM t", false},
		{"WITH a(v) AS (SELECT 1) INSERT INTO t SELECT v FROM a", true},
		{"PRAGMA user_version = 3", true},
		{"PRAGMA user_version", false},
		{"EXPLAIN SELECT 1", false},
	} {
		res, err := runQuery(ctx, db, tt.text, nil, hiqlite.Local)
		if err != nil || res.Wrote != tt.wrote {
			t.Errorf("%s: wrote %v, %v; want wrote %v", tt.text, res.Wrote, err, tt.wrote)
		}
	}
	var n, version int
	if err := db.QueryRow("SELECT count(*), (SELECT user_version FROM pragma_user_version) FROM t").Scan(&n, &version); err != nil || n != 1 || version != 3 {
		t.Errorf("after the writes: %d rows, user_version %d (%v), want 1 and 3", n, version, err)
	}
}

func TestDashboardToken(t *testing.T) {
	t.Parallel()
	db, node := openTestNode(t, "d4")
	srv := dashServer(t, db, node, newHTTPAccess([]byte(testToken), false))

	code, _, body := dashReq(t, "GET", srv.URL+"/", nil, nil)
	if code != http.StatusOK || !bytes.Contains(body, []byte(`id="login"`)) || bytes.Contains(body, []byte(`id="members"`)) {
		t.Fatalf("GET / without the token: %d %.300s, want the login page", code, body)
	}
	for _, p := range []string{"/api/members", "/api/stats"} {
		if code, _, body := dashReq(t, "GET", srv.URL+p, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d %s", p, code, body)
		}
	}
	if code, _ := query(t, srv.URL, "SELECT 1", "local", nil); code != http.StatusUnauthorized {
		t.Errorf("POST /api/query without the token: %d", code)
	}
	if code, hdr, body := dashReq(t, "POST", srv.URL+"/dashboard/login", map[string]string{"token": "not-the-token-at-all"}, nil); code != http.StatusUnauthorized || hdr.Get("Set-Cookie") != "" {
		t.Errorf("login with a wrong token: %d %q %s", code, hdr.Get("Set-Cookie"), body)
	}
	code, hdr, body := dashReq(t, "POST", srv.URL+"/dashboard/login", map[string]string{"token": testToken}, nil)
	cookie := hdr.Get("Set-Cookie")
	if code != http.StatusOK || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") || strings.Contains(cookie, testToken) {
		t.Fatalf("login: %d %q %s, want an HttpOnly SameSite=Strict cookie without the token", code, cookie, body)
	}
	session := map[string]string{"Cookie": strings.SplitN(cookie, ";", 2)[0]}
	if code, _, body := dashReq(t, "GET", srv.URL+"/", nil, session); code != http.StatusOK || !bytes.Contains(body, []byte(`id="members"`)) {
		t.Errorf("GET / with the session: %d %.200s", code, body)
	}
	if code, _, body := dashReq(t, "GET", srv.URL+"/api/members", nil, session); code != http.StatusOK {
		t.Errorf("GET /api/members with the session: %d %s", code, body)
	}
	if code, res := query(t, srv.URL, "CREATE TABLE t(x)", "local", session); code != http.StatusOK || !res.Wrote {
		t.Errorf("a write with the session: %d %+v", code, res)
	}
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	if code, res := query(t, srv.URL, "INSERT INTO t VALUES (1)", "linearizable", bearer); code != http.StatusOK || !res.Wrote {
		t.Errorf("a write with the bearer token: %d %+v", code, res)
	}
	// A forged cookie is no session.
	if code, _, _ := dashReq(t, "GET", srv.URL+"/api/stats", nil, map[string]string{"Cookie": sessionCookie + "=" + testToken}); code != http.StatusUnauthorized {
		t.Errorf("GET /api/stats with a forged cookie: %d", code)
	}
}

func TestLeaderLog(t *testing.T) {
	var l leaderLog
	for i := range maxLeaderChanges + 5 {
		l.add(fmt.Sprint("n", i))
	}
	got := l.list()
	if len(got) != maxLeaderChanges || got[0].Leader != fmt.Sprint("n", maxLeaderChanges+4) || got[len(got)-1].Leader != "n5" {
		t.Errorf("after %d changes: %d kept, newest %q, oldest %q", maxLeaderChanges+5, len(got), got[0].Leader, got[len(got)-1].Leader)
	}
	var none *leaderLog
	none.add("x") // records nothing, does not panic
}

// TestServeDashboard checks that serve itself serves the dashboard, with
// the leader it reported.
func TestServeDashboard(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	s := startServe(t, "--dsn", dir+"?_node=n1", "--http", "127.0.0.1:0")
	waitMatch(t, s.out.String, regexp.MustCompile(`(?m)^ready: leader is n1`), time.Minute, s.done)
	base := "http://" + s.http
	code, ctype, body := httpGet(t, base+"/")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, `id="members"`) {
		t.Fatalf("GET /: %d %q %.200s", code, ctype, body)
	}
	var st statsReply
	_, _, b := dashReq(t, "GET", base+"/api/stats", nil, nil)
	if err := json.Unmarshal(b, &st); err != nil || st.Self != "n1" || !st.Console || len(st.LeaderChanges) != 1 || st.LeaderChanges[0].Leader != "n1 (this node)" {
		t.Errorf("GET /api/stats: %v %s, want n1's console open and one leader change to n1", err, b)
	}
	if code, res := query(t, base, "SELECT hiqlite_node_id()", "linearizable", nil); code != http.StatusOK || fmt.Sprint(res.Rows) != "[[n1]]" {
		t.Errorf("POST /api/query: %d %+v", code, res)
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("serve exited %d:\n%s", code, s.output())
	}
}
