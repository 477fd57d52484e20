package hiqlite_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/devcert"
)

// nodeCert is where a test node's TLS files are.
type nodeCert struct{ cert, key, ca string }

func (nc nodeCert) params() []string {
	return []string{"_tls_cert=" + nc.cert, "_tls_key=" + nc.key, "_tls_ca=" + nc.ca}
}

func newTestCA(t testing.TB, name string) *devcert.CA {
	t.Helper()
	ca, err := devcert.NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writeNodeCert writes, in a new directory, a certificate for 127.0.0.1
// that issuer signs, valid until notAfter, its key, and trust's
// certificate as the CA file.
func writeNodeCert(t testing.TB, issuer, trust *devcert.CA, notAfter time.Time) nodeCert {
	t.Helper()
	dir := t.TempDir()
	nc := nodeCert{filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"), filepath.Join(dir, "ca.crt")}
	issueNodeCert(t, issuer, nc, notAfter)
	if err := trust.WriteCA(nc.ca); err != nil {
		t.Fatal(err)
	}
	return nc
}

// issueNodeCert (re)writes nc's certificate and key with a new pair that
// issuer signs, and returns its serial.
func issueNodeCert(t testing.TB, issuer *devcert.CA, nc nodeCert, notAfter time.Time) *big.Int {
	t.Helper()
	leaf, err := issuer.Issue("node", []string{"127.0.0.1"}, time.Now().Add(-2*time.Hour), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(nc.cert, nc.key); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(leaf.DER)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// newTLSCluster starts n voters, each with its own certificate from ca.
func newTLSCluster(t testing.TB, n int, ca *devcert.CA) (*clustertest.Cluster, map[string]nodeCert) {
	t.Helper()
	certs := map[string]nodeCert{}
	c := clustertest.NewWith(t, n, func(m *clustertest.Member) {
		nc := writeNodeCert(t, ca, ca, time.Now().Add(time.Hour))
		certs[m.ID] = nc
		m.Params = append(m.Params, nc.params()...)
	})
	return c, certs
}

// dialTLS opens a TLS connection to addr with cert's certificate and key,
// trusting trust's CA file, and returns the certificate addr presents, or
// the error of the handshake or of the first read (a TLS 1.3 server
// refuses a client certificate after the client's handshake is over).
func dialTLS(t *testing.T, addr string, cert, trust nodeCert) (*x509.Certificate, error) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert.cert, cert.key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(trust.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		ServerName: "127.0.0.1",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &pair, nil
		},
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// A stream byte and half a hello: a member answers nothing until the
	// hello is whole, so the read ends with the server's refusal, or the
	// deadline.
	c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	c.Write([]byte{'Q', 1})
	if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestClusterTLS: a three-node cluster with mutual TLS on the port elects,
// takes writes forwarded from a follower and cache sets, keeps working
// while a node's certificate is replaced under it (served without a
// restart), and fails over.
func TestClusterTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "cluster CA")
	c, certs := newTLSCluster(t, 3, ca)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE tt(node TEXT, k INT)`)
	f := c.Follower()
	mustExec(t, c.Members[f].DB, `INSERT INTO tt VALUES (?, 1)`, c.Members[f].ID) // forwarded

	ctx := context.Background()
	if err := c.Members[f].Node.Cache("tls").Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatalf("cache set on a follower: %v", err)
	}
	c.WaitFor("the cache entry on every node", 30*time.Second, func() bool {
		for _, i := range c.Alive() {
			if v, ok := c.Members[i].Node.Cache("tls").Get("k"); !ok || string(v) != "v" {
				return false
			}
		}
		return true
	})
	c.EnsureSame()

	// The port speaks TLS 1.3 with the node's own certificate.
	fm := c.Members[f]
	cert, err := dialTLS(t, fm.Listen, certs[fm.ID], certs[fm.ID])
	if err != nil {
		t.Fatalf("TLS dial of %s: %v", fm.ID, err)
	}
	first := cert.SerialNumber

	// Rotation: a new pair from the same CA, written while the node runs.
	second := issueNodeCert(t, ca, certs[fm.ID], time.Now().Add(time.Hour))
	start := time.Now()
	c.WaitFor(fm.ID+" to serve its new certificate", 30*time.Second, func() bool {
		cert, err := dialTLS(t, fm.Listen, certs[fm.ID], certs[fm.ID])
		return err == nil && cert.SerialNumber.Cmp(second) == 0
	})
	t.Logf("%s serves serial %x instead of %x after %v", fm.ID, second, first, time.Since(start).Round(time.Millisecond))
	mustExec(t, fm.DB, `INSERT INTO tt VALUES (?, 2)`, fm.ID)
	c.EnsureSame()

	// Fail-over: the new leader takes writes, directly and forwarded.
	old := c.Members[l].ID
	c.Kill(l)
	start = time.Now()
	nl := c.Leader()
	t.Logf("%s leads %v after %s was killed", c.Members[nl].ID, time.Since(start).Round(time.Millisecond), old)
	for _, i := range c.Alive() {
		mustExec(t, c.Members[i].DB, `INSERT INTO tt VALUES (?, 3)`, c.Members[i].ID)
	}
	c.EnsureSame()
}

// TestClusterTLSOutsiders: a node that gossips with the right secret but
// whose certificate is of another CA, or expired, or that runs no TLS at
// all, cannot join: it never enters the Raft configuration, the leader and
// the configuration stay as they were, writes go on, and its own writes
// fail. A member refuses its certificate and says why.
func TestClusterTLSOutsiders(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "cluster CA")
	c, certs := newTLSCluster(t, 3, ca)
	l := c.Leader()
	leader := c.Members[l].ID
	original := memberIDs(c)
	mustExec(t, c.Members[l].DB, `CREATE TABLE to_(node TEXT, k INT)`)
	stop := startWriters(t, c, "to_")
	member := c.Members[c.Follower()]

	other := newTestCA(t, "another CA")
	for _, tc := range []struct {
		name   string
		cert   *nodeCert // nil: no TLS
		refuse string    // what a member answers its certificate
	}{
		{"foreign-ca", &nodeCert{}, "unknown certificate authority"},
		{"expired", &nodeCert{}, "expired certificate"},
		{"no-tls", nil, ""},
	} {
		m := c.NewMember(tc.name)
		if tc.cert != nil {
			switch tc.name {
			case "foreign-ca":
				*tc.cert = writeNodeCert(t, other, other, time.Now().Add(time.Hour))
			case "expired":
				*tc.cert = writeNodeCert(t, ca, ca, time.Now().Add(-time.Hour))
			}
			m.Params = append(m.Params, tc.cert.params()...)
		}
		db, err := sql.Open("hiqlite", m.DSN(c))
		if err != nil {
			t.Fatal(err)
		}
		node, err := hiqlite.NodeOf(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		err = node.WaitReady(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: WaitReady = %v, want a deadline error", tc.name, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		_, err = db.ExecContext(ctx, `CREATE TABLE outsider(x)`)
		cancel()
		if err == nil {
			t.Errorf("%s wrote", tc.name)
		} else {
			t.Logf("%s: its write failed: %v", tc.name, err)
		}
		if ms, err := node.Members(); err != nil || len(ms) != 0 {
			t.Errorf("%s has a configuration: %v, %v", tc.name, ms, err)
		}

		// What a member says to its certificate (trusting the members'
		// CA, so that only the member's verdict counts).
		if tc.cert != nil {
			_, err := dialTLS(t, member.Listen, *tc.cert, certs[member.ID])
			if err == nil || !strings.Contains(err.Error(), tc.refuse) {
				t.Errorf("%s: a member answered its certificate with %v, want %q", tc.name, err, tc.refuse)
			} else {
				t.Logf("%s: a member refuses it: %v", tc.name, err)
			}
		} else {
			conn, err := net.DialTimeout("tcp", member.Listen, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write([]byte{'Q', 1})
			if n, err := io.Copy(io.Discard, conn); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("a clear-text hello got %d bytes back (%v), want nothing and a close", n, err)
			}
			conn.Close()
		}
		if err := db.Close(); err != nil {
			t.Errorf("close %s: %v", tc.name, err)
		}
		for _, i := range c.Alive() {
			if got := nodeMembers(t, c.Members[i].Node); !slices.Equal(got, original) {
				t.Errorf("after %s: %s has members %v, want %v", tc.name, c.Members[i].ID, got, original)
			}
		}
	}
	if id, _ := c.Members[l].Node.Leader(); id != leader {
		t.Errorf("the leader changed from %s to %s", leader, id)
	}
	stop()
	c.EnsureSame()
	if n := count(t, c.Members[c.Leader()].DB, `SELECT count(*) FROM sqlite_schema WHERE name = 'outsider'`); n != 0 {
		t.Error("an outsider's table reached the cluster")
	}
}

// BenchmarkClusterInsertTLS compares single-row inserts on a three-node
// loopback cluster without and with TLS on the port: 64 writers on the
// leader (Raft replication over TLS) and 16 on a follower (forwarded over
// TLS as well).
func BenchmarkClusterInsertTLS(b *testing.B) {
	for _, mode := range []string{"plain", "tls"} {
		b.Run(mode, func(b *testing.B) {
			var c *clustertest.Cluster
			if mode == "tls" {
				c, _ = newTLSCluster(b, 3, newTestCA(b, "bench CA"))
			} else {
				c = clustertest.New(b, 3)
			}
			l := c.Leader()
			mustExec(b, c.Members[l].DB, `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`)
			for _, m := range c.Members {
				m.DB.SetMaxIdleConns(64)
			}
			for _, bc := range []struct {
				on      string
				writers int
			}{{"leader", 64}, {"follower", 16}} {
				b.Run(bc.on+"/"+itoa(bc.writers)+"writers", func(b *testing.B) {
					db := c.Members[l].DB
					if bc.on == "follower" {
						db = c.Members[c.Follower()].DB
					}
					insertConcurrently(b, db, bc.writers)
				})
			}
		})
	}
}
