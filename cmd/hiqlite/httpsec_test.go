package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/devcert"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// testToken is the bearer token of these tests.
const testToken = "tok-0123456789abcdef"

// writeToken writes tok, with a trailing newline as editors leave it, to a
// file in dir and returns its path.
func writeToken(t *testing.T, dir, tok string) string {
	t.Helper()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// do sends method url with the bearer token tok ("" for none) and returns
// the status code, the WWW-Authenticate header and the body.
func do(t *testing.T, c *http.Client, method, url, tok string) (code int, auth, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// TestServeToken: with --http-token-file, every endpoint except /healthz
// and /readyz answers 401 with WWW-Authenticate to a request without the
// token or with a wrong one, and works with the right one; status --http
// needs the token file too. Neither serve nor status shows the token.
func TestServeToken(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "node")
	tokFile := writeToken(t, tmp, testToken)
	s := startServe(t, "--dsn", dir+"?_node=t1", "--http", "127.0.0.1:0", "--http-token-file", tokFile)
	base := "http://" + s.http
	c := testClient()

	for _, path := range []string{"/healthz", "/readyz?timeout=30s"} {
		if code, _, body := do(t, c, "GET", base+path, ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %q", path, code, body)
		}
	}
	for _, ep := range []struct{ method, path string }{{"GET", "/status"}, {"POST", "/snapshot"}, {"POST", "/backup"}, {"GET", "/nope"}} {
		for _, tok := range []string{"", "tok-wrong-but-long-enough", testToken + "x"} {
			code, auth, body := do(t, c, ep.method, base+ep.path, tok)
			if code != http.StatusUnauthorized || !strings.HasPrefix(auth, `Bearer realm="hiqlite"`) {
				t.Errorf("%s %s with token %q: %d, WWW-Authenticate %q, %q; want 401 with a Bearer challenge", ep.method, ep.path, tok, code, auth, body)
			}
			if tok != "" && !strings.Contains(auth, `error="invalid_token"`) {
				t.Errorf("%s %s with a wrong token: WWW-Authenticate %q lacks invalid_token", ep.method, ep.path, auth)
			}
		}
	}
	if code, _, body := do(t, c, "GET", base+"/status", testToken); code != http.StatusOK || !strings.Contains(body, `"data_dir": "`+dir+`"`) {
		t.Errorf("GET /status with the token: %d, want 200 with the data dir:\n%s", code, body)
	}
	if code, _, body := do(t, c, "POST", base+"/snapshot", testToken); code != http.StatusOK || !strings.HasPrefix(body, "snapshot taken") {
		t.Errorf("POST /snapshot with the token: %d %q", code, body)
	}
	if code, _, _ := do(t, c, "GET", base+"/nope", testToken); code != http.StatusNotFound {
		t.Errorf("GET /nope with the token: %d, want 404", code)
	}

	// status --http with and without the token file.
	var out, errOut bytes.Buffer
	if code := run(testContext(t), []string{"status", "--http", s.http, "--http-token-file", tokFile}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("status --http --http-token-file: exit %d, stderr: %s", code, errOut.String())
	}
	if want := "data dir:      " + dir + "\n"; !strings.Contains(out.String(), want) {
		t.Errorf("status --http with the token lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(testContext(t), []string{"status", "--http", s.http}, nil, &out, &errOut); code != exitFail {
		t.Errorf("status --http without the token: exit %d, want %d", code, exitFail)
	}
	if want := "401 Unauthorized"; !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), "--http-token-file FILE") {
		t.Errorf("status --http without the token: stderr %q lacks %q and the flag to use", errOut.String(), want)
	}

	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exited %d; output:\n%s", code, s.output())
	}
	if strings.Contains(s.output(), testToken) {
		t.Errorf("serve's output shows the token:\n%s", s.output())
	}
}

// TestSnapshotNeedsToken: without a token, POST /snapshot works only when
// serve listens on loopback; elsewhere it is refused with 403 and a
// message that names the flag to set. Tested on the handler, since tests
// bind nothing but loopback.
func TestSnapshotNeedsToken(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	db, err := sql.Open(hiqlite.DriverName, dir+"?_node=s1")
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
	c := testClient()
	for _, tt := range []struct {
		name string
		acc  httpAccess
		tok  string
		code int
		body string
	}{
		{"no token, not loopback", newHTTPAccess(nil, false), "", http.StatusForbidden, "start serve with --http-token-file"},
		{"no token, loopback", newHTTPAccess(nil, true), "", http.StatusOK, "snapshot taken"},
		{"token, not loopback", newHTTPAccess([]byte(testToken), false), testToken, http.StatusOK, "snapshot taken"},
		{"token, loopback, none sent", newHTTPAccess([]byte(testToken), true), "", http.StatusUnauthorized, "needs Authorization: Bearer TOKEN"},
	} {
		srv := httptest.NewServer(newStatusHandler(node, tt.acc))
		code, _, body := do(t, c, "POST", srv.URL+"/snapshot", tt.tok)
		if code != tt.code || !strings.Contains(body, tt.body) {
			t.Errorf("%s: POST /snapshot: %d %q, want %d with %q", tt.name, code, body, tt.code, tt.body)
		}
		// POST /backup follows the same rule.
		dest := t.TempDir()
		wantBody := strings.Replace(tt.body, "snapshot taken", "backup hiqlite-", 1)
		code, _, body = do(t, c, "POST", srv.URL+"/backup?to="+url.QueryEscape(dest), tt.tok)
		if code != tt.code || !strings.Contains(body, wantBody) {
			t.Errorf("%s: POST /backup: %d %q, want %d with %q", tt.name, code, body, tt.code, wantBody)
		}
		srv.Close()
	}
}

// testCerts is a CA and a certificate for 127.0.0.1 written to files.
type testCerts struct {
	ca                     *devcert.CA
	caFile, cert, key, dir string
}

func newTestCerts(t *testing.T) *testCerts {
	t.Helper()
	dir := t.TempDir()
	ca, err := devcert.NewCA("hiqlite test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCerts{ca: ca, dir: dir, caFile: filepath.Join(dir, "ca.crt"), cert: filepath.Join(dir, "http.crt"), key: filepath.Join(dir, "http.key")}
	if err := ca.WriteCA(tc.caFile); err != nil {
		t.Fatal(err)
	}
	tc.issue(t)
	return tc
}

// issue writes a new certificate for 127.0.0.1 over the files and returns
// its serial number.
func (tc *testCerts) issue(t *testing.T) *big.Int {
	t.Helper()
	now := time.Now()
	leaf, err := tc.ca.Issue("http", []string{"127.0.0.1"}, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(tc.cert, tc.key); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(leaf.DER)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// servedSerial dials addr with TLS, trusting only the CA, and returns the
// serial number of the certificate served.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestServeHTTPS: serve with --http-tls-cert answers HTTPS only;
// status --http https://... works with --http-ca and the token and fails
// clearly without the CA; a certificate renewed in place is served
// without a restart.
func TestServeHTTPS(t *testing.T) {
	t.Parallel()
	tc := newTestCerts(t)
	tokFile := writeToken(t, tc.dir, testToken)
	dir := filepath.Join(t.TempDir(), "node")
	s := startServe(t, "--dsn", dir+"?_node=h1", "--http", "127.0.0.1:0",
		"--http-tls-cert", tc.cert, "--http-tls-key", tc.key, "--http-token-file", tokFile)
	if !strings.Contains(s.out.String(), ", https on "+s.http+"\n") {
		t.Errorf("the first line does not say https:\n%s", s.out.String())
	}
	base := "https://" + s.http
	status := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(testContext(t), append([]string{"status", "--http", base}, args...), nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := status("--http-ca", tc.caFile, "--http-token-file", tokFile)
	if code != exitOK || !strings.Contains(out, "node:          h1\n") || !strings.Contains(out, "data dir:      "+dir+"\n") {
		t.Errorf("status over https: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = status("--http-token-file", tokFile)
	if code != exitFail || !strings.Contains(errOut, "certificate") || !strings.Contains(errOut, "--http-ca FILE") {
		t.Errorf("status over https without the CA: exit %d, stderr %q; want a certificate error that names --http-ca", code, errOut)
	}
	// Plain HTTP on the HTTPS port gets nowhere.
	var out2, errOut2 bytes.Buffer
	if code := run(testContext(t), []string{"status", "--http", s.http, "--http-token-file", tokFile}, nil, &out2, &errOut2); code != exitFail {
		t.Errorf("status over plain http to https: exit %d, want %d", code, exitFail)
	}
	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", s.http, &tls.Config{RootCAs: tc.ca.Pool(), MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	// Rotation: new files in place, served at the next handshake.
	first := servedSerial(t, s.http, tc.ca.Pool())
	renewed := tc.issue(t)
	if first.Cmp(renewed) == 0 {
		t.Fatal("the renewed certificate has the old serial")
	}
	var got *big.Int
	if !waitfor.Until(30*time.Second, func() bool {
		got = servedSerial(t, s.http, tc.ca.Pool())
		return got.Cmp(renewed) == 0
	}) {
		t.Fatalf("serve still serves serial %v, want the renewed %v", got, renewed)
	}
	if code, _, _ := status("--http-ca", tc.caFile, "--http-token-file", tokFile); code != exitOK {
		t.Errorf("status over https after the renewal: exit %d", code)
	}
	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exited %d; output:\n%s", code, s.output())
	}
}

// TestCertReloaderKeepsOld: a certificate file replaced by one that does
// not match the key keeps the old pair served, with a warning, until the
// key follows.
func TestCertReloaderKeepsOld(t *testing.T) {
	t.Parallel()
	tc := newTestCerts(t)
	var warn syncBuffer
	r, err := newCertReloader(tc.cert, tc.key, &warn)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() *big.Int {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.SerialNumber
	}
	old := serial()
	keyPEM, err := os.ReadFile(tc.key)
	if err != nil {
		t.Fatal(err)
	}
	renewed := tc.issue(t)
	if err := os.WriteFile(tc.key+".new", keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	newKey, err := os.ReadFile(tc.key)
	if err != nil {
		t.Fatal(err)
	}
	// The old key back in place: the new certificate does not match it.
	if err := os.Rename(tc.key+".new", tc.key); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(old) != 0 {
		t.Errorf("serial %v after a mismatched renewal, want the old %v", got, old)
	}
	if !strings.Contains(warn.String(), "keeps its previous certificate") {
		t.Errorf("no warning: %q", warn.String())
	}
	if strings.Contains(warn.String(), "PRIVATE KEY") {
		t.Errorf("the warning shows the key: %q", warn.String())
	}
	if err := os.WriteFile(tc.key+".new", newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tc.key+".new", tc.key); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(renewed) != 0 {
		t.Errorf("serial %v once the key followed, want %v", got, renewed)
	}
}

// TestExposureWarnings: serve warns when its HTTP listener is off loopback
// without a token or without TLS, and not on loopback. (Tests bind only
// loopback, so the bound address is made up.)
func TestExposureWarnings(t *testing.T) {
	t.Parallel()
	wide := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	both := httpOptions{addr: ":8080", token: []byte(testToken), tlsCert: "c", tlsKey: "k"}
	for _, tt := range []struct {
		name  string
		bound net.Addr
		o     httpOptions
		want  []string
	}{
		{"loopback, nothing", lo, httpOptions{addr: "127.0.0.1:8080"}, nil},
		{"wide, nothing", wide, httpOptions{addr: ":8080"}, []string{"has no --http-token-file", "has no --http-tls-cert"}},
		{"wide, token only", wide, httpOptions{addr: ":8080", token: []byte(testToken)}, []string{"has no --http-tls-cert"}},
		{"wide, TLS only", wide, httpOptions{addr: ":8080", tlsCert: "c", tlsKey: "k"}, []string{"has no --http-token-file"}},
		{"wide, both", wide, both, nil},
	} {
		got := exposureWarnings(tt.bound, tt.o)
		if len(got) != len(tt.want) {
			t.Errorf("%s: %q, want %d warnings", tt.name, got, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) || !strings.Contains(got[i], "--http :8080") {
				t.Errorf("%s: warning %q lacks %q and the address", tt.name, got[i], w)
			}
		}
	}
}
