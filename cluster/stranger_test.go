package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/internal/waitfor"
	"github.com/hiqlite/hiqlite/replication"
)

// The helpers of this file are prefixed stranger: clients that connect to
// a node's port and never finish the handshake ("Unauthenticated
// connections cannot starve members").

// strangerKind is what a stranger sends once connected.
type strangerKind int

const (
	strangerHalfOpen strangerKind = iota // a valid stream byte and version, then silence
	strangerSilent                       // nothing at all
	strangerGarbage                      // bytes that are no hello
)

// strangerHold bounds how long a stranger waits for the node to close its
// connection; a connection still open then lingered, and the test fails.
const strangerHold = 30 * time.Second

// strangerMaxDials bounds the connections one stranger opens in a test.
const strangerMaxDials = 200

// strangerFlood is a set of strangers hammering one node's port: each keeps
// one connection open, dialing again (after about pace) whenever the node
// closes it, as an attacker would, until stop. The first dials and the
// pauses are spread at random, so that the strangers' connections do not
// all expire together.
type strangerFlood struct {
	stopCh   chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	open     atomic.Int64 // connections held now
	dials    atomic.Int64 // connections opened
	lingered atomic.Int64 // connections the node had not closed after strangerHold
}

// strangerSpec is one group of strangers of a flood.
type strangerSpec struct {
	kind strangerKind
	n    int
	src  string // source IP, on 127.0.0.0/8
}

// startStrangerFlood starts the strangers of specs against addr. The test's
// cleanup stops them and waits for their goroutines.
func startStrangerFlood(t *testing.T, addr string, pace time.Duration, specs ...strangerSpec) *strangerFlood {
	t.Helper()
	f := &strangerFlood{stopCh: make(chan struct{})}
	for _, s := range specs {
		src := &net.TCPAddr{IP: net.ParseIP(s.src)}
		for i := range s.n {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.run(addr, src, s.kind, i, pace)
			}()
		}
	}
	t.Cleanup(func() {
		f.stop()
		// The node closes what is left (deadline or Close): bounded.
		f.wg.Wait()
	})
	return f
}

// stop ends the dialing; connections already open stay open until the
// node closes them.
func (f *strangerFlood) stop() { f.stopOnce.Do(func() { close(f.stopCh) }) }

func (f *strangerFlood) stopped() bool {
	select {
	case <-f.stopCh:
		return true
	default:
		return false
	}
}

// pause waits about pace (pacing, not synchronisation); false once stopped.
func (f *strangerFlood) pause(pace time.Duration) bool {
	t := time.NewTimer(pace/2 + rand.N(pace))
	defer t.Stop()
	select {
	case <-f.stopCh:
		return false
	case <-t.C:
		return true
	}
}

// run is one stranger: connect, send what its kind sends, wait for the
// node to close the connection, pause, again.
func (f *strangerFlood) run(addr string, src *net.TCPAddr, kind strangerKind, i int, pace time.Duration) {
	if !f.pause(pace) {
		return
	}
	streams := []nodeport.StreamType{nodeport.StreamRaft, nodeport.StreamRPC, nodeport.StreamCache}
	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01}, // a TLS ClientHello's start
		{byte(nodeport.StreamRaft), nodeport.ProtoVersion + 1, 0xff},
	}
	for range strangerMaxDials {
		if f.stopped() {
			return
		}
		d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			f.dials.Add(1)
			f.open.Add(1)
			switch kind {
			case strangerHalfOpen:
				c.Write([]byte{byte(streams[i%len(streams)]), nodeport.ProtoVersion})
			case strangerGarbage:
				c.Write(garbage[i%len(garbage)])
			}
			c.SetReadDeadline(time.Now().Add(strangerHold))
			_, err = io.Copy(io.Discard, c) // until the node closes it
			if errors.Is(err, os.ErrDeadlineExceeded) {
				f.lingered.Add(1)
			}
			c.Close()
			f.open.Add(-1)
		}
		if !f.pause(pace) {
			return
		}
	}
}

// TestClusterFailoverUnderStrangerFlood kills the leader of a 3-node cluster
// while hundreds of strangers hold half-open connections to every node's
// port (and reconnect when dropped): a new leader takes writes within the
// bound a quiet cluster is held to, derived from the election timeout.
// Afterwards every stranger's connection has been closed by its node, and
// the members still work.
func TestClusterFailoverUnderStrangerFlood(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flood bool
	}{
		{"quiet", false},
		{"flood", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := startTestCluster(t, 3)
			ctx := context.Background()
			mustNodeExec(t, follower(t, nodes), replication.Origin{}, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`)
			var leader *Node
			for _, nd := range nodes {
				if nd.IsLeader() {
					leader = nd
				}
			}
			if leader == nil {
				t.Fatal("no leader")
			}
			election := leader.raft.ReloadableConfig().ElectionTimeout
			// Fail-over should take about two election timeouts; the slack is for
			// a loaded machine under -race, the same with or without strangers.
			bound := 10 * election

			var floods []*strangerFlood
			if tc.flood {
				for _, nd := range nodes {
					// 340 strangers per node (more than the 256 places of
					// a mux, 70 from most sources against 64 each), each back about two
					// election timeouts after the node drops it: a flood
					// that keeps every place of the node taken, without
					// eating the CPU the members need.
					f := startStrangerFlood(t, nd.mux.Addr().String(), 2*election,
						// Half-open, from many sources and from the
						// members' own.
						strangerSpec{strangerHalfOpen, 70, "127.0.0.2"},
						strangerSpec{strangerHalfOpen, 70, "127.0.0.3"},
						strangerSpec{strangerHalfOpen, 70, "127.0.0.4"},
						strangerSpec{strangerHalfOpen, 70, "127.0.0.5"},
						strangerSpec{strangerHalfOpen, 10, "127.0.0.1"},
						strangerSpec{strangerSilent, 10, "127.0.0.1"},
						strangerSpec{strangerSilent, 20, "127.0.0.6"},
						strangerSpec{strangerGarbage, 20, "127.0.0.7"},
					)
					floods = append(floods, f)
				}
				for _, f := range floods {
					waitfor.Cond(t, "the strangers to connect", 30*time.Second, func() bool { return f.dials.Load() >= 340 })
				}
			}

			var survivors []*Node
			for _, nd := range nodes {
				if nd != leader {
					survivors = append(survivors, nd)
				}
			}
			killed := time.Now()
			if err := leader.Close(); err != nil {
				t.Fatalf("close the leader: %v", err)
			}
			wrote := func(nd *Node) bool {
				wctx, cancel := context.WithTimeout(ctx, election)
				defer cancel()
				_, err := nd.Exec(wctx, time.Second, replication.Origin{}, 0, stmt(`INSERT INTO t(v) VALUES (?)`, nd.ID()))
				return err == nil
			}
			if !waitfor.Until(bound, func() bool { return wrote(survivors[0]) }) {
				t.Fatalf("no new leader took a write within %v (%d election timeouts of %v) of the leader's death", bound, bound/election, election)
			}
			t.Logf("a new leader took a write %v after the leader died (election timeout %v)", time.Since(killed).Round(time.Millisecond), election)
			// Both survivors write: through the new leader, and forwarded to it.
			for _, nd := range survivors {
				waitfor.Cond(t, fmt.Sprintf("a write through %s", nd.ID()), bound, func() bool { return wrote(nd) })
			}

			for _, f := range floods {
				f.stop()
			}
			for i, f := range floods {
				// Every stranger still connected is closed by the node: the
				// killed one's Close, the survivors' handshake deadline.
				waitfor.Cond(t, fmt.Sprintf("node %d to close every stranger", i), strangerHold/2, func() bool { return f.open.Load() == 0 })
				if n := f.lingered.Load(); n > 0 {
					t.Errorf("node %d: %d strangers' connections stayed open for %v", i, n, strangerHold)
				}
				t.Logf("node %d: %d stranger connections in all", i, f.dials.Load())
			}
			for _, nd := range survivors {
				waitfor.Cond(t, "no handshake in flight", 10*time.Second, func() bool { return nd.mux.PendingHandshakes() == 0 })
				waitfor.Cond(t, fmt.Sprintf("a write through %s after the flood", nd.ID()), bound, func() bool { return wrote(nd) })
			}
		})
	}
}
