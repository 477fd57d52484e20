package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/testaddr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// syncBuffer is a bytes.Buffer that a command running on another goroutine
// may write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

// firstLine is serve's first line; its submatch is the bound HTTP address
// ("" with http off).
var firstLine = regexp.MustCompile(`(?m)^node .*, (?:https? on (\S+)|http off)$`)

// waitMatch polls text until re matches it and returns the submatches.
// It gives up when timeout passes or, if exited is not nil, when exited
// is closed (the command ended without printing what was awaited).
func waitMatch(t *testing.T, text func() string, re *regexp.Regexp, timeout time.Duration, exited <-chan struct{}) []string {
	t.Helper()
	var m []string
	ended := false
	waitfor.Until(timeout, func() bool {
		select {
		case <-exited:
			ended = true
		default:
		}
		m = re.FindStringSubmatch(text())
		return m != nil || ended
	})
	switch {
	case m != nil:
		return m
	case ended:
		t.Fatalf("the command ended before printing %q; output:\n%s", re, text())
	default:
		t.Fatalf("timed out after %v waiting for output matching %q; output:\n%s", timeout, re, text())
	}
	return nil
}

// serveRun is "hiqlite serve" running through run on its own goroutine.
type serveRun struct {
	out, errOut syncBuffer
	cancel      context.CancelFunc
	done        chan struct{} // closed when run returns
	code        int           // run's exit status, once done
	http        string        // the bound HTTP address
}

// startServe runs "hiqlite serve args..." and waits for its first line.
// Cleanup stops it if the test has not.
func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.code = run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), &s.out, &s.errOut)
	}()
	t.Cleanup(func() { s.stop(t) })
	m := waitMatch(t, s.out.String, firstLine, time.Minute, s.done)
	s.http = m[1]
	return s
}

func (s *serveRun) output() string { return s.out.String() + s.errOut.String() }

// stop cancels serve's context, as SIGINT or SIGTERM does, and returns its
// exit status.
func (s *serveRun) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		t.Fatalf("serve did not stop within a minute of its context's end; output:\n%s", s.output())
	}
	return s.code
}

// httpGet returns the status code, content type and body of GET url, with
// a client that keeps no connection open afterwards.
func httpGet(t *testing.T, url string) (code int, ctype, body string) {
	t.Helper()
	resp, err := testClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// testClient is an HTTP client that keeps no connection open after a
// request, so no goroutine of its stays behind.
func testClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// getStatus decodes GET base/status.
func getStatus(t *testing.T, base string) nodeStatus {
	t.Helper()
	code, ctype, body := httpGet(t, base+"/status")
	if code != http.StatusOK || ctype != "application/json" {
		t.Fatalf("GET /status: %d %q %s", code, ctype, body)
	}
	var s nodeStatus
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("GET /status: %v in %s", err, body)
	}
	return s
}

// waitGoroutines waits until no more than n goroutines run, and fails the
// test listing them if that does not happen within timeout.
func waitGoroutines(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	if !waitfor.Until(timeout, func() bool { return runtime.NumGoroutine() <= n }) {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("%d goroutines run, %d did before serve:\n%s", runtime.NumGoroutine(), n, b.String())
	}
}

// TestServeSingleNode runs serve on a node without network, checks every
// endpoint and "status --http", then stops serve as a signal would and
// checks it leaves no goroutine behind.
//
// Not parallel: counting goroutines needs the parallel tests paused, and
// Go runs them only after the sequential ones.
func TestServeSingleNode(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := filepath.Join(t.TempDir(), "node")
	s := startServe(t, "--dsn", dir+"?_node=n1", "--http", "127.0.0.1:0")
	if want := "node n1 (data dir " + dir + ") runs alone with no network, http on "; !strings.Contains(s.out.String(), want) {
		t.Errorf("first line lacks %q:\n%s", want, s.out.String())
	}
	base := "http://" + s.http

	if code, _, body := httpGet(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
	if code, _, body := httpGet(t, base+"/readyz?timeout=30s"); code != http.StatusOK || body != "ready: leader is n1 (this node)\n" {
		t.Errorf("GET /readyz: %d %q", code, body)
	}
	if code, _, body := httpGet(t, base+"/readyz?timeout=soon"); code != http.StatusBadRequest || !strings.Contains(body, `invalid timeout "soon"`) {
		t.Errorf("GET /readyz?timeout=soon: %d %q", code, body)
	}
	// Without a token, /status shows no path.
	st := getStatus(t, base)
	if st.ID != "n1" || st.LeaderID != "n1" || !st.IsLeader || st.AppliedIndex == 0 || st.DataDir != "" || st.Fault != "" {
		t.Errorf("GET /status: %+v", st)
	}
	if _, _, body := httpGet(t, base+"/status"); strings.Contains(body, dir) || strings.Contains(body, "data_dir") {
		t.Errorf("GET /status without a token shows the data directory:\n%s", body)
	}
	if want := []memberStatus{{ID: "n1", Address: "n1", Voter: true, IsLeader: true}}; len(st.Members) != 1 || st.Members[0] != want[0] {
		t.Errorf("GET /status members: %+v, want %+v", st.Members, want)
	}
	resp, err := testClient().Post(base+"/status", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %s", resp.Status)
	}
	if code, _, _ := httpGet(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", code)
	}
	// A snapshot on demand, open without a token since --http is on
	// loopback; GET is not allowed.
	resp, err = testClient().Post(base+"/snapshot", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "snapshot taken; applied index now ") {
		t.Errorf("POST /snapshot: %s: %s", resp.Status, body)
	}
	if code, _, _ := httpGet(t, base+"/snapshot"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /snapshot: %d", code)
	}

	// status --http, with host:port and with a URL.
	for _, addr := range []string{s.http, base + "/"} {
		var out, errOut bytes.Buffer
		if code := run(testContext(t), []string{"status", "--http", addr}, nil, &out, &errOut); code != exitOK {
			t.Fatalf("status --http %s: exit %d, stderr: %s", addr, code, errOut.String())
		}
		for _, want := range []string{
			"node:          n1\n",
			"leader:        n1 (this node)\n",
			"applied index: ",
			"data dir:      (shown only with serve's --http-token-file)\n",
			"  n1  n1       true   true",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("status --http %s lacks %q:\n%s", addr, want, out.String())
			}
		}
	}

	waitMatch(t, s.out.String, regexp.MustCompile(`(?m)^ready: leader is n1 \(this node\)$`), time.Minute, s.done)
	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exited %d after its context ended; output:\n%s", code, s.output())
	}
	if !strings.HasSuffix(s.out.String(), "stopping node n1\n") {
		t.Errorf("serve's output does not end with stopping:\n%s", s.out.String())
	}
	if s.errOut.Len() > 0 {
		t.Errorf("serve wrote to stderr: %s", s.errOut.String())
	}
	waitGoroutines(t, before, 30*time.Second)

	// The node is closed: its HTTP port no longer answers.
	if c, err := net.Dial("tcp", s.http); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after serve stopped", s.http)
	}
}

// TestServeLoopback runs serve on a one-voter cluster with Raft and gossip
// on loopback. Not parallel, for the goroutine count.
func TestServeLoopback(t *testing.T) {
	before := runtime.NumGoroutine()
	listen, gossip := freeAddr(t), freeAddr(t)
	dir := filepath.Join(t.TempDir(), "solo")
	s := startServe(t, "--dsn", dir+"?_node=solo&_listen="+listen+"&_gossip="+gossip+"&_expect=1", "--http", "127.0.0.1:0")
	if want := "listening on " + listen + ", gossip on " + gossip + ", http on "; !strings.Contains(s.out.String(), want) {
		t.Errorf("first line lacks %q:\n%s", want, s.out.String())
	}
	base := "http://" + s.http
	if code, _, body := httpGet(t, base+"/readyz?timeout=30s"); code != http.StatusOK || body != "ready: leader is solo (this node)\n" {
		t.Fatalf("GET /readyz: %d %q", code, body)
	}
	st := getStatus(t, base)
	want := memberStatus{ID: "solo", Address: listen, Voter: true, IsLeader: true}
	if st.LeaderID != "solo" || st.LeaderAddr != listen || !st.IsLeader || len(st.Members) != 1 || st.Members[0] != want {
		t.Errorf("GET /status: %+v, want leader solo at %s and member %+v", st, listen, want)
	}
	var out, errOut bytes.Buffer
	if code := run(testContext(t), []string{"status", "--http", s.http}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("status --http: exit %d, stderr: %s", code, errOut.String())
	}
	if want := "  solo  " + listen + "  true   true"; !strings.Contains(out.String(), want) {
		t.Errorf("status --http lacks %q:\n%s", want, out.String())
	}
	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exited %d; output:\n%s", code, s.output())
	}
	waitGoroutines(t, before, 30*time.Second)
}

// TestServeNotReady: a node that waits for two more voters that never come
// is healthy but not ready, and stops cleanly all the same.
func TestServeNotReady(t *testing.T) {
	t.Parallel()
	listen, gossip := freeAddr(t), freeAddr(t)
	s := startServe(t, "--dsn", filepath.Join(t.TempDir(), "lonely")+"?_node=lonely&_listen="+listen+"&_gossip="+gossip+"&_expect=3", "--http", "127.0.0.1:0")
	base := "http://" + s.http
	if code, _, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
	code, _, body := httpGet(t, base+"/readyz?timeout=50ms")
	if want := "(leader: unknown (no leader right now))\n"; code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: ") || !strings.HasSuffix(body, want) {
		t.Errorf("GET /readyz: %d %q, want 503 ending with %q", code, body, want)
	}
	st := getStatus(t, base)
	if st.ID != "lonely" || st.LeaderID != "" || st.IsLeader || st.Members == nil || len(st.Members) != 0 {
		t.Errorf("GET /status: %+v", st)
	}
	var out, errOut bytes.Buffer
	if code := run(testContext(t), []string{"status", "--http", s.http}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("status --http: exit %d, stderr: %s", code, errOut.String())
	}
	if want := "leader:        unknown (no leader right now)\n"; !strings.Contains(out.String(), want) {
		t.Errorf("status --http lacks %q:\n%s", want, out.String())
	}
	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exited %d; output:\n%s", code, s.output())
	}
	if strings.Contains(s.out.String(), "ready:") {
		t.Errorf("serve said it was ready:\n%s", s.out.String())
	}
}

// TestServeNoHTTP: with --http "" serve runs the node and nothing else.
func TestServeNoHTTP(t *testing.T) {
	t.Parallel()
	s := startServe(t, "--dsn", filepath.Join(t.TempDir(), "n"), "--http", "")
	if !strings.Contains(s.out.String(), ", http off\n") {
		t.Errorf("first line does not say http is off:\n%s", s.out.String())
	}
	waitMatch(t, s.out.String, regexp.MustCompile(`(?m)^ready: leader is `), time.Minute, s.done)
	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exited %d; output:\n%s", code, s.output())
	}
}

// freeAddr returns a loopback host:port whose TCP and UDP ports were both
// free a moment ago (gossip binds both).
func freeAddr(t testing.TB) string { return testaddr.Loopback(t) }

func TestServeUsage(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "never-opened")
	files := t.TempDir()
	short, missing := filepath.Join(files, "short"), filepath.Join(files, "missing")
	if err := os.WriteFile(short, []byte(" hush \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Cleanups run after the parallel subtests.
	t.Cleanup(func() {
		busy.Close()
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused command touched %s: %v", dir, err)
		}
	})
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no dsn", []string{"serve"}, exitUsage, "--dsn is required"},
		{"positional", []string{"serve", "--dsn", dir, "extra"}, exitUsage, `unexpected argument "extra"`},
		{"empty dir", []string{"serve", "--dsn", "?_node=x"}, exitUsage, "invalid --dsn: hiqlite: the DSN has an empty data directory"},
		{"unknown param", []string{"serve", "--dsn", dir + "?_bogus=1"}, exitUsage, `unknown DSN parameter "_bogus"`},
		{"bad expect", []string{"serve", "--dsn", dir + "?_expect=three"}, exitUsage, `_expect`},
		{"short secret", []string{"serve", "--dsn", dir + "?_secret=hush"}, exitUsage, "_secret"},
		{"http no port", []string{"serve", "--dsn", dir, "--http", "localhost"}, exitUsage, `invalid --http "localhost": want host:port`},
		{"http bad port", []string{"serve", "--dsn", dir, "--http", "127.0.0.1:99999"}, exitUsage, `invalid --http "127.0.0.1:99999": port "99999"`},
		{"http in use", []string{"serve", "--dsn", dir, "--http", busy.Addr().String()}, exitFail, busy.Addr().String()},
		{"help", []string{"serve", "-h"}, exitOK, "Usage: hiqlite serve --dsn DSN [--http ADDR]"},
		{"short token", []string{"serve", "--dsn", dir, "--http-token-file", short}, exitUsage, "invalid --http-token-file: the token in " + short + " is 4 bytes long, want at least 16"},
		{"missing token", []string{"serve", "--dsn", dir, "--http-token-file", missing}, exitUsage, "invalid --http-token-file: open " + missing},
		{"cert without key", []string{"serve", "--dsn", dir, "--http-tls-cert", short}, exitUsage, "give both --http-tls-cert and --http-tls-key"},
		{"token without http", []string{"serve", "--dsn", dir, "--http", "", "--http-token-file", short}, exitUsage, "need --http"},
		{"bad cert", []string{"serve", "--dsn", dir, "--http-tls-cert", missing, "--http-tls-key", short}, exitFail, "https: open " + missing},
		{"status ca on http", []string{"status", "--http", "127.0.0.1:1", "--http-ca", short}, exitUsage, "--http-ca is for HTTPS: give --http as an https:// URL"},
		{"status missing ca", []string{"status", "--http", "https://127.0.0.1:1", "--http-ca", missing}, exitUsage, "invalid --http-ca: open " + missing},
		{"status not a ca", []string{"status", "--http", "https://127.0.0.1:1", "--http-ca", short}, exitUsage, "holds no PEM certificate"},
		{"status short token", []string{"status", "--http", "127.0.0.1:1", "--http-token-file", short}, exitUsage, "is 4 bytes long"},
		{"status token with dsn", []string{"status", "--dsn", dir, "--http-token-file", short}, exitUsage, "--http-token-file and --http-ca go with --http"},
		{"status neither", []string{"status"}, exitUsage, "give exactly one of --dsn DSN"},
		{"status both", []string{"status", "--dsn", dir, "--http", "127.0.0.1:1"}, exitUsage, "give exactly one of --dsn DSN"},
		{"status bad dsn", []string{"status", "--dsn", dir + "?_bogus=1"}, exitUsage, `unknown DSN parameter "_bogus"`},
		{"status bad url", []string{"status", "--http", "ftp://127.0.0.1:21"}, exitUsage, `invalid --http "ftp://127.0.0.1:21": scheme "ftp"`},
		{"status no port", []string{"status", "--http", "localhost"}, exitUsage, `invalid --http "localhost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := run(testContext(t), tt.args, strings.NewReader(""), &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.err) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.err)
			}
			if strings.Contains(errOut.String(), "hush") {
				t.Errorf("stderr shows the secret: %s", errOut.String())
			}
		})
	}
}

// TestStatusHTTPErrors: status --http reports a server that does not
// answer with a status.
func TestStatusHTTPErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down/status":
			http.Error(w, "boom", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "<html>not json</html>")
		}
	}))
	defer srv.Close()
	for _, tt := range []struct{ addr, err string }{
		{srv.URL + "/down", "503 Service Unavailable: boom"},
		{srv.URL, "not a hiqlite status"},
	} {
		var out, errOut bytes.Buffer
		if code := run(testContext(t), []string{"status", "--http", tt.addr}, nil, &out, &errOut); code != exitFail {
			t.Errorf("status --http %s: exit %d, want %d", tt.addr, code, exitFail)
		}
		if !strings.Contains(errOut.String(), tt.err) {
			t.Errorf("status --http %s: stderr %q lacks %q", tt.addr, errOut.String(), tt.err)
		}
	}
}

func TestStatusURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want, err string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/status", ""},
		{"localhost:1", "http://localhost:1/status", ""},
		{"[::1]:8080", "http://[::1]:8080/status", ""},
		{"http://example.test", "http://example.test/status", ""},
		{"https://example.test:8443/", "https://example.test:8443/status", ""},
		{"http://h:1/node/status?x=1", "http://h:1/node/status", ""},
		{"http://h:1/node", "http://h:1/node/status", ""},
		{"localhost", "", "want host:port"},
		{"ftp://h:1", "", `scheme "ftp"`},
		{"http://", "", "want host:port"},
		{"h:1:2", "", "want host:port"},
	} {
		got, err := statusURL(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("statusURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("statusURL(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
		}
	}
}

// TestStatusWaitsForListener: status --http started before serve listens
// keeps trying a refused connection until the node answers, within
// --wait; one that never answers fails once --wait is over, saying so.
// Not parallel: it sets the statusRefused hook.
func TestStatusWaitsForListener(t *testing.T) {
	addr := testaddr.Loopback(t)
	refused := make(chan struct{}, 1)
	statusRefused = func() {
		select {
		case refused <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { statusRefused = nil })

	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- run(testContext(t), []string{"status", "--http", addr, "--wait", "30s"}, nil, &out, &errOut)
	}()
	select {
	case <-refused: // the first try found no listener
	case code := <-done:
		t.Fatalf("status returned %d before any listener existed: %s", code, errOut.String())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"n1","leader_id":"n1","is_leader":true,"applied_index":7,"members":[{"id":"n1","address":"127.0.0.1:1","voter":true,"is_leader":true}]}`)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	if code := <-done; code != exitOK {
		t.Fatalf("status --http %s: exit %d: %s", addr, code, errOut.String())
	}
	if !strings.Contains(out.String(), "applied index: 7") {
		t.Errorf("status output lacks the node's status:\n%s", out.String())
	}

	never := testaddr.Loopback(t)
	errOut.Reset()
	if code := run(testContext(t), []string{"status", "--http", never, "--wait", "300ms"}, nil, &out, &errOut); code != exitFail {
		t.Errorf("status --http %s (nothing listening): exit %d, want %d", never, code, exitFail)
	}
	if !strings.Contains(errOut.String(), "still refused after --wait 300ms") {
		t.Errorf("stderr %q does not say the connection was still refused after --wait", errOut.String())
	}
}

// TestServeLogLevel: HIQLITE_LOG=info shows the node's info lines on
// stderr; an unknown level stops serve with an error naming it.
func TestServeLogLevel(t *testing.T) {
	t.Setenv("HIQLITE_LOG", "info")
	s := startServe(t, "--dsn", filepath.Join(t.TempDir(), "node")+"?_node=n1", "--http", "")
	waitMatch(t, s.errOut.String, regexp.MustCompile(`level=INFO msg=.* logger=raft`), time.Minute, s.done)
	if code := s.stop(t); code != 0 {
		t.Errorf("serve exited %d:\n%s", code, s.output())
	}

	t.Setenv("HIQLITE_LOG", "loud")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"serve", "--dsn", filepath.Join(t.TempDir(), "node"), "--http", ""}, strings.NewReader(""), &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), `HIQLITE_LOG "loud": unknown level`) {
		t.Errorf("HIQLITE_LOG=loud: exit %d, stderr:\n%s", code, errOut.String())
	}
}
