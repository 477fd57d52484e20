package main

// The plumbing of a cluster of nodes in this process on 127.0.0.1, shared
// by the demo and the bench: its nodes, free ports, and waiting for
// conditions with a deadline. demo.go tells the demo's story.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite"
)

// localCluster is a cluster whose nodes all run in this process, on
// loopback, each with a directory under dir. create sets it up, openAll
// starts it, closeAll stops it; the directories stay.
type localCluster struct {
	dir        string
	secretFile string
	nodes      []*localNode
}

// localNode is one node of a localCluster.
type localNode struct {
	name   string // also its _node id
	dir    string
	listen string
	gossip string
	dsn    string
	db     *sql.DB // nil while stopped
	node   *hiqlite.Node
}

func (n *localNode) role() string {
	if n.node.IsLeader() {
		return "leader"
	}
	return "follower"
}

// create makes n nodes (node1, node2, ...) in d.dir, which it creates:
// their directories, free loopback addresses, a secret file and DSNs that
// bootstrap the n of them together. params are extra DSN parameters of
// every node. Nothing runs yet.
func (d *localCluster) create(n int, params ...string) error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if err := d.writeSecret(); err != nil {
		return err
	}
	addrs, err := freeAddrs(2 * n)
	if err != nil {
		return err
	}
	for i := range n {
		node := &localNode{name: fmt.Sprintf("node%d", i+1), listen: addrs[2*i], gossip: addrs[2*i+1]}
		node.dir = filepath.Join(d.dir, node.name)
		d.nodes = append(d.nodes, node)
	}
	for _, node := range d.nodes {
		node.dsn = node.dir + "?" + strings.Join(append([]string{
			"_node=" + node.name,
			"_listen=" + node.listen,
			"_gossip=" + node.gossip,
			"_join=" + strings.Join(d.seeds(), ","),
			fmt.Sprintf("_expect=%d", n),
			"_secret_file=" + dsnEscaper.Replace(d.secretFile),
		}, params...), "&")
	}
	return nil
}

// seeds returns the gossip addresses of every node, the DSNs' _join.
func (d *localCluster) seeds() []string {
	var s []string
	for _, n := range d.nodes {
		s = append(s, n.gossip)
	}
	return s
}

// openAll starts every node that is not running.
func (d *localCluster) openAll(ctx context.Context) error {
	for _, n := range d.nodes {
		if n.db != nil {
			continue
		}
		if err := n.open(ctx); err != nil {
			return err
		}
	}
	return nil
}

// waitReady waits up to demoWait for each running node to be ready: the
// cluster formed, a leader known, the node caught up.
func (d *localCluster) waitReady(ctx context.Context) error {
	for _, n := range d.running() {
		wctx, cancel := context.WithTimeout(ctx, demoWait)
		err := n.node.WaitReady(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	return nil
}

// running returns the nodes that run, in name order.
func (d *localCluster) running() []*localNode {
	var out []*localNode
	for _, n := range d.nodes {
		if n.db != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitFor polls cond every few milliseconds until it holds, fails, or
// demoWait passes; what names the condition in the error.
func waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, demoWait)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, err := cond(); ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s after %s: %w", what, round(time.Since(start)), ctx.Err())
		case <-tick.C:
		}
	}
}

// leader waits until the running nodes agree on a leader among them and
// returns it.
func (d *localCluster) leader(ctx context.Context) (*localNode, error) {
	var leader *localNode
	err := waitFor(ctx, "a leader all running nodes agree on", func() (bool, error) {
		leader = nil
		var id string
		for _, n := range d.running() {
			lid, _ := n.node.Leader()
			if lid == "" || (id != "" && lid != id) {
				return false, nil
			}
			id = lid
			if n.name == lid && n.node.IsLeader() {
				leader = n
			}
		}
		return leader != nil, nil
	})
	return leader, err
}

// followers returns the running nodes other than leader.
func (d *localCluster) followers(leader *localNode) []*localNode {
	var out []*localNode
	for _, n := range d.running() {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// waitApplied waits until every running node has applied index idx, so
// that a local read on any of them sees everything written up to idx.
func (d *localCluster) waitApplied(ctx context.Context, idx uint64) error {
	err := waitFor(ctx, fmt.Sprintf("every node to apply index %d", idx), func() (bool, error) {
		for _, n := range d.running() {
			if n.node.AppliedIndex() < idx {
				return false, nil
			}
		}
		return true, nil
	})
	return err
}

// contents renders the tables the demo made on n, row by row and value for
// value with their Go types, for comparing nodes. hiqlite's own tables
// (_hiqlite_*) are left out.
func contents(ctx context.Context, n *localNode) (string, error) {
	var tables []string
	rows, err := n.db.QueryContext(ctx, `SELECT name FROM sqlite_schema
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_hiqlite\_%' ESCAPE '\'
		ORDER BY name`)
	if err != nil {
		return "", err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return "", err
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, t := range tables {
		fmt.Fprintf(&b, "== %s\n", t)
		rows, err := n.db.QueryContext(ctx, `SELECT * FROM "`+t+`" ORDER BY rowid`)
		if err != nil {
			return "", err
		}
		if _, err := eachRow(rows, func(vals []any) error {
			for _, v := range vals {
				fmt.Fprintf(&b, "%T:%v ", v, v)
			}
			b.WriteByte('\n')
			return nil
		}); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// sameEverywhere waits until every running node has applied the leader's
// last write, then checks that all of them hold the same rows. It returns
// the number of notes.
func (d *demoRun) sameEverywhere(ctx context.Context) (int64, error) {
	leader, err := d.leader(ctx)
	if err != nil {
		return 0, err
	}
	if err := d.waitApplied(ctx, leader.node.AppliedIndex()); err != nil {
		return 0, err
	}
	want, err := contents(ctx, leader)
	if err != nil {
		return 0, err
	}
	for _, n := range d.running() {
		got, err := contents(ctx, n)
		if err != nil {
			return 0, err
		}
		if got != want {
			return 0, fmt.Errorf("%s differs from the leader %s:\n%s\n--- leader:\n%s", n.name, leader.name, got, want)
		}
	}
	var count int64
	err = leader.db.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&count)
	return count, err
}

func countNotes(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&n)
	return n, err
}

// freeAddrs returns n distinct loopback addresses whose TCP and UDP ports
// were free a moment ago (gossip uses both). Another process could take
// one before its node binds it; the node then fails to start, naming it.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 100 {
			return nil, errors.New("found no free port on 127.0.0.1")
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", quietPort()))
		if err != nil {
			continue // taken: try another
		}
		closers = append(closers, l)
		u, err := net.ListenPacket("udp", l.Addr().String())
		if err != nil {
			continue // the UDP port is taken: try another
		}
		closers = append(closers, u)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// quietPort returns a random port below Linux's ephemeral range (32768 and
// up), where outgoing connections take their local ports: a port picked
// there and bound a moment later is much less likely to be taken meanwhile.
func quietPort() int { return 20000 + mrand.IntN(12000) }

// dsnEscaper escapes what ParseDSN would read as syntax in a parameter
// value: the parameter separator and %-escapes ('+' unescapes to a space).
var dsnEscaper = strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B")

// writeSecret writes a random cluster secret to a file only its owner
// reads, so that the DSNs name the file and can be shown.
func (d *localCluster) writeSecret() error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	d.secretFile = filepath.Join(d.dir, "cluster-secret")
	return os.WriteFile(d.secretFile, []byte(hex.EncodeToString(b[:])+"\n"), 0o600)
}

// open starts n from its DSN.
func (n *localNode) open(ctx context.Context) error {
	db, err := sql.Open(hiqlite.DriverName, n.dsn)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	node, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		db.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	n.db, n.node = db, node
	return nil
}

// stop closes n's *sql.DB, which stops its node.
func (n *localNode) stop() error {
	if n.db == nil {
		return nil
	}
	err := n.db.Close()
	n.db, n.node = nil, nil
	return err
}

func (d *localCluster) closeAll() {
	for _, n := range d.nodes {
		n.stop()
	}
}
