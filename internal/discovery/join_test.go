package discovery

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// TestDiscoveryWrongSecret: a node with another secret, or none, never gets
// in, and the cluster does not notice it. Nothing logs the secret or key.
func TestDiscoveryWrongSecret(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
	}{
		{"other secret", []byte("another-secret-for-the-outsider")},
		{"no secret", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &discoveryLogBuffer{}
			logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})
			n1 := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, logger: logger})
			n2 := startDiscoveryNode(t, "node-2", discoveryOpts{secret: discoverySecret, logger: logger, join: []string{n1.Addr()}})
			waitDiscovery(t, "node-1 and node-2 to meet", discoveryWait, func() bool {
				return discoverySees(n1.Discovery, StatusAlive, n1, n2) && discoverySees(n2.Discovery, StatusAlive, n1, n2)
			})

			out := startDiscoveryNode(t, "node-3", discoveryOpts{secret: tc.secret, logger: logger, join: []string{n1.Addr(), n2.Addr()}})
			waitDiscovery(t, "node-3 to try joining five times", discoveryWait, func() bool { return out.joinAttempts.Load() >= 5 })
			if got := discoveryIDs(out.Peers()); strings.Join(got, " ") != "node-3=alive" {
				t.Errorf("outsider sees %v, want only itself", got)
			}
			for _, n := range []*discoveryNode{n1, n2} {
				if got := discoveryIDs(n.Peers()); strings.Join(got, " ") != "node-1=alive node-2=alive" {
					t.Errorf("%s sees %v, want node-1 and node-2 alive", n.id, got)
				}
			}
			n1.Close()
			n2.Close()
			out.Close()

			key, err := gossipKey(discoverySecret)
			if err != nil {
				t.Fatal(err)
			}
			text := logs.String()
			for _, s := range [][]byte{discoverySecret, tc.secret, key} {
				if len(s) == 0 {
					continue
				}
				for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s)} {
					if strings.Contains(text, form) {
						t.Errorf("logs contain a secret or key: %q", form)
					}
				}
			}
		})
	}
}

// TestDiscoveryLateSeed: the joiner starts first and keeps trying; the seed,
// which lists itself, starts later.
func TestDiscoveryLateSeed(t *testing.T) {
	t.Parallel()
	seedAddr := freeDiscoveryAddr(t)
	joiner := startDiscoveryNode(t, "node-2", discoveryOpts{secret: discoverySecret, join: []string{seedAddr}})
	waitDiscovery(t, "failed join attempts", discoveryWait, func() bool { return joiner.joinAttempts.Load() >= 3 })

	seed := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, join: []string{seedAddr}, bind: seedAddr})
	if seed.Addr() != seedAddr {
		t.Fatalf("seed address %s, want %s", seed.Addr(), seedAddr)
	}
	if len(seed.seeds) != 0 {
		t.Errorf("the seed would join itself: seeds %v", seed.seeds)
	}
	for _, n := range []*discoveryNode{seed, joiner} {
		waitDiscovery(t, n.id+" to see both", discoveryWait, func() bool { return discoverySees(n.Discovery, StatusAlive, seed, joiner) })
	}
}

// TestDiscoveryRejoinWhenAlone: a node whose only peer crashed and came back
// at its address finds it again through the seeds.
func TestDiscoveryRejoinWhenAlone(t *testing.T) {
	t.Parallel()
	seedAddr := freeDiscoveryAddr(t)
	seed := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, bind: seedAddr})
	n2 := startDiscoveryNode(t, "node-2", discoveryOpts{secret: discoverySecret, join: []string{seedAddr}})
	waitDiscovery(t, "node-2 to see the seed", discoveryWait, func() bool { return discoverySees(n2.Discovery, StatusAlive, seed, n2) })
	seed.Close()
	waitDiscovery(t, "node-2 to see the seed dead", discoveryWait, func() bool {
		p, _ := discoveryPeer(n2.Discovery, "node-1")
		return p.Status == StatusDead
	})
	attempts := n2.joinAttempts.Load()
	// The new seed process knows nothing of node-2: only node-2's retry can
	// bring them together.
	seed2 := startDiscoveryNode(t, "node-1", discoveryOpts{secret: discoverySecret, bind: seedAddr})
	waitDiscovery(t, "node-2 and the restarted seed to meet", discoveryWait, func() bool {
		return discoverySees(n2.Discovery, StatusAlive, seed2, n2) && discoverySees(seed2.Discovery, StatusAlive, seed2, n2)
	})
	if n2.joinAttempts.Load() == attempts {
		t.Error("they met without a join attempt")
	}
}

func TestDiscoveryOtherSeeds(t *testing.T) {
	t.Parallel()
	got := otherSeeds([]string{"127.0.0.1:7946", "10.0.0.2:7946", "[::1]:7946", "localhost:7946", "127.0.0.1:7947"}, "127.0.0.1:7946", "0:0:0:0:0:0:0:1:7946")
	if strings.Join(got, " ") != "10.0.0.2:7946 [::1]:7946 localhost:7946 127.0.0.1:7947" {
		t.Errorf("otherSeeds = %v", got)
	}
}

// TestDiscoveryIDTaken: a node that joins under the id of a live node is
// told so (IDTaken), while the live node, announced in a cluster, is not,
// and the others keep seeing the live node at its own address.
func TestDiscoveryIDTaken(t *testing.T) {
	t.Parallel()
	n1 := startDiscoveryNode(t, "n1", discoveryOpts{secret: discoverySecret})
	n2 := startDiscoveryNode(t, "n2", discoveryOpts{secret: discoverySecret, join: []string{n1.Addr()}})
	for _, n := range []*discoveryNode{n1, n2} {
		n.mu.Lock()
		p := n.self
		n.mu.Unlock()
		p.InCluster = true
		if err := n.Update(p); err != nil {
			t.Fatal(err)
		}
	}
	waitDiscovery(t, "n1 to see n2 in a cluster", discoveryWait, func() bool { return discoverySees(n1.Discovery, StatusAlive, n2) })

	imp := startDiscoveryNode(t, "n2", discoveryOpts{secret: discoverySecret, join: []string{n1.Addr()}})
	waitDiscovery(t, "the impostor to learn its id is taken", discoveryWait, func() bool { return imp.IDTaken() != nil })
	if err := imp.IDTaken(); !errors.Is(err, nodeerr.ErrNodeIDInUse) || !strings.Contains(err.Error(), n2.Addr()) {
		t.Fatalf("IDTaken() = %v; want ErrNodeIDInUse naming the live member's gossip address %s", err, n2.Addr())
	}
	if err := n2.IDTaken(); err != nil {
		t.Fatalf("the live member, in a cluster, got IDTaken() = %v", err)
	}
	if !discoverySees(n1.Discovery, StatusAlive, n2) {
		t.Fatalf("n1 sees n2 as %v, want it alive at %s", discoveryIDs(n1.Peers()), n2.Addr())
	}
}
