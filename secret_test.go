package hiqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// wrongSecret is a valid secret that is not clustertest.Secret.
const wrongSecret = "not-the-cluster-secret-0123456789"

// TestClusterWrongSecret: a node that has the cluster's gossip seeds but
// another secret cannot join. It never enters the Raft configuration, never
// learns a leader and cannot write; its secret opens no Raft or RPC
// connection to a member. The cluster takes writes on every node all the
// while and stays identical. A node with the right secret, started the same
// way afterwards, does join: the checks that found no intruder would have
// seen it.
func TestClusterWrongSecret(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	original := memberIDs(c)
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE ws(node TEXT, k INT)`)
	stop := startWriters(t, c, "ws")

	in := c.NewMember("intruder")
	in.Secret = wrongSecret
	db, err := sql.Open("hiqlite", in.DSN(c))
	if err != nil {
		t.Fatal(err)
	}
	closeIntruder := sync.OnceFunc(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close the intruder: %v", err)
		}
	})
	t.Cleanup(closeIntruder)
	node, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}

	// Give the intruder a few seconds of gossip join attempts: at once,
	// then with a backoff from 100 ms (five more within 4 s).
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	err = node.WaitReady(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("intruder WaitReady = %v, want a deadline error", err)
	}
	if id, addr := node.Leader(); id != "" || addr != "" {
		t.Errorf("the intruder learned leader %q at %q", id, addr)
	}
	if ms, err := node.Members(); err != nil || len(ms) != 0 {
		t.Errorf("the intruder has a configuration: %v, %v", ms, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	_, err = db.ExecContext(ctx, `CREATE TABLE intruder(x)`)
	cancel()
	if err == nil {
		t.Error("the intruder wrote")
	}
	t.Logf("the intruder's write failed: %v", err)

	// The secret itself opens no connection.
	mux, err := nodeport.Listen("127.0.0.1:0", "", []byte(wrongSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	for _, i := range c.Alive() {
		addr := c.Members[i].Listen
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := mux.DialRPC(ctx, addr)
		cancel()
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, nodeport.ErrAuth) {
			t.Errorf("RPC dial of %s with the wrong secret: %v, want ErrAuth", c.Members[i].ID, err)
		}
		conn, err = mux.RaftLayer().Dial(raft.ServerAddress(addr), 5*time.Second)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, nodeport.ErrAuth) {
			t.Errorf("Raft dial of %s with the wrong secret: %v, want ErrAuth", c.Members[i].ID, err)
		}
	}

	for _, i := range c.Alive() {
		if got := nodeMembers(t, c.Members[i].Node); !slices.Equal(got, original) {
			t.Errorf("%s has members %v, want %v", c.Members[i].ID, got, original)
		}
	}
	stop()
	closeIntruder()
	for _, i := range c.Alive() {
		mustExec(t, c.Members[i].DB, `INSERT INTO ws VALUES (?, -1)`, c.Members[i].ID)
	}
	c.EnsureSame()
	if n := count(t, c.Members[c.Leader()].DB, `SELECT count(*) FROM sqlite_schema WHERE name = 'intruder'`); n != 0 {
		t.Error("the intruder's table reached the cluster")
	}

	// The control: the same, with the right secret.
	j := c.Add(c.NewMember("node4"))
	c.WaitFor("node4 in the configuration", 60*time.Second, func() bool {
		return slices.Contains(nodeMembers(t, c.Members[c.Leader()].Node), "node4")
	})
	c.WaitReady(30 * time.Second)
	mustExec(t, c.Members[j].DB, `INSERT INTO ws VALUES ('node4', 0)`)
	c.EnsureSame()
}

// TestClusterRejectsGarbage connects to the _listen port of the leader and
// of a follower and sends what no peer sends: random bytes, another
// protocol, handshakes cut short or with a wrong proof, and, over
// connections authenticated with the right secret, malformed RPC frames and
// Raft commands. The node closes each such connection, sending nothing but
// the handshake proof that a well-formed hello earns, and nothing else is
// disturbed: every node keeps taking writes while the probes are open and
// afterwards, and the nodes stay identical.
func TestClusterRejectsGarbage(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE gb(node TEXT, k INT)`)

	mux, err := nodeport.Listen("127.0.0.1:0", "", []byte(clustertest.Secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	seed := rand.Uint64()
	t.Logf("random probes from seed %d", seed)
	probes := garbageProbes(rand.New(rand.NewPCG(seed, seed)), mux)

	// All probes at once, on goroutines of their own rather than with
	// t.Parallel, which would queue them behind -parallel slots: most
	// finish at once, a few only at the handshake deadline.
	stop := startWriters(t, c, "gb")
	var wg sync.WaitGroup
	for _, target := range []int{c.Leader(), c.Follower()} {
		m := c.Members[target]
		for _, p := range probes {
			wg.Go(func() {
				t.Run(m.ID+"/"+p.name, func(t *testing.T) { p.check(t, m.Listen) })
			})
		}
	}
	wg.Wait()
	stop()
	for _, i := range c.Alive() {
		mustExec(t, c.Members[i].DB, `INSERT INTO gb VALUES (?, -1)`, c.Members[i].ID)
	}
	c.EnsureSame()
}

// A probe is one connection to a node's listener that the node must close.
type probe struct {
	name string
	dial func(addr string) (net.Conn, error)
	send []byte
	// reply is the most the node may send before it closes: 64 bytes (its
	// nonce and proof) for a well-formed hello, else nothing.
	reply int
}

// probeTimeout bounds how long a node may keep a probe open: the mux's
// handshake deadline (2 s) and a margin for a loaded machine.
const probeTimeout = 15 * time.Second

// garbageProbes returns the probes: raw ones, and ones that mux
// authenticates with the cluster secret first.
func garbageProbes(r *rand.Rand, mux *nodeport.Mux) []probe {
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	join := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	raw := func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
	rpc := func(addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return mux.DialRPC(ctx, addr)
	}
	raftConn := func(addr string) (net.Conn, error) {
		return mux.RaftLayer().Dial(raft.ServerAddress(addr), 5*time.Second)
	}
	const (
		streamRaft = 'R'
		streamRPC  = 'Q'
		version    = 1
	)
	probes := []probe{
		{name: "nothing", dial: raw},
		{name: "one byte", dial: raw, send: random(1)},
		{name: "HTTP", dial: raw, send: []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")},
		{name: "TLS hello", dial: raw, send: []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03}},
		{name: "unknown version", dial: raw, send: join([]byte{streamRPC, 9}, random(32))},
		{name: "truncated hello", dial: raw, send: join([]byte{streamRaft, version}, random(10))},
		{name: "no proof", dial: raw, send: join([]byte{streamRPC, version}, random(32)), reply: 64},
		{name: "truncated proof", dial: raw, send: join([]byte{streamRaft, version}, random(32), random(16)), reply: 64},
		{name: "wrong proof", dial: raw, send: join([]byte{streamRPC, version}, random(32), random(32)), reply: 64},
		{name: "wrong proof and more", dial: raw, send: join([]byte{streamRaft, version}, random(32), random(32), random(200)), reply: 64},

		// Authenticated: only a member could send these, by mistake.
		{name: "rpc empty frame", dial: rpc, send: []byte{0}},
		{name: "rpc unknown type", dial: rpc, send: []byte{2, 0xff, 0}},
		{name: "rpc oversized frame", dial: rpc, send: binary.AppendUvarint(nil, wire.MaxFrameSize+1)},
		{name: "rpc endless length", dial: rpc, send: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{name: "rpc truncated body", dial: rpc, send: truncatedFrame(&wire.ExecRequest{Stmts: []replication.Statement{{SQL: "INSERT INTO gb VALUES ('probe', 0)"}}})},
		{name: "raft unknown command", dial: raftConn, send: []byte{0xee}},
		{name: "raft undecodable command", dial: raftConn, send: []byte{0, 0xc1}},
	}
	for i := range 8 {
		// Random bytes of various lengths; whatever their start, at most
		// a proof comes back.
		probes = append(probes, probe{name: fmt.Sprintf("random %d", i), dial: raw, send: random(1 << (2 * i)), reply: 64})
	}
	return probes
}

// check runs the probe against addr: the node must close the connection
// within probeTimeout, having sent at most p.reply bytes.
func (p probe) check(t *testing.T, addr string) {
	conn, err := p.dial(addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetDeadline(start.Add(probeTimeout))
	if len(p.send) > 0 {
		// The node may close the connection before it has read
		// everything: then the write fails, and the read below tells.
		conn.Write(p.send)
	}
	got, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the node kept the connection open for %v (received %d bytes)", time.Since(start), len(got))
	}
	if len(got) > p.reply {
		t.Errorf("the node sent %d bytes before closing, want at most %d", len(got), p.reply)
	}
}

// frame encodes m as a frame.
func frame(m wire.Message) []byte {
	b, err := wire.AppendMessage(nil, m)
	if err != nil {
		panic(err)
	}
	return b
}

// truncatedFrame is m's frame with its body cut in half, and the length
// prefix to match: a complete frame that holds half a message.
func truncatedFrame(m wire.Message) []byte {
	b := frame(m)
	n, p := binary.Uvarint(b)
	body := b[p : p+int(n)]
	body = body[:len(body)/2]
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// startWriters writes into table from every running member, one goroutine
// each, until the returned stop is called (or 10000 writes each). Call
// stop once, from the test's goroutine: it waits for the writers and fails
// the test if a member wrote nothing, or if a write failed while every
// member kept the leader it had at the start.
//
// A write that fails during an election is logged, not counted against the
// cluster: on a loaded test machine a leader can be starved of CPU for
// longer than the heartbeat timeout, which has nothing to do with what the
// callers test. A monitor watches for that.
func startWriters(t *testing.T, c *clustertest.Cluster, table string) (stop func()) {
	t.Helper()
	const maxWrites = 10000
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	writes := map[string]int{}
	var errs []error
	var elected []string // leaders other than the first, "" for none, as members saw them

	leader, _ := c.Members[c.Leader()].Node.Leader()
	var nodes []*hiqlite.Node
	for _, i := range c.Alive() {
		db, id, node := c.Members[i].DB, c.Members[i].ID, c.Members[i].Node
		nodes = append(nodes, node)
		wg.Go(func() {
			for k := range maxWrites {
				select {
				case <-done:
					return
				default:
				}
				_, err := db.Exec(`INSERT INTO "`+table+`" VALUES (?, ?)`, id, k)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: write %d: %w", id, k, err))
				} else {
					writes[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for _, n := range nodes {
				if id, _ := n.Leader(); id != leader {
					mu.Lock()
					if len(elected) == 0 || elected[len(elected)-1] != id {
						elected = append(elected, id)
					}
					mu.Unlock()
				}
			}
		}
	})

	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(done)
			wg.Wait()
		}
	}
	t.Cleanup(halt) // after a t.Fatal, before the cluster closes
	return func() {
		t.Helper()
		halt()
		for i, err := range errs {
			if i == 10 {
				t.Logf("and %d more failed writes", len(errs)-i)
				break
			}
			if len(elected) > 0 {
				t.Logf("during an election (leaders seen after %q: %q): %v", leader, elected, err)
			} else {
				t.Errorf("with %s leading throughout: %v", leader, err)
			}
		}
		for _, n := range nodes {
			if writes[n.ID()] == 0 {
				t.Errorf("%s wrote nothing", n.ID())
			}
		}
		t.Logf("writes meanwhile: %v, failed: %d", writes, len(errs))
	}
}

// memberIDs returns the ids of c's members, sorted.
func memberIDs(c *clustertest.Cluster) []string {
	var ids []string
	for _, m := range c.Members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// nodeMembers returns the sorted ids of n's Raft configuration.
func nodeMembers(t *testing.T, n *hiqlite.Node) []string {
	t.Helper()
	ms, err := n.Members()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}
