package nodeport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// This file holds mutual TLS on the node port: the TLS settings
// a Mux wraps every connection in, the certificate files re-read when they
// change, and how a refused handshake is told apart (expired, unknown
// authority, no certificate) for the log.
//
// TLS sits under everything else on the port: a Mux runs the TLS handshake
// first on every accepted and every dialed connection, and the stream byte
// and the HMAC handshake (auth.go) travel inside it. The accepted side's
// TLS handshake runs under the same deadline and in the same bounded place
// among the handshakes as the HMAC one (admit.go).

// tlsReloadEvery is the least time between two checks of the certificate
// files for a change (their size and modification time).
const tlsReloadEvery = time.Second

// errNoClientCert is the refusal of a client that sent no certificate.
var errNoClientCert = errors.New("hiqlite: the peer sent no TLS certificate")

// TLS is the TLS side of a node's port: certificates from files (files)
// or from a *tls.Config given by the caller (base); exactly one is set.
type TLS struct {
	base   *tls.Config
	files  *certFiles
	server *tls.Config // built once; it picks the current files per handshake
}

// NewTLS returns the TLS settings of a node: from base when it is not
// nil, else from the PEM files certFile, keyFile and caFile, which are read
// now (an error if they cannot be) and re-read when they change. It returns
// nil, nil when neither is set.
func NewTLS(base *tls.Config, certFile, keyFile, caFile string, logger hclog.Logger) (*TLS, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	t := &TLS{}
	switch {
	case base != nil && (certFile != "" || keyFile != "" || caFile != ""):
		return nil, errors.New("hiqlite: TLS: a tls.Config and certificate files are mutually exclusive")
	case base != nil:
		if err := CheckTLSConfig(base); err != nil {
			return nil, err
		}
		t.base = base.Clone()
		server := base.Clone()
		forceServer(server)
		if get := server.GetConfigForClient; get != nil {
			server.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				c, err := get(hello)
				if c != nil {
					c = c.Clone()
					forceServer(c)
				}
				return c, err
			}
		}
		t.server = server
	case certFile != "" || keyFile != "" || caFile != "":
		if certFile == "" || keyFile == "" || caFile == "" {
			return nil, fmt.Errorf("hiqlite: TLS needs a certificate, its key and a CA file (got cert %q, key %q, CA %q)", certFile, keyFile, caFile)
		}
		f, err := newCertFiles(certFile, keyFile, caFile, tlsReloadEvery, logger)
		if err != nil {
			return nil, err
		}
		t.files = f
		t.server = &tls.Config{
			MinVersion: tls.VersionTLS13,
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				s := f.current()
				c := &tls.Config{Certificates: []tls.Certificate{s.pair}, ClientCAs: s.pool}
				forceServer(c)
				return c, nil
			},
		}
	default:
		return nil, nil
	}
	return t, nil
}

// CheckTLSConfig checks that a caller's tls.Config holds both sides of
// mutual TLS: certificates for the server and the client side, RootCAs and
// ClientCAs, and allows TLS 1.3.
func CheckTLSConfig(c *tls.Config) error {
	switch {
	case len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil:
		return errors.New("hiqlite: TLS config has no server certificate (set Certificates or GetCertificate)")
	case len(c.Certificates) == 0 && c.GetClientCertificate == nil:
		return errors.New("hiqlite: TLS config has no client certificate (set Certificates or GetClientCertificate)")
	case c.RootCAs == nil:
		return errors.New("hiqlite: TLS config has no RootCAs to verify the nodes it dials")
	case c.ClientCAs == nil && c.GetConfigForClient == nil:
		return errors.New("hiqlite: TLS config has no ClientCAs to verify the nodes that dial it")
	case c.MaxVersion != 0 && c.MaxVersion < tls.VersionTLS13:
		return fmt.Errorf("hiqlite: TLS config MaxVersion %#x is below TLS 1.3, which the node port requires", c.MaxVersion)
	}
	return nil
}

// forceServer makes c the server side of the node port: TLS 1.3, a client
// certificate required and verified against ClientCAs, no resumption (a
// resumed session would skip the check of a rotated or expired
// certificate).
//
// The client certificate is required as with RequireAndVerifyClientCert,
// but the "required" half is checked in VerifyConnection
// (VerifyClientCertIfGiven verifies any certificate sent against
// ClientCAs), so that a client without one is refused with
// errNoClientCert, which the log can name.
func forceServer(c *tls.Config) {
	c.MinVersion = tls.VersionTLS13
	c.ClientAuth = tls.VerifyClientCertIfGiven
	c.SessionTicketsDisabled = true
	next := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errNoClientCert
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
}

// client returns the client side for a dial of addr: TLS 1.3, the peer's
// certificate verified against the CA and addr's host (an IP or DNS SAN),
// and this node's certificate offered whatever CAs the server names (so a
// server that does not trust it says so, rather than seeing none).
func (t *TLS) client(addr string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var c *tls.Config
	if t.files != nil {
		s := t.files.current()
		c = &tls.Config{RootCAs: s.pool}
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &s.pair, nil }
	} else {
		c = t.base.Clone()
		if c.GetClientCertificate == nil {
			pair := &c.Certificates[0]
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair, nil }
		}
	}
	c.MinVersion = tls.VersionTLS13
	c.ServerName = host
	c.InsecureSkipVerify = false
	c.ClientSessionCache = nil
	return c, nil
}

// certFiles is a certificate, its key and a CA pool read from PEM files,
// re-read when one of the files changes. A re-read that fails (a file half
// written, a key that does not match its certificate yet) keeps the
// previous pair and logs a warning; the next change of the files retries.
//
// Lock protocol: mu guards the fields below it and is held across the
// check and the re-read (a few small files), so concurrent handshakes read
// the files once.
type certFiles struct {
	cert, key, ca string
	every         time.Duration
	logger        hclog.Logger

	mu      sync.Mutex
	checked time.Time    // of the last look at the files
	stamps  [3]fileStamp // of the files when last read, loaded or not
	cur     *certState
}

// certState is what one read of the files gave.
type certState struct {
	pair tls.Certificate
	leaf *x509.Certificate
	pool *x509.CertPool
}

// fileStamp tells a changed file: its size and modification time, or that
// it could not be seen.
type fileStamp struct {
	size    int64
	modTime time.Time
	missing bool
}

func newCertFiles(cert, key, ca string, every time.Duration, logger hclog.Logger) (*certFiles, error) {
	f := &certFiles{cert: cert, key: key, ca: ca, every: every, logger: logger}
	f.stamps = f.stat()
	s, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur, f.checked = s, time.Now()
	f.warnValidity(s)
	return f, nil
}

// current returns the pair and pool to use now, re-reading the files first
// if one changed and every has passed since the last look.
func (f *certFiles) current() *certState {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.checked) < f.every {
		return f.cur
	}
	f.checked = now
	stamps := f.stat()
	if stamps == f.stamps {
		return f.cur
	}
	f.stamps = stamps
	s, err := f.load()
	if err != nil {
		f.logger.Warn("re-reading the TLS files failed; keeping the previous certificate", "cert", f.cert, "serial", f.cur.leaf.SerialNumber, "error", err)
		return f.cur
	}
	f.cur = s
	f.logger.Info("TLS certificate reloaded", "cert", f.cert, "serial", s.leaf.SerialNumber, "not-after", s.leaf.NotAfter)
	f.warnValidity(s)
	return f.cur
}

func (f *certFiles) stat() [3]fileStamp {
	var st [3]fileStamp
	for i, p := range []string{f.cert, f.key, f.ca} {
		fi, err := os.Stat(p)
		if err != nil {
			st[i].missing = true
			continue
		}
		st[i] = fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	}
	return st
}

// load reads and checks the three files.
func (f *certFiles) load() (*certState, error) {
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: TLS certificate %q and key %q: %w", f.cert, f.key, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("hiqlite: TLS certificate %q: %w", f.cert, err)
	}
	pair.Leaf = leaf
	ca, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("hiqlite: TLS CA %q holds no PEM certificate", f.ca)
	}
	return &certState{pair: pair, leaf: leaf, pool: pool}, nil
}

// warnValidity logs a certificate that peers will refuse for its dates.
func (f *certFiles) warnValidity(s *certState) {
	now := time.Now()
	switch {
	case now.After(s.leaf.NotAfter):
		f.logger.Warn("this node's TLS certificate has expired; peers will refuse it", "cert", f.cert, "not-after", s.leaf.NotAfter)
	case now.Before(s.leaf.NotBefore):
		f.logger.Warn("this node's TLS certificate is not valid yet; peers will refuse it", "cert", f.cert, "not-before", s.leaf.NotBefore)
	}
}

// tlsRefusal tells why a TLS handshake on the port failed, when it failed
// over a certificate: the peer's was expired, of an unknown authority,
// missing or otherwise invalid, or the peer refused this node's.
func tlsRefusal(err error) (dropReason, bool) {
	var verr *tls.CertificateVerificationError
	var inval x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var op *net.OpError
	switch {
	case errors.Is(err, errNoClientCert):
		return dropTLSNoCert, true
	case errors.As(err, &inval) && inval.Reason == x509.Expired:
		return dropTLSExpired, true
	case errors.As(err, &unknown):
		return dropTLSUnknownCA, true
	case errors.As(err, &verr):
		return dropTLSBadCert, true
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports an alert from the peer this way; during the
		// handshake it means the peer refused this node's certificate.
		return dropTLSRefusedOurs, true
	}
	return 0, false
}

// IsLoopback reports whether the host of host:port is "localhost" or a
// loopback IP literal. An empty host binds all interfaces: not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
