package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCert runs "hiqlite cert args..." and returns its exit status, stdout
// and stderr.
func runCert(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(testContext(t), append([]string{"cert"}, args...), nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

// readCert parses the PEM certificate in path.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkNodeCert checks that dir's certificate of node verifies against
// pool for server and client auth and for each host, matches its key, and
// that the key is 0600.
func checkNodeCert(t *testing.T, dir, node string, pool *x509.CertPool, hosts ...string) *x509.Certificate {
	t.Helper()
	crt, key := filepath.Join(dir, node+".crt"), filepath.Join(dir, node+".key")
	c := readCert(t, crt)
	if c.Subject.CommonName != node {
		t.Errorf("%s: common name %q, want %q", crt, c.Subject.CommonName, node)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		for _, h := range hosts {
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: h, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s for %s, usage %v: %v", crt, h, usage, err)
			}
		}
	}
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		t.Errorf("%s and %s: %v", crt, key, err)
	}
	checkMode(t, key, 0o600)
	return c
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

// TestCert: hiqlite cert makes a CA and node certificates that verify for
// both sides of mutual TLS and carry the hosts, with keys 0600; a second
// run issues more with the same CA, refuses to replace node files without
// --force, and --new-ca makes a new CA.
func TestCert(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	path := func(name string) string { return filepath.Join(dir, name) }
	code, out, errOut := runCert(t, "--dir", dir, "--nodes", "n1,n2", "--hosts", "localhost,127.0.0.1,db.example.test")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"ca.crt", "ca.key", "n1.crt", "n1.key", "n2.crt", "n2.key"} {
		if !strings.Contains(out, "wrote "+path(f)+" ") {
			t.Errorf("the output does not say it wrote %s:\n%s", path(f), out)
		}
	}
	if want := "n1: _tls_cert=" + path("n1.crt") + "&_tls_key=" + path("n1.key") + "&_tls_ca=" + path("ca.crt") + "\n"; !strings.Contains(out, want) {
		t.Errorf("the output lacks the DSN parameters %q:\n%s", want, out)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, path("ca.key"), 0o600)
	ca := readCert(t, path("ca.crt"))
	if !ca.IsCA {
		t.Fatal("ca.crt is not a CA")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, n := range []string{"n1", "n2"} {
		c := checkNodeCert(t, dir, n, pool, "localhost", "127.0.0.1", "db.example.test")
		if c.IsCA || len(c.IPAddresses) != 1 || len(c.DNSNames) != 2 {
			t.Errorf("%s: IsCA %v, IPs %v, names %v", n, c.IsCA, c.IPAddresses, c.DNSNames)
		}
	}

	// More nodes from the same CA.
	caBefore, err := os.ReadFile(path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCert(t, "--dir", dir, "--nodes", "n3", "--hosts", "127.0.0.2")
	if code != exitOK || !strings.Contains(out, "using the CA in "+path("ca.crt")) {
		t.Fatalf("second run: exit %d: %s%s", code, out, errOut)
	}
	if caAfter, _ := os.ReadFile(path("ca.crt")); !bytes.Equal(caAfter, caBefore) {
		t.Error("the second run changed ca.crt")
	}
	n3 := checkNodeCert(t, dir, "n3", pool, "127.0.0.2")
	if _, err := n3.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err == nil {
		t.Error("n3 verifies for localhost, which it was not made for")
	}

	// Existing node files: refused without --force, replaced with it.
	n1Before, _ := os.ReadFile(path("n1.crt"))
	code, _, errOut = runCert(t, "--dir", dir, "--nodes", "n1")
	if code != exitUsage || !strings.Contains(errOut, path("n1.crt")+" exists: pass --force") {
		t.Errorf("n1 again without --force: exit %d, stderr %q", code, errOut)
	}
	if after, _ := os.ReadFile(path("n1.crt")); !bytes.Equal(after, n1Before) {
		t.Error("a refused run changed n1.crt")
	}
	if code, _, errOut = runCert(t, "--dir", dir, "--nodes", "n1", "--force"); code != exitOK {
		t.Fatalf("n1 with --force: exit %d: %s", code, errOut)
	}
	if after := checkNodeCert(t, dir, "n1", pool, "localhost"); after.Equal(readCertBytes(t, n1Before)) {
		t.Error("--force left n1.crt as it was")
	}

	// --new-ca: a new CA, which the old node certificates do not verify
	// against.
	if code, _, errOut = runCert(t, "--dir", dir, "--nodes", "n1", "--force", "--new-ca"); code != exitOK {
		t.Fatalf("--new-ca: exit %d: %s", code, errOut)
	}
	newPool := x509.NewCertPool()
	newPool.AddCert(readCert(t, path("ca.crt")))
	checkNodeCert(t, dir, "n1", newPool, "localhost")
	if _, err := readCert(t, path("n2.crt")).Verify(x509.VerifyOptions{Roots: newPool}); err == nil {
		t.Error("n2, signed by the old CA, verifies against the new one")
	}
}

func readCertBytes(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertUsage: bad flags are errors that name the value at fault, and
// write nothing.
func TestCertUsage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	halfCA := t.TempDir()
	if err := os.WriteFile(filepath.Join(halfCA, "ca.crt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no dir", nil, exitUsage, "--dir is required"},
		{"bad host", []string{"--dir", dir, "--hosts", "localhost,bad_host!"}, exitUsage, `invalid --hosts value "bad_host!": not an IP address or a DNS name`},
		{"label with hyphen", []string{"--dir", dir, "--hosts", "-a.example"}, exitUsage, `invalid --hosts value "-a.example"`},
		{"empty host", []string{"--dir", dir, "--hosts", "localhost,,127.0.0.1"}, exitUsage, `invalid --hosts "localhost,,127.0.0.1": an empty name`},
		{"bad node", []string{"--dir", dir, "--nodes", "n1,../x"}, exitUsage, `invalid --nodes value "../x"`},
		{"node named ca", []string{"--dir", dir, "--nodes", "ca"}, exitUsage, `invalid --nodes value "ca"`},
		{"node twice", []string{"--dir", dir, "--nodes", "n1,n1"}, exitUsage, `"n1" appears twice`},
		{"days", []string{"--dir", dir, "--days", "0"}, exitUsage, "--days 0: want at least 1"},
		{"days past a new CA", []string{"--dir", dir, "--days", "99999"}, exitUsage, "--days 99999 outlasts the CA in " + filepath.Join(dir, "ca.crt")},
		{"half a CA", []string{"--dir", halfCA}, exitFail, filepath.Join(halfCA, "ca.crt") + " exists but " + filepath.Join(halfCA, "ca.key") + " does not"},
		{"help", []string{"-h"}, exitOK, "Usage: hiqlite cert --dir DIR"},
	} {
		code, _, errOut := runCert(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.err) {
			t.Errorf("%s: exit %d, stderr %q; want %d with %q", tt.name, code, errOut, tt.code, tt.err)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("a refused cert command made %s", dir)
	}
	// Node certificates may not outlive an existing CA.
	ok := t.TempDir()
	if code, _, errOut := runCert(t, "--dir", ok, "--nodes", "n1"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCert(t, "--dir", ok, "--nodes", "n2", "--days", "99999"); code != exitUsage || !strings.Contains(errOut, "--days 99999 outlasts the CA in "+filepath.Join(ok, "ca.crt")) {
		t.Errorf("--days past the CA: exit %d, stderr %q", code, errOut)
	}
}
