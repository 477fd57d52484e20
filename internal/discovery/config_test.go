package discovery

import (
	"bytes"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

func TestDiscoveryStartErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no id", Config{Bind: "127.0.0.1:0", Self: Peer{RaftAddr: "127.0.0.1:1"}}},
		{"id with a space", Config{Bind: "127.0.0.1:0", Self: Peer{ID: "a b", RaftAddr: "127.0.0.1:1"}}},
		{"no raft address", Config{Bind: "127.0.0.1:0", Self: Peer{ID: "a"}}},
		{"raft port 0", Config{Bind: "127.0.0.1:0", Self: Peer{ID: "a", RaftAddr: "127.0.0.1:0"}}},
		{"bind without port", Config{Bind: "127.0.0.1", Self: Peer{ID: "a", RaftAddr: "127.0.0.1:1"}}},
		{"bind port too big", Config{Bind: "127.0.0.1:70000", Self: Peer{ID: "a", RaftAddr: "127.0.0.1:1"}}},
	} {
		if d, err := Start(tc.cfg); err == nil {
			d.Close()
			t.Errorf("%s: started", tc.name)
		}
	}
}

func TestDiscoveryGossipKey(t *testing.T) {
	t.Parallel()
	k1, err := gossipKey([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	k1again, _ := gossipKey([]byte("0123456789abcdef"))
	k2, _ := gossipKey([]byte("0123456789abcdeF"))
	if len(k1) != 32 || memberlist.ValidateKey(k1) != nil {
		t.Fatalf("key of %d bytes, want 32 (AES-256)", len(k1))
	}
	if !bytes.Equal(k1, k1again) || bytes.Equal(k1, k2) || bytes.Contains(k1, []byte("0123456789abcdef")) {
		t.Error("the key is not a deterministic function of the secret alone")
	}
}

func TestDiscoveryMemberlistLog(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := memberlistLog{hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &out, DisableTime: true})}
	for _, line := range []string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n",
		"[INFO] memberlist: Marking x as failed\n",
		"[WARN] memberlist: Refuting a suspect message\n",
		"[ERR] memberlist: Push/Pull with x failed\n",
		"no level\n",
	} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	want := "[TRACE] Stream connection from=127.0.0.1:1\n" +
		"[DEBUG] Marking x as failed\n" +
		"[WARN]  Refuting a suspect message\n" +
		"[WARN]  Push/Pull with x failed\n" +
		"[DEBUG] no level\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestDiscoveryResolveBind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bind string
		host string
		port int
	}{
		{"127.0.0.1:7946", "127.0.0.1", 7946},
		{":0", "0.0.0.0", 0},
		{"[::1]:1", "::1", 1},
		{"localhost:2", "127.0.0.1", 2},
	} {
		host, port, err := resolveBind(tc.bind)
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("resolveBind(%q) = %q, %d, %v; want %q, %d", tc.bind, host, port, err, tc.host, tc.port)
		}
	}
}
