package main

// The plumbing of the demo's cluster: its nodes, free ports, and waiting
// for conditions with a deadline. demo.go tells the story.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite"
)

// demoNode is one node of the demo cluster.
type demoNode struct {
	name   string // also its _node id
	dir    string
	listen string
	gossip string
	dsn    string
	db     *sql.DB // nil while stopped
	node   *hiqlite.Node
}

func (n *demoNode) role() string {
	if n.node.IsLeader() {
		return "leader"
	}
	return "follower"
}

// running returns the nodes that run, in name order.
func (d *demoRun) running() []*demoNode {
	var out []*demoNode
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
func (d *demoRun) leader(ctx context.Context) (*demoNode, error) {
	var leader *demoNode
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
func (d *demoRun) followers(leader *demoNode) []*demoNode {
	var out []*demoNode
	for _, n := range d.running() {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// waitApplied waits until every running node has applied index idx, so
// that a local read on any of them sees everything written up to idx.
func (d *demoRun) waitApplied(ctx context.Context, idx uint64) error {
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
func contents(ctx context.Context, n *demoNode) (string, error) {
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
		cols, err := rows.Columns()
		if err != nil {
			rows.Close()
			return "", err
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return "", err
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "%T:%v ", v, v)
			}
			b.WriteByte('\n')
		}
		rows.Close()
		if err := rows.Err(); err != nil {
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
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
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

// dsnEscaper escapes what ParseDSN would read as syntax in a parameter
// value: the parameter separator and %-escapes ('+' unescapes to a space).
var dsnEscaper = strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B")

// writeSecret writes a random cluster secret to a file only its owner
// reads, so that the DSNs name the file and can be shown.
func (d *demoRun) writeSecret() error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	d.secretFile = filepath.Join(d.dir, "cluster-secret")
	return os.WriteFile(d.secretFile, []byte(hex.EncodeToString(b[:])+"\n"), 0o600)
}

// open starts n from its DSN.
func (n *demoNode) open(ctx context.Context) error {
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
func (n *demoNode) stop() error {
	if n.db == nil {
		return nil
	}
	err := n.db.Close()
	n.db, n.node = nil, nil
	return err
}

func (d *demoRun) closeAll() {
	for _, n := range d.nodes {
		n.stop()
	}
}
