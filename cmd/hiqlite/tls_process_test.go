package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestTLSProcesses follows README.md's "A TLS cluster": the binary's cert
// command (the README's flags) makes the CA and the nodes' certificates,
// the README's shell line makes the token file, and three "hiqlite serve"
// processes run with its DSN parameters (mutual TLS on the node port) and
// HTTPS with a bearer token on their HTTP APIs. Only the ports differ: free
// loopback ports instead of the README's fixed ones.
//
// A non-voting client node in this process, with a certificate of the
// same CA, writes rows (serve has no SQL endpoint: a node forwards writes
// to the leader over the node port, so every write crosses mutual TLS).
// Once /readyz answers 200 (the readiness it checks), the test runs its
// "hiqlite status --http https://..." and checks that it lists the three
// members and a leader, and that status without --http-ca fails and says
// to pass it. A plain TCP client that sends a stream byte to a node port
// is closed with nothing sent back.
// Then the leader is killed with SIGKILL, a new leader takes writes, the
// killed process is restarted, and after a SIGTERM of every process each
// node's database file holds every acknowledged row, and the same rows.
func TestTLSProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs a cluster of processes")
	}
	bin := buildBinary(t)
	pc := &procCluster{began: time.Now(), stop: make(chan struct{})}
	tmp := t.TempDir() // the README's working directory ($PWD)
	// run runs a command in tmp.
	run := func(name string, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), procWait)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = tmp
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// hiqlite cert --dir tls --nodes n1,n2,n3 --hosts localhost,127.0.0.1
	if out, err := run(bin, "cert", "--dir", "tls", "--nodes", "n1,n2,n3", "--hosts", "localhost,127.0.0.1"); err != nil {
		t.Fatalf("hiqlite cert: %v\n%s", err, out)
	}
	// (umask 077; head -c 32 /dev/urandom | base64 > tls/http.token)
	if out, err := run("sh", "-c", "(umask 077; head -c 32 /dev/urandom | base64 > tls/http.token)"); err != nil {
		t.Fatalf("make the token file: %v\n%s", err, out)
	}
	T := filepath.Join(tmp, "tls")
	caFile, tokenFile := filepath.Join(T, "ca.crt"), filepath.Join(T, "http.token")
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(caFile); err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: %v", caFile, err)
	}
	httpsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool},
	}}

	// The three serve processes of the README.
	var seeds []string
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		p := &serveProc{name: name, dir: filepath.Join(tmp, name), listen: freeAddr(t), gossip: freeAddr(t), https: httpsClient, token: token}
		pc.procs = append(pc.procs, p)
		seeds = append(seeds, p.gossip)
	}
	J := strings.Join(seeds, ",")
	tlsParams := func(name string) string {
		return "&_tls_cert=" + filepath.Join(T, name+".crt") + "&_tls_key=" + filepath.Join(T, name+".key") + "&_tls_ca=" + caFile
	}
	for _, p := range pc.procs {
		p.args = []string{"serve",
			"--dsn", p.dir + "?_node=" + p.name + "&_listen=" + p.listen + "&_gossip=" + p.gossip + "&_join=" + J + "&_expect=3" + tlsParams(p.name),
			"--http", freeAddr(t), "--http-tls-cert", filepath.Join(T, p.name+".crt"), "--http-tls-key", filepath.Join(T, p.name+".key"), "--http-token-file", tokenFile}
		p.start(t, bin)
		if !strings.Contains(p.output(), ", https on ") {
			t.Fatalf("%s does not serve HTTPS:\n%s", p.name, p.output())
		}
	}
	t.Cleanup(func() {
		pc.stopWriters()
		if pc.db != nil {
			pc.db.Close()
		}
		for _, p := range pc.procs {
			p.kill(t)
		}
		if t.Failed() {
			for _, p := range pc.procs {
				t.Logf("output of %s:\n%s", p.name, p.output())
			}
		}
	})
	for _, p := range pc.procs {
		pc.waitReady(t, p)
	}
	pc.logf(t, "three TLS nodes ready")

	// hiqlite status --http https://127.0.0.1:8081 --http-ca $T/ca.crt --http-token-file $T/http.token
	out, err := run(bin, "status", "--http", "https://"+pc.procs[0].http, "--http-ca", caFile, "--http-token-file", tokenFile)
	if err != nil {
		t.Fatalf("status --http https://... --http-ca --http-token-file: %v\n%s", err, out)
	}
	checkStatusMembers(t, out, "n1", "n2", "n3")
	if !strings.Contains(out, "data dir:      "+pc.procs[0].dir) {
		t.Errorf("status with the token does not show the data dir:\n%s", out)
	}
	// Without --http-ca, serve's certificate is not trusted.
	out, err = run(bin, "status", "--http", "https://"+pc.procs[0].http)
	if err == nil || !strings.Contains(out, "certificate") || !strings.Contains(out, "--http-ca") {
		t.Errorf("status --http https://... without --http-ca: %v, want a certificate error naming --http-ca; output:\n%s", err, out)
	} else {
		pc.logf(t, "status without --http-ca: %s", strings.TrimSpace(out))
	}

	// A plain TCP client that sends a stream byte gets nothing back.
	plainStreamByte(t, pc.procs[1].listen)
	pc.logf(t, "status lists the members; a plain connection to a node port was closed with nothing sent back")

	// Writes through a non-voting node of the same CA.
	if out, err := run(bin, "cert", "--dir", "tls", "--nodes", "client", "--hosts", "localhost,127.0.0.1"); err != nil {
		t.Fatalf("hiqlite cert --nodes client: %v\n%s", err, out)
	}
	pc.db = openClient(t, filepath.Join(tmp, "client")+"?_node=client&_voter=false&_listen="+freeAddr(t)+"&_gossip="+freeAddr(t)+"&_join="+J+"&_expect=3"+tlsParams("client"))
	pc.startWriters(4)
	pc.waitAcks(t, 100)
	pc.logf(t, "%d acknowledged writes", pc.acked())

	// kill -9 the leader; a new one takes writes; restart the killed one.
	leader := pc.procs[pc.leader(t)]
	leader.kill(t)
	pc.logf(t, "killed %s (the leader) with SIGKILL after %d acknowledged writes", leader.name, pc.acked())
	newLeader := pc.procs[pc.leader(t)]
	pc.waitAcks(t, pc.acked()+100)
	pc.logf(t, "new leader %s; %d acknowledged writes", newLeader.name, pc.acked())
	leader.start(t, bin)
	clustertest.WaitFor(t, leader.name+" to be ready again", procWait, func() bool {
		if !leader.running() {
			t.Fatalf("%s exited after its restart: %v", leader.name, leader.err)
		}
		code, _, _ := leader.get(t, "/readyz?timeout=1s")
		return code == http.StatusOK
	})
	pc.logf(t, "%s restarted and ready", leader.name)
	pc.waitAcks(t, pc.acked()+50)
	out, err = run(bin, "status", "--http", "https://"+leader.http, "--http-ca", caFile, "--http-token-file", tokenFile)
	if err != nil {
		t.Fatalf("status of the restarted %s: %v\n%s", leader.name, err, out)
	}
	checkStatusMembers(t, out, "n1", "n2", "n3", "client")
	pc.finish(t)
}

// checkStatusMembers checks that status's output lists the members want,
// and that exactly one member is the leader, as the leader line says.
func checkStatusMembers(t *testing.T, out string, want ...string) {
	t.Helper()
	_, table, ok := strings.Cut(out, "members:\n")
	if !ok {
		t.Errorf("status lists no members:\n%s", out)
		return
	}
	leaders := map[string]bool{}
	members := map[string]string{} // id: VOTER
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line) // ID ADDRESS VOTER LEADER; also the header, a rule and "(N rows)"
		if len(f) != 4 || f[3] != "true" && f[3] != "false" {
			continue
		}
		members[f[0]] = f[2]
		if f[3] == "true" {
			leaders[f[0]] = true
		}
	}
	for _, m := range want {
		if voter, ok := members[m]; !ok || voter != strconv.FormatBool(m != "client") {
			t.Errorf("status does not list member %s (voter: %v):\n%s", m, m != "client", out)
		}
	}
	if len(members) != len(want) || len(leaders) != 1 {
		t.Errorf("status lists %d members (want %d) and %d leaders (want 1):\n%s", len(members), len(want), len(leaders), out)
	}
	for l := range leaders {
		if !strings.Contains(out, "leader:        "+l) {
			t.Errorf("the leader line does not name %s:\n%s", l, out)
		}
	}
}

// plainStreamByte connects to a TLS node port without TLS, sends the Raft
// stream byte and checks that the node closes the connection without
// sending anything (at its handshake deadline).
func plainStreamByte(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{'R'}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, c)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("a plain connection that sent a stream byte to %s was not closed", addr)
	case n != 0:
		t.Errorf("a plain connection that sent a stream byte to %s got %d bytes back", addr, n)
	}
}
