package nodeport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/devcert"
)

// tlsTestCA makes a CA for a test.
func tlsTestCA(t *testing.T, name string) *devcert.CA {
	t.Helper()
	ca, err := devcert.NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// tlsTestFiles issues a certificate for 127.0.0.1 from ca, valid from
// notBefore to notAfter, and writes it, its key and ca's certificate in a
// new directory; it returns their paths and the certificate's serial.
func tlsTestFiles(t *testing.T, ca *devcert.CA, notBefore, notAfter time.Time) (cert, key, caFile string, serial *big.Int) {
	t.Helper()
	dir := t.TempDir()
	cert, key, caFile = filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"), filepath.Join(dir, "ca.crt")
	serial = tlsTestIssue(t, ca, cert, key, notBefore, notAfter)
	if err := ca.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	return cert, key, caFile, serial
}

// tlsTestIssue issues a certificate for 127.0.0.1 and writes it to cert and
// key (atomically); it returns its serial.
func tlsTestIssue(t *testing.T, ca *devcert.CA, cert, key string, notBefore, notAfter time.Time) *big.Int {
	t.Helper()
	leaf, err := ca.Issue("node", []string{"127.0.0.1", "localhost"}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(cert, key); err != nil {
		t.Fatal(err)
	}
	tc := leaf.TLSCertificate()
	return tlsSerial(t, tc.Certificate[0])
}

func tlsSerial(t *testing.T, der []byte) *big.Int {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// tlsTestNode returns the TLS of a node whose certificate ca issued, valid
// now unless notAfter says otherwise, and that trusts ca.
func tlsTestNode(t *testing.T, ca *devcert.CA, notAfter time.Time) *TLS {
	t.Helper()
	return tlsTestNodeTrusting(t, ca, ca, notAfter)
}

// tlsTestNodeTrusting is tlsTestNode with a certificate of issuer that
// trusts ca.
func tlsTestNodeTrusting(t *testing.T, issuer, ca *devcert.CA, notAfter time.Time) *TLS {
	t.Helper()
	cert, key, caFile, _ := tlsTestFiles(t, issuer, time.Now().Add(-2*time.Hour), notAfter)
	if err := ca.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	nt, err := NewTLS(nil, cert, key, caFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

func tlsTestListen(t *testing.T, nt *TLS, log *muxLog) *Mux {
	t.Helper()
	opts := muxFastOpts
	opts.tls = nt
	return muxTestListen(t, muxTestSecret, opts, log)
}

// TestMuxTLS: two nodes of one CA talk over TLS 1.3 on every stream, both
// certificates verified.
func TestMuxTLS(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("", func(t *testing.T) {
		ca := tlsTestCA(t, "ca")
		var log muxLog
		a := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), &log)
		b := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), &log)
		muxEcho(t, a)
		muxEcho(t, b)
		muxDialRoundTrip(t, a, b.Addr())
		muxDialRoundTrip(t, b, a.Addr())

		c, err := a.DialRPC(context.Background(), b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tc, ok := c.(*muxConn).Conn.(*tls.Conn)
		if !ok {
			t.Fatalf("dialed %T, want a TLS connection", c.(*muxConn).Conn)
		}
		if st := tc.ConnectionState(); st.Version != tls.VersionTLS13 || len(st.VerifiedChains) == 0 {
			t.Errorf("TLS version %#x, %d verified chains; want TLS 1.3, verified", st.Version, len(st.VerifiedChains))
		}

		// Raft's stream too.
		go func() {
			if c, err := b.RaftLayer().Accept(); err == nil {
				c.Close()
			}
		}()
		rc, err := a.RaftLayer().Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second)
		if err != nil {
			t.Fatalf("raft dial: %v", err)
		}
		if _, ok := rc.(*muxConn).Conn.(*tls.Conn); !ok {
			t.Errorf("raft dialed %T, want TLS", rc.(*muxConn).Conn)
		}
		rc.Close()
		log.checkNoSecret(t)
	})
	muxNoLeak(t, before)
}

// TestMuxTLSRefusals: a node whose certificate is of another CA, expired,
// missing, or that speaks no TLS at all cannot connect; the node it dials
// logs why and keeps serving its members.
func TestMuxTLSRefusals(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	var log muxLog
	server := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), &log)
	muxEcho(t, server)
	member := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), nil)

	// A client with the right CA pool but no certificate of its own.
	noCert := tlsTestNode(t, ca, time.Now().Add(time.Hour))
	noCert.files.cur = &certState{pool: noCert.files.cur.pool, leaf: noCert.files.cur.leaf}
	noCert.files.every = time.Hour

	tests := []struct {
		name string
		tls  *TLS
		log  string // what the server's log says
	}{
		{"foreign CA", tlsTestNodeTrusting(t, tlsTestCA(t, "other"), ca, time.Now().Add(time.Hour)), "tls-unknown-authority=1"},
		{"expired", tlsTestNode(t, ca, time.Now().Add(-time.Hour)), "tls-expired=1"},
		{"no certificate", noCert, "tls-no-certificate=1"},
		{"no TLS", nil, "failed=1"},
	}
	for _, tc := range tests {
		log.mu.Lock()
		log.b.Reset()
		log.mu.Unlock()
		server.drops.mu.Lock()
		server.drops.last = time.Time{} // log the next drop at once
		server.drops.mu.Unlock()

		stranger := tlsTestListen(t, tc.tls, nil)
		if tc.tls == nil {
			stranger = muxTestListen(t, muxTestSecret, muxFastOpts, nil)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := stranger.DialRPC(ctx, server.Addr().String())
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("%s: dial succeeded", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		muxWaitFor(t, tc.name+" in the log", 10*time.Second, func() bool { return strings.Contains(log.String(), tc.log) })
		// The server still serves its members.
		muxDialRoundTrip(t, member, server.Addr())
	}
	log.checkNoSecret(t)
}

// TestMuxTLSForeignServer: the dialer refuses a server whose certificate
// is of another CA, or names another host, and says why; the server learns
// that its certificate was refused.
func TestMuxTLSForeignServer(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	var log muxLog
	foreign := tlsTestListen(t, tlsTestNode(t, tlsTestCA(t, "other"), time.Now().Add(time.Hour)), &log)
	client := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), nil)
	_, err := client.DialRPC(context.Background(), foreign.Addr().String())
	if err == nil || !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Fatalf("dial of a foreign server: %v, want a certificate verification error", err)
	}
	muxWaitFor(t, "the refusal in the server's log", 10*time.Second, func() bool {
		return strings.Contains(log.String(), "tls-peer-refused-ours=1")
	})

	// A certificate for another host: the dialed address must be in it.
	dir := t.TempDir()
	leaf, err := ca.Issue("elsewhere", []string{"127.0.0.9"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(filepath.Join(dir, "c"), filepath.Join(dir, "k")); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCA(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	nt, err := NewTLS(nil, filepath.Join(dir, "c"), filepath.Join(dir, "k"), filepath.Join(dir, "ca"), nil)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := tlsTestListen(t, nt, nil)
	_, err = client.DialRPC(context.Background(), elsewhere.Addr().String())
	var herr x509.HostnameError
	if err == nil || !errors.As(err, &herr) {
		t.Fatalf("dial of a server with another host's certificate: %v, want a hostname error", err)
	}
}

// TestMuxTLSPlainClient: a client without TLS that sends a stream byte, or
// a whole hello, gets nothing back and is closed; one that stalls in the
// TLS handshake is closed at the handshake deadline like any stranger.
func TestMuxTLSPlainClient(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	var log muxLog
	m := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), &log)
	for name, hello := range map[string][]byte{
		"stream byte":              {byte(StreamRaft)},
		"full hello":               muxHello(StreamRPC, ProtoVersion, muxNonce()),
		"nothing":                  nil,
		"half a TLS record header": {0x16, 0x03},
	} {
		// Not muxStranger: a whole hello is refused at once, before
		// the wait for it to be in handshake could see it.
		start := time.Now()
		c, err := net.DialTimeout("tcp", m.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("%s: not closed", name)
		case n != 0:
			t.Errorf("%s: got %d bytes back", name, n)
		default:
			t.Logf("%s: closed after %v with nothing sent back", name, time.Since(start).Round(time.Millisecond))
		}
	}
	muxWaitFor(t, "no handshake in flight", 10*time.Second, func() bool { return m.PendingHandshakes() == 0 })
	if got := log.String(); !strings.Contains(got, "closed unauthenticated connections") {
		t.Errorf("no warning about the strangers:\n%s", got)
	}
}

// TestMuxTLSRotation: new certificate files are served without a restart.
func TestMuxTLSRotation(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	cert, key, caFile, first := tlsTestFiles(t, ca, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	nt, err := NewTLS(nil, cert, key, caFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	nt.files.every = 0 // look at the files on every handshake
	m := tlsTestListen(t, nt, nil)
	muxEcho(t, m)
	client := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), nil)
	if got := tlsServedSerial(t, m, caFile); got.Cmp(first) != 0 {
		t.Fatalf("served serial %v, want %v", got, first)
	}
	second := tlsTestIssue(t, ca, cert, key, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if got := tlsServedSerial(t, m, caFile); got.Cmp(second) != 0 {
		t.Fatalf("after rotation: served serial %v, want %v", got, second)
	}
	muxDialRoundTrip(t, client, m.Addr())
}

// tlsServedSerial dials m with TLS (its own CA, a client certificate of no
// importance: the TLS handshake alone is looked at) and returns the serial
// of the certificate m presents.
func tlsServedSerial(t *testing.T, m *Mux, caFile string) *big.Int {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in", caFile)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", m.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestCertFilesReload: the reloader follows the files, keeps the previous
// pair when a re-read fails and says so.
func TestCertFilesReload(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	cert, key, caFile, first := tlsTestFiles(t, ca, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	var log muxLog
	f, err := newCertFiles(cert, key, caFile, 0, hclog.New(&hclog.LoggerOptions{Output: &log}))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() *big.Int { return f.current().leaf.SerialNumber }
	if got := serial(); got.Cmp(first) != 0 {
		t.Fatalf("serial %v, want %v", got, first)
	}

	// Half a certificate file: the old pair stays.
	good, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(first) != 0 {
		t.Errorf("after a half-written file: serial %v, want the previous %v", got, first)
	}
	if !strings.Contains(log.String(), "keeping the previous certificate") {
		t.Errorf("no warning about the failed re-read:\n%s", log.String())
	}

	// A key that does not match (the certificate not written yet).
	other, err := ca.Issue("other", []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := other.Write(filepath.Join(dir, "c"), key); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(first) != 0 {
		t.Errorf("with a mismatched key: serial %v, want the previous %v", got, first)
	}
	// The certificate follows: the new pair is taken.
	if err := other.Write(cert, key); err != nil {
		t.Fatal(err)
	}
	second := tlsSerial(t, other.DER)
	if got := serial(); got.Cmp(second) != 0 {
		t.Errorf("after rotation: serial %v, want %v", got, second)
	}

	// A missing file, then a CA file that holds no certificate.
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(second) != 0 {
		t.Errorf("without the CA file: serial %v, want %v", got, second)
	}
	if err := os.WriteFile(caFile, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(second) != 0 {
		t.Errorf("with a broken CA file: serial %v, want %v", got, second)
	}

	// Files that never loaded are an error at start.
	if _, err := newCertFiles(cert, key, caFile, 0, nil); err == nil {
		t.Error("newCertFiles with a broken CA file: no error")
	}
	if _, err := NewTLS(nil, cert, "", caFile, nil); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("NewTLS without a key: %v", err)
	}
}

// TestCertFilesReloadEvery: files are looked at no more often than every.
func TestCertFilesReloadEvery(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	cert, key, caFile, first := tlsTestFiles(t, ca, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	f, err := newCertFiles(cert, key, caFile, time.Hour, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	tlsTestIssue(t, ca, cert, key, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if got := f.current().leaf.SerialNumber; got.Cmp(first) != 0 {
		t.Errorf("re-read before every passed: serial %v, want %v", got, first)
	}
}

// TestMuxTLSConfig: TLS given as a tls.Config works as files do, and is
// checked for both sides of mutual TLS.
func TestMuxTLSConfig(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	config := func() *tls.Config {
		leaf, err := ca.Issue("node", []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// MinVersion and ClientAuth left weak on purpose: the mux forces them.
		return &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}, RootCAs: ca.Pool(), ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12, ClientAuth: tls.NoClientCert}
	}
	var ts []*TLS
	for range 2 {
		nt, err := NewTLS(config(), "", "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, nt)
	}
	a, b := tlsTestListen(t, ts[0], nil), tlsTestListen(t, ts[1], nil)
	muxEcho(t, b)
	muxDialRoundTrip(t, a, b.Addr())

	// A client without a certificate is refused although the caller's
	// config said NoClientCert.
	var log muxLog
	c := tlsTestListen(t, ts[0], &log)
	noCert, err := NewTLS(&tls.Config{Certificates: []tls.Certificate{{}}, RootCAs: ca.Pool(), ClientCAs: ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }}, "", "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsTestListen(t, noCert, nil).DialRPC(context.Background(), c.Addr().String()); err == nil {
		t.Fatal("a client without a certificate connected")
	}
	muxWaitFor(t, "the refusal in the log", 10*time.Second, func() bool { return strings.Contains(log.String(), "tls-no-certificate=1") })

	for name, bad := range map[string]func(*tls.Config){
		"no RootCAs":   func(c *tls.Config) { c.RootCAs = nil },
		"no ClientCAs": func(c *tls.Config) { c.ClientCAs = nil },
		"no cert":      func(c *tls.Config) { c.Certificates = nil },
		"TLS 1.2":      func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 },
	} {
		c := config()
		bad(c)
		if _, err := NewTLS(c, "", "", "", nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewTLS(config(), "c", "k", "ca", nil); err == nil {
		t.Error("a tls.Config and files: no error")
	}
}

// TestMuxTLSStrangersBounded: strangers that stall inside the TLS
// handshake hold bounded places like any stranger: a member's TLS dial
// displaces them and gets through while they wait.
func TestMuxTLSStrangersBounded(t *testing.T) {
	ca := tlsTestCA(t, "ca")
	// The strangers' deadline is far beyond the member's round trip (10 s
	// at most), so the member getting through shows it did not wait for it.
	opts := muxOptions{handshakeTimeout: 5 * time.Minute, maxHandshakes: 4, tls: tlsTestNode(t, ca, time.Now().Add(time.Hour))}
	var log muxLog
	m := muxTestListen(t, muxTestSecret, opts, &log)
	muxEcho(t, m)
	// A TLS record header and part of a ClientHello, then nothing.
	for range 8 {
		muxStranger(t, m, "127.0.0.1", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
	}
	if n := m.PendingHandshakes(); n > 4 {
		t.Fatalf("%d handshakes in flight, want at most 4", n)
	}
	member := tlsTestListen(t, tlsTestNode(t, ca, time.Now().Add(time.Hour)), nil)
	muxDialRoundTrip(t, member, m.Addr())
	muxWaitFor(t, "the displaced strangers in the log", 10*time.Second, func() bool {
		return regexp.MustCompile(`displaced-source-full=[1-9]`).MatchString(log.String())
	})
}
