package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite/internal/devcert"
)

// caValidity is how long a CA made by cert is valid.
const caValidity = 10 * 365 * 24 * time.Hour

// The CA's files in cert's directory.
const (
	caCertName = "ca.crt"
	caKeyName  = "ca.key"
)

func cmdCert(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("cert", "--dir DIR [--nodes N1,N2,...] [--hosts H1,H2,...] [--days N] [--force] [--new-ca]", stderr)
	dir := fs.String("dir", "", "the directory to write into, made 0700 if missing (required). It holds ca.crt and ca.key,\n"+
		"and NODE.crt and NODE.key for each node; a CA already there issues the new certificates")
	nodes := fs.String("nodes", "n1,n2,n3", "comma-separated node names: one certificate and key per node, named after it")
	hosts := fs.String("hosts", "localhost,127.0.0.1", "comma-separated DNS names and IP addresses the node certificates are valid for:\n"+
		"every address peers dial a node at (_advertise, else _listen) and clients reach serve's --http at")
	days := fs.Int("days", 365, "how many days the node certificates are valid")
	force := fs.Bool("force", false, "replace node certificates that exist (a renewal: nodes re-read their files)")
	newCA := fs.Bool("new-ca", false, "make a new CA even if DIR has one, replacing ca.crt and ca.key: certificates the old CA\n"+
		"signed stop verifying against the new ca.crt")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return &usageError{errors.New("--dir is required, for example: hiqlite cert --dir ./tls")}
	}
	names, err := parseNodeNames(*nodes)
	if err != nil {
		return &usageError{err}
	}
	sans, err := parseHosts(*hosts)
	if err != nil {
		return &usageError{err}
	}
	if *days < 1 {
		return &usageError{fmt.Errorf("--days %d: want at least 1", *days)}
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	return makeCerts(stdout, certRequest{dir: abs, nodes: names, hosts: sans, validity: time.Duration(*days) * 24 * time.Hour, force: *force, newCA: *newCA})
}

// certRequest is what cert is asked to make.
type certRequest struct {
	dir          string // absolute
	nodes, hosts []string
	validity     time.Duration // of the node certificates
	force, newCA bool
}

// makeCerts writes the CA (unless one is in r.dir and r.newCA is false)
// and the node certificates of r, and says what it wrote. It checks
// everything it can before writing anything.
func makeCerts(w io.Writer, r certRequest) error {
	caCert, caKey := filepath.Join(r.dir, caCertName), filepath.Join(r.dir, caKeyName)
	haveCert, haveKey := exists(caCert), exists(caKey)
	reuse := !r.newCA && (haveCert || haveKey)
	if reuse && haveCert != haveKey {
		have, missing := caCert, caKey
		if haveKey {
			have, missing = caKey, caCert
		}
		return fmt.Errorf("%s exists but %s does not: cannot issue with that CA; restore it, or pass --new-ca to replace the CA", have, missing)
	}
	if !r.force {
		for _, n := range r.nodes {
			for _, p := range nodeFiles(r.dir, n) {
				if exists(p) {
					return &usageError{fmt.Errorf("%s exists: pass --force to replace node %s's certificate and key", p, n)}
				}
			}
		}
	}
	now := time.Now()
	notAfter := now.Add(r.validity)
	var ca *devcert.CA
	var err error
	if reuse {
		ca, err = devcert.LoadCA(caCert, caKey)
	} else {
		ca, err = devcert.NewCA("hiqlite development CA", caValidity)
	}
	if err != nil {
		return err
	}
	if notAfter.After(ca.Cert.NotAfter) {
		return &usageError{fmt.Errorf("--days %d outlasts the CA in %s, which expires %s", int(r.validity/(24*time.Hour)), caCert, ca.Cert.NotAfter.Format(time.DateOnly))}
	}
	if reuse {
		fmt.Fprintf(w, "using the CA in %s and %s, valid until %s\n", caCert, caKey, ca.Cert.NotAfter.Format(time.DateOnly))
	} else {
		if err := os.MkdirAll(r.dir, 0o700); err != nil {
			return err
		}
		if err := ca.WriteCAKey(caKey); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s  the CA's private key (0600): keep it private; only hiqlite cert needs it, to issue more\n", caKey)
		if err := ca.WriteCA(caCert); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s  the CA certificate, valid until %s: _tls_ca of every node, --http-ca of clients\n", caCert, ca.Cert.NotAfter.Format(time.DateOnly))
	}
	for _, n := range r.nodes {
		leaf, err := ca.Issue(n, r.hosts, now.Add(-time.Minute), notAfter)
		if err != nil {
			return err
		}
		crt, key := nodeFiles(r.dir, n)[0], nodeFiles(r.dir, n)[1]
		if err := leaf.Write(crt, key); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s  node %s, for %s, server and client auth, valid until %s\n", crt, n, strings.Join(r.hosts, ", "), notAfter.Format(time.DateOnly))
		fmt.Fprintf(w, "wrote %s  node %s's private key (0600)\n", key, n)
	}
	fmt.Fprintln(w, "\nDSN parameters for mutual TLS on the node port:")
	for _, n := range r.nodes {
		crt, key := nodeFiles(r.dir, n)[0], nodeFiles(r.dir, n)[1]
		fmt.Fprintf(w, "  %s: _tls_cert=%s&_tls_key=%s&_tls_ca=%s\n", n, crt, key, caCert)
	}
	return nil
}

// nodeFiles returns the certificate and key files of node name in dir.
func nodeFiles(dir, name string) [2]string {
	return [2]string{filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// parseNodeNames splits the --nodes list. A name becomes a file name, so
// it is letters, digits, '.', '_' and '-', starting with a letter or
// digit, and not "ca".
func parseNodeNames(list string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return nil, fmt.Errorf("invalid --nodes %q: an empty name", list)
		case !validNodeName(n):
			return nil, fmt.Errorf("invalid --nodes value %q: a node name is letters, digits, '.', '_' and '-', starting with a letter or digit (it names the files NAME.crt and NAME.key)", n)
		case n == "ca":
			return nil, fmt.Errorf("invalid --nodes value %q: the CA's files are named ca.crt and ca.key", n)
		case seen[n]:
			return nil, fmt.Errorf("invalid --nodes: %q appears twice", n)
		}
		seen[n] = true
		names = append(names, n)
	}
	return names, nil
}

func validNodeName(n string) bool {
	if len(n) > 64 || !isAlnum(n[0]) {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// parseHosts splits the --hosts list: each an IP address or a DNS name
// (a leading "*." for a wildcard), duplicates dropped.
func parseHosts(list string) ([]string, error) {
	var hosts []string
	seen := map[string]bool{}
	for _, h := range strings.Split(list, ",") {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			return nil, fmt.Errorf("invalid --hosts %q: an empty name", list)
		case net.ParseIP(h) == nil && !validDNSName(h):
			return nil, fmt.Errorf("invalid --hosts value %q: not an IP address or a DNS name (dot-separated labels of letters, digits and '-')", h)
		}
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts, nil
}

// validDNSName reports whether h is a host name as RFC 1123 has it: labels
// of 1 to 63 letters, digits and hyphens, neither first nor last a hyphen,
// at most 253 characters; the first label may be "*".
func validDNSName(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}
