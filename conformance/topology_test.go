package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/testaddr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
	_ "github.com/ncruces/go-sqlite3/driver"
)

// The conformance module cannot import the driver's internal/clustertest,
// so this file starts clusters the way an application would: one DSN per
// node on free loopback ports.

// secret is the cluster secret of the test clusters (at least 16 bytes).
const secret = "conformance-secret-0123456789"

// readyTimeout bounds the wait for a cluster to form; generous, since other
// tests share the machine's two cores.
const readyTimeout = 90 * time.Second

// env is one place a suite runs: a topology's *sql.DB, plus every node of
// it so their tables can be compared.
type env struct {
	name    string
	db      *sql.DB         // where the statements go
	hiqlite bool            // false for the plain SQLite reference
	nodes   []*sql.DB       // every node of the topology, db among them unless it is a remote client
	handles []*hiqlite.Node // with hiqlite: the nodes' handles, in the order of nodes
	listens []string        // in a cluster: the nodes' node ports, in the order of nodes
	via     *sql.DB         // with a remote client: the node it goes through
}

// topology opens an env.
type topology struct {
	name string
	open func(t testing.TB) *env
}

// topologies are the hiqlite topologies every suite runs on, beside the
// plain SQLite reference.
var topologies = []topology{
	{"single", openSingle},
	{"leader", func(t testing.TB) *env { return openCluster(t, 3, true) }},
	{"follower", func(t testing.TB) *env { return openCluster(t, 3, false) }},
	{"remote", openRemote},
}

// openRemote starts a three-node cluster and returns an env whose db is a
// remote client (a hiqlite:// DSN: no node in this process serves it)
// attached to a follower.
func openRemote(t testing.TB) *env {
	t.Helper()
	e := openCluster(t, 3, false)
	f := e.leader(t) + 1
	f %= len(e.nodes)
	db := openNode(t, hiqlite.RemotePrefix+e.listens[f]+"?_secret="+url.QueryEscape(secret)+"&_timeout=60s")
	e.name, e.db, e.via = "remote", db, e.nodes[f]
	return e
}

// openReference opens plain SQLite through github.com/ncruces/go-sqlite3's
// driver, in WAL mode as hiqlite's database is.
func openReference(t testing.TB) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ref.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return &env{name: "sqlite", db: db, nodes: []*sql.DB{db}}
}

// openSingle opens a single hiqlite node without any network.
func openSingle(t testing.TB) *env {
	t.Helper()
	db := openNode(t, t.TempDir())
	n := handle(t, db)
	waitReady(t, n)
	return &env{name: "single", db: db, hiqlite: true, nodes: []*sql.DB{db}, handles: []*hiqlite.Node{n}}
}

// openCluster starts n voters on loopback that bootstrap together, waits
// until they agree on a leader, and returns an env whose db is the
// leader's or a follower's.
func openCluster(t testing.TB, n int, onLeader bool) *env {
	t.Helper()
	return openClusterWith(t, n, onLeader)
}

// openClusterWith is openCluster with extra DSN parameters ("_busy=60s")
// on every node.
func openClusterWith(t testing.TB, n int, onLeader bool, params ...string) *env {
	t.Helper()
	type member struct{ id, dir, listen, gossip string }
	ms := make([]member, n)
	var seeds []string
	for i := range ms {
		ms[i] = member{
			id:     fmt.Sprintf("node%d", i+1),
			dir:    filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i+1)),
			listen: freeAddr(t),
			gossip: freeAddr(t),
		}
		seeds = append(seeds, ms[i].gossip)
	}
	e := &env{hiqlite: true}
	for _, m := range ms {
		dsn := m.dir + "?" + strings.Join([]string{
			"_node=" + m.id,
			"_listen=" + m.listen,
			"_gossip=" + m.gossip,
			"_join=" + strings.Join(seeds, ","),
			fmt.Sprintf("_expect=%d", n),
			"_secret=" + url.QueryEscape(secret),
			// Values of 8 MiB and more take seconds to replicate on a
			// busy two-core machine; conformance is not about speed.
			"_timeout=60s",
		}, "&")
		if len(params) > 0 {
			dsn += "&" + strings.Join(params, "&")
		}
		db := openNode(t, dsn)
		e.nodes = append(e.nodes, db)
		e.listens = append(e.listens, m.listen)
		e.handles = append(e.handles, handle(t, db))
	}
	for _, h := range e.handles {
		waitReady(t, h)
	}
	l := e.leader(t)
	e.name, e.db = "leader", e.nodes[l]
	if !onLeader {
		e.name, e.db = "follower", e.nodes[(l+1)%n]
	}
	return e
}

func openNode(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("hiqlite", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func handle(t testing.TB, db *sql.DB) *hiqlite.Node {
	t.Helper()
	n, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitReady(t testing.TB, n *hiqlite.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatalf("node %s not ready: %v", n.ID(), err)
	}
}

// freeAddr returns a loopback address whose TCP and UDP ports were both
// free a moment ago (gossip uses both).
func freeAddr(t testing.TB) string { return testaddr.Loopback(t) }

// waitFor polls cond until it holds; after timeout the test fails naming
// what it waited for.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, what, timeout, cond)
}

// leader waits until every node names the same leader and returns its
// index in e.nodes.
func (e *env) leader(t testing.TB) int {
	t.Helper()
	l := -1
	waitFor(t, "a leader every node agrees on", readyTimeout, func() bool {
		l = -1
		var id string
		for i, h := range e.handles {
			lid, _ := h.Leader()
			if lid == "" || (id != "" && lid != id) {
				return false
			}
			id = lid
			if h.ID() == lid && h.IsLeader() {
				l = i
			}
		}
		return l >= 0
	})
	return l
}

// sameTables waits until every node has applied the leader's last write,
// then fails the test unless all of them hold the same tables, value for
// value with storage classes. On the reference it does nothing.
func (e *env) sameTables(t testing.TB) {
	t.Helper()
	if len(e.nodes) < 2 {
		return
	}
	l := e.caughtUp(t)
	ref := dump(t, e.nodes[l])
	for i, db := range e.nodes {
		if i == l {
			continue
		}
		if got := dump(t, db); !bytes.Equal(got, ref) {
			t.Fatalf("%s differs from the leader %s:\n--- leader\n%s\n--- %s\n%s",
				e.handles[i].ID(), e.handles[l].ID(), clip(ref), e.handles[i].ID(), clip(got))
		}
	}
}

// caughtUp waits until every node has applied the leader's last write and
// returns the leader's index in e.nodes.
func (e *env) caughtUp(t testing.TB) int {
	t.Helper()
	l := e.leader(t)
	want := e.handles[l].AppliedIndex()
	waitFor(t, fmt.Sprintf("every node to apply index %d", want), readyTimeout, func() bool {
		for _, h := range e.handles {
			if h.AppliedIndex() < want {
				return false
			}
		}
		return true
	})
	return l
}

func clip(b []byte) []byte {
	if len(b) > 4000 {
		return append(b[:4000:4000], "..."...)
	}
	return b
}

// dump renders every table of db: its schema, then its rows in rowid
// order (or ordered by all columns, WITHOUT ROWID), each value with its
// storage class. Large values are hashed, so the dump stays small.
func dump(t testing.TB, db *sql.DB) []byte {
	t.Helper()
	return dumpWhere(t, db, "")
}

// dumpApp is dump without hiqlite's own tables (_hiqlite_*), so that a
// node's dump can equal plain SQLite's.
func dumpApp(t testing.TB, db *sql.DB) []byte {
	t.Helper()
	return dumpWhere(t, db, `AND name NOT LIKE '\_hiqlite\_%' ESCAPE '\'`)
}

// dumpWhere is dump of the tables that cond (an SQL condition on
// sqlite_schema, starting with AND) selects.
func dumpWhere(t testing.TB, db *sql.DB, cond string) []byte {
	t.Helper()
	var out bytes.Buffer
	rows, err := db.Query(`SELECT name, sql, sql LIKE '%WITHOUT ROWID%' FROM sqlite_schema WHERE type = 'table' ` + cond + ` ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	type table struct {
		name    string
		noRowid bool
	}
	var tables []table
	for rows.Next() {
		var tb table
		var schema string
		if err := rows.Scan(&tb.name, &schema, &tb.noRowid); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, tb)
		fmt.Fprintln(&out, schema)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		fmt.Fprintf(&out, "== %s\n", tb.name)
		quoted := `"` + strings.ReplaceAll(tb.name, `"`, `""`) + `"`
		order := "rowid"
		if tb.noRowid {
			order = "*" // replaced below by every column
		}
		r, err := db.Query(`SELECT * FROM ` + quoted + ` LIMIT 0`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		r.Close()
		if order == "*" {
			var ords []string
			for i := range cols {
				ords = append(ords, fmt.Sprint(i+1))
			}
			order = strings.Join(ords, ", ")
		}
		r, err = db.Query(`SELECT * FROM ` + quoted + ` ORDER BY ` + order)
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				writeValue(&out, v)
			}
			out.WriteByte('\n')
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	return out.Bytes()
}

// writeValue writes v with its Go type (which tells the storage class);
// values longer than 256 bytes are written as their SHA-256.
func writeValue(out *bytes.Buffer, v any) {
	switch x := v.(type) {
	case []byte:
		if len(x) > 256 {
			fmt.Fprintf(out, "[]byte:sha256=%x ", sha256.Sum256(x))
			return
		}
	case string:
		if len(x) > 256 {
			fmt.Fprintf(out, "string:sha256=%x ", sha256.Sum256([]byte(x)))
			return
		}
	}
	fmt.Fprintf(out, "%T:%v ", v, v)
}
