package main

// This file holds the security of serve's HTTP API, both sides: the bearer
// token and TLS certificate serve takes (--http-token-file, --http-tls-cert,
// --http-tls-key), and the flags of the commands that ask serve
// (--http-token-file, --http-ca).

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

// minTokenLen is the least length of a bearer token, as of the cluster
// secret.
const minTokenLen = 16

// readToken reads the bearer token in path: the file's contents without
// surrounding white space, at least minTokenLen bytes. Errors never show
// the contents.
func readToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // names the path
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < minTokenLen {
		return nil, fmt.Errorf("the token in %s is %d bytes long, want at least %d (for example: head -c 32 /dev/urandom | base64 > %s)", path, len(tok), minTokenLen, path)
	}
	return tok, nil
}

// httpAccess says who may do what on serve's HTTP endpoints. The zero
// value has no token and refuses POST /snapshot.
type httpAccess struct {
	// tokenSum is the SHA-256 of the bearer token, nil without one. With a
	// token, every endpoint except /healthz and /readyz requires it.
	tokenSum []byte
	// snapshotOpen lets callers without a token take snapshots: serve sets
	// it when no token is set and the HTTP listener is on loopback only.
	snapshotOpen bool
}

func newHTTPAccess(token []byte, loopback bool) httpAccess {
	if token == nil {
		return httpAccess{snapshotOpen: loopback}
	}
	sum := sha256.Sum256(token)
	return httpAccess{tokenSum: sum[:]}
}

// bearer is the outcome of checking a request's Authorization header.
type bearer int

const (
	bearerNone  bearer = iota // no token set, or none sent
	bearerWrong               // a token sent, not the right one
	bearerOK                  // the right token
)

// check compares r's bearer token with the token in constant time
// (hashing both first, so not even the length leaks).
func (a httpAccess) check(r *http.Request) bearer {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if a.tokenSum == nil || !ok || !strings.EqualFold(scheme, "Bearer") {
		return bearerNone
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], a.tokenSum) != 1 {
		return bearerWrong
	}
	return bearerOK
}

// public reports whether path answers without the token.
func public(path string) bool { return path == "/healthz" || path == "/readyz" }

// guard answers 401 to a request that lacks the token where one is
// required, and passes the others to next.
func (a httpAccess) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.tokenSum == nil || public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		switch a.check(r) {
		case bearerOK:
			next.ServeHTTP(w, r)
		case bearerWrong:
			w.Header().Set("WWW-Authenticate", `Bearer realm="hiqlite", error="invalid_token"`)
			http.Error(w, "the bearer token is not the one of serve's --http-token-file", http.StatusUnauthorized)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="hiqlite"`)
			http.Error(w, "this endpoint needs Authorization: Bearer TOKEN, the token of serve's --http-token-file", http.StatusUnauthorized)
		}
	})
}

// isLoopback reports whether addr, a bound listener's address, can only be
// reached from this machine.
func isLoopback(addr net.Addr) bool {
	a, ok := addr.(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// certReloader serves the certificate in certFile and keyFile, and reads
// them again when either file changes (its size, modification time or
// inode), so a renewed certificate is served without a restart. A re-read
// that fails (a key that does not match its certificate yet) keeps the
// previous pair, says so once on warn, and is retried at the next change.
type certReloader struct {
	certFile, keyFile string
	warn              io.Writer

	mu   sync.Mutex // guards the fields below
	cert *tls.Certificate
	seen [2]os.FileInfo // the files as they were at the last read
}

// newCertReloader reads certFile and keyFile now: an error if they cannot
// be.
func newCertReloader(certFile, keyFile string, warn io.Writer) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, warn: warn}
	c.seen = c.stat()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err // names the file, never shows the key
	}
	c.cert = &cert
	return c, nil
}

func (c *certReloader) stat() [2]os.FileInfo {
	var fi [2]os.FileInfo
	fi[0], _ = os.Stat(c.certFile)
	fi[1], _ = os.Stat(c.keyFile)
	return fi
}

// GetCertificate is tls.Config.GetCertificate: it checks the files on
// every handshake, two stat calls.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := c.stat()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !changed(c.seen[0], now[0]) && !changed(c.seen[1], now[1]) {
		return c.cert, nil
	}
	c.seen = now
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		fmt.Fprintf(c.warn, "hiqlite serve: warning: https keeps its previous certificate: %v\n", err)
		return c.cert, nil
	}
	c.cert = &cert
	return c.cert, nil
}

func changed(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a != b
	}
	return a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) || !os.SameFile(a, b)
}

// httpClientFlags are the flags of the commands that talk to serve's HTTP
// API.
type httpClientFlags struct {
	tokenFile, caFile *string
}

func addHTTPClientFlags(fs *flag.FlagSet) httpClientFlags {
	return httpClientFlags{
		tokenFile: fs.String("http-token-file", "", "a file holding the bearer token of serve's --http-token-file, sent as Authorization: Bearer"),
		caFile:    fs.String("http-ca", "", "a PEM file of the CA that signed serve's HTTPS certificate, such as hiqlite cert's ca.crt\n(without it, the system's CAs); --http must then be an https:// URL"),
	}
}

// httpClient talks to serve's HTTP API with the settings of its flags.
type httpClient struct {
	c         *http.Client
	token     []byte
	tokenFile string
	caFile    string
}

// client returns the client for rawURL, which is http:// or https://.
// A mistake in the flags is a usage error.
func (f httpClientFlags) client(rawURL string) (*httpClient, error) {
	h := &httpClient{tokenFile: *f.tokenFile, caFile: *f.caFile}
	// One request: no connection is kept for later.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	if h.caFile != "" {
		if !strings.HasPrefix(rawURL, "https://") {
			return nil, &usageError{fmt.Errorf("--http-ca is for HTTPS: give --http as an https:// URL, not %s", rawURL)}
		}
		pem, err := os.ReadFile(h.caFile)
		if err != nil {
			return nil, &usageError{fmt.Errorf("invalid --http-ca: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &usageError{fmt.Errorf("invalid --http-ca: %s holds no PEM certificate", h.caFile)}
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if h.tokenFile != "" {
		tok, err := readToken(h.tokenFile)
		if err != nil {
			return nil, &usageError{fmt.Errorf("invalid --http-token-file: %w", err)}
		}
		h.token = tok
	}
	h.c = &http.Client{Transport: tr}
	return h, nil
}

// do sends req with the token, if any. Its errors say which flag would
// help when the server's certificate is not trusted.
func (h *httpClient) do(req *http.Request) (*http.Response, error) {
	if h.token != nil {
		req.Header.Set("Authorization", "Bearer "+string(h.token))
	}
	resp, err := h.c.Do(req)
	var cve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cve) && h.caFile == "":
		return nil, fmt.Errorf("%w\n(if serve's certificate comes from a private CA, such as hiqlite cert's, pass it with --http-ca FILE)", err)
	case errors.As(err, &cve):
		return nil, fmt.Errorf("%w\n(serve's certificate is not signed by the CA in --http-ca %s, or does not name this host)", err, h.caFile)
	}
	return resp, err
}

// unauthorizedHint says what to do about a 401.
func (h *httpClient) unauthorizedHint() string {
	if h.token == nil {
		return "serve requires a token: pass it with --http-token-file FILE"
	}
	return "the token in --http-token-file " + h.tokenFile + " is not serve's"
}
