package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestServeStopsWithIdleConnections: SIGTERM stops serve, with exit status
// 0, while clients hold connections to its HTTP port that sent nothing,
// half a request header, or a request that waits (/readyz of a node that
// is not ready). No assertion depends on time: the wait for the exit only
// stops a stuck test.
func TestServeStopsWithIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs it")
	}
	bin := buildBinary(t)
	// A node that expects two more voters which never come: never ready.
	gossip := freeAddr(t)
	p := &serveProc{name: "n1", dir: filepath.Join(t.TempDir(), "n1")}
	p.args = []string{"serve", "--http", "127.0.0.1:0", "--dsn", fmt.Sprintf("%s?_node=n1&_listen=%s&_gossip=%s&_join=%s&_expect=3&_secret=%s",
		p.dir, freeAddr(t), gossip, gossip, procSecret)}
	p.start(t, bin)
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.output())
		}
	})

	idle, err := net.Dial("tcp", p.http)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	half, err := net.Dial("tcp", p.http)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := io.WriteString(half, "GET /readyz HTTP/1.1\r\nHost: "+p.http+"\r\n"); err != nil {
		t.Fatal(err)
	}
	// A request that waits: it is answered, or its connection closed, when
	// serve stops.
	waiting := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + p.http + "/readyz?timeout=1m")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		waiting <- err
	}()

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(procWait); err != nil {
		t.Fatalf("serve after SIGTERM: %v, want exit status 0", err)
	}
	<-waiting // ended with the process, whatever it got
	if out := p.output(); !strings.Contains(out, "stopping node n1") {
		t.Errorf("serve's output does not say it stopped:\n%s", out)
	}
}
