// Package clustertest runs hiqlite clusters inside one test process: every
// node is a real node with its own DATA_DIR, Raft over loopback TCP and
// gossip over loopback UDP/TCP, opened through database/sql as an
// application would.
package clustertest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/testaddr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// Secret is the cluster secret of test clusters.
const Secret = "clustertest-secret-0123456789"

// Member is one node of a test cluster.
type Member struct {
	ID     string
	Dir    string
	Listen string
	Gossip string
	Secret string   // "" = the package's Secret
	Params []string // extra DSN parameters
	// Logger, when set, receives the node's logs (Config.Logger); nil =
	// the default logger.
	Logger *slog.Logger
	// ConnInit, when set, is the member's Config.ConnInit. With either
	// set, the member opens through hiqlite.NewConnector instead of its
	// DSN alone.
	ConnInit func(*sqlite3.Conn) error
	DB       *sql.DB // nil while killed
	Node     *hiqlite.Node
}

// DSN is the member's DSN.
func (m *Member) DSN(c *Cluster) string {
	secret := m.Secret
	if secret == "" {
		secret = Secret
	}
	params := []string{
		"_node=" + m.ID,
		"_listen=" + m.Listen,
		"_gossip=" + m.Gossip,
		"_join=" + strings.Join(c.seeds(), ","),
		fmt.Sprintf("_expect=%d", c.expect),
		"_secret=" + url.QueryEscape(secret),
	}
	params = append(params, m.Params...)
	return m.Dir + "?" + strings.Join(params, "&")
}

// Cluster is a set of in-process nodes.
type Cluster struct {
	t       testing.TB
	expect  int
	params  []string
	used    map[string]bool // addresses given out: a port freed by freeAddr may come back
	Members []*Member
}

// New starts n voters that bootstrap together and waits until they agree
// on a leader and every node is ready. params are extra DSN parameters of
// every member, such as "_reap=1s".
func New(t testing.TB, n int, params ...string) *Cluster {
	t.Helper()
	return NewWith(t, n, nil, params...)
}

// NewWith is New with prepare, if not nil, called on each member before
// any starts: to give each its own DSN parameters (Member.Params), such as
// its own TLS certificate files.
func NewWith(t testing.TB, n int, prepare func(*Member), params ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, expect: n, params: params, used: map[string]bool{}}
	for i := range n {
		m := c.NewMember(fmt.Sprintf("node%d", i+1))
		if prepare != nil {
			prepare(m)
		}
		c.Members = append(c.Members, m)
	}
	t.Cleanup(c.Close)
	for i := range c.Members {
		c.Start(i)
	}
	c.WaitReady(30 * time.Second)
	return c
}

// NewMember returns a member that is not part of c: a new DATA_DIR, free
// loopback addresses and c's extra DSN parameters. Its DSN joins c's
// members. Add it to c with Add, or open its DSN yourself (as an outsider).
func (c *Cluster) NewMember(id string) *Member {
	c.t.Helper()
	return &Member{
		ID:     id,
		Dir:    filepath.Join(c.t.TempDir(), id),
		Listen: c.unused(),
		Gossip: c.unused(),
		Params: slices.Clone(c.params),
	}
}

// unused returns a free loopback address that no member of c was given:
// every address of the cluster must differ.
func (c *Cluster) unused() string {
	c.t.Helper()
	if c.used == nil {
		c.used = map[string]bool{}
	}
	for {
		if a := freeAddr(c.t); !c.used[a] {
			c.used[a] = true
			return a
		}
	}
}

// Add appends m to the members, starts it and returns its index.
func (c *Cluster) Add(m *Member) int {
	c.t.Helper()
	c.Members = append(c.Members, m)
	i := len(c.Members) - 1
	c.Start(i)
	return i
}

func (c *Cluster) seeds() []string {
	var s []string
	for _, m := range c.Members {
		s = append(s, m.Gossip)
	}
	return s
}

// freeAddr returns a loopback address whose ports were free a moment ago.
func freeAddr(t testing.TB) string { return testaddr.Loopback(t) }

// Start opens member i (again).
func (c *Cluster) Start(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.DB != nil {
		c.t.Fatalf("%s is already running", m.ID)
	}
	db, err := m.open(c)
	if err != nil {
		c.t.Fatalf("start %s: %v", m.ID, err)
	}
	n, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		db.Close()
		c.t.Fatalf("start %s: %v", m.ID, err)
	}
	m.DB, m.Node = db, n
}

// open opens the member's *sql.DB: from its DSN, with its Logger and
// ConnInit when it has them.
func (m *Member) open(c *Cluster) (*sql.DB, error) {
	if m.Logger == nil && m.ConnInit == nil {
		return sql.Open("hiqlite", m.DSN(c))
	}
	cfg, err := hiqlite.ParseDSN(m.DSN(c))
	if err != nil {
		return nil, err
	}
	cfg.Logger = m.Logger
	cfg.ConnInit = m.ConnInit
	cn, err := hiqlite.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(cn), nil
}

// Kill stops member i without leaving the cluster, as a crash would look
// to the others (its files stay).
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.DB == nil {
		return
	}
	if err := m.DB.Close(); err != nil {
		c.t.Logf("close %s: %v", m.ID, err)
	}
	m.DB, m.Node = nil, nil
}

// Restart kills and starts member i.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Kill(i)
	c.Start(i)
}

// Wipe deletes member i's DATA_DIR; the member must be killed.
func (c *Cluster) Wipe(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.DB != nil {
		c.t.Fatalf("wipe %s while it runs", m.ID)
	}
	if err := os.RemoveAll(m.Dir); err != nil {
		c.t.Fatal(err)
	}
}

// Close stops every member.
func (c *Cluster) Close() {
	for i := range c.Members {
		c.Kill(i)
	}
}

// Alive returns the indexes of running members.
func (c *Cluster) Alive() []int {
	var a []int
	for i, m := range c.Members {
		if m.DB != nil {
			a = append(a, i)
		}
	}
	return a
}

// WaitFor polls cond until it holds or timeout passes, then fails the test
// with what.
func (c *Cluster) WaitFor(what string, timeout time.Duration, cond func() bool) {
	c.t.Helper()
	WaitFor(c.t, what, timeout, cond)
}

// WaitFor polls cond every few milliseconds until it holds; after timeout
// the test fails naming what it waited for.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, what, timeout, cond)
}

// Leader waits until the running members agree on one leader among them
// and returns its index.
func (c *Cluster) Leader() int {
	c.t.Helper()
	leader := -1
	c.WaitFor("a leader all running members agree on", 30*time.Second, func() bool {
		leader = -1
		var id string
		for _, i := range c.Alive() {
			lid, _ := c.Members[i].Node.Leader()
			if lid == "" || (id != "" && lid != id) {
				return false
			}
			id = lid
			if c.Members[i].ID == lid && c.Members[i].Node.IsLeader() {
				leader = i
			}
		}
		return leader >= 0
	})
	return leader
}

// Follower returns the index of a running member that is not the leader.
func (c *Cluster) Follower() int {
	c.t.Helper()
	l := c.Leader()
	for _, i := range c.Alive() {
		if i != l {
			return i
		}
	}
	c.t.Fatal("no running follower")
	return -1
}

// WaitReady waits until every running member has a leader and has caught up.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, i := range c.Alive() {
		if err := c.Members[i].Node.WaitReady(ctx); err != nil {
			c.t.Fatalf("%s not ready: %v", c.Members[i].ID, err)
		}
	}
	c.Leader()
}

// EnsureSame waits until every running member has applied the leader's
// last write, then checks that all of them hold the same tables, compared
// by content, value for value with storage classes.
func (c *Cluster) EnsureSame() {
	c.t.Helper()
	l := c.Leader()
	want := c.Members[l].Node.AppliedIndex()
	c.WaitFor(fmt.Sprintf("every member to apply index %d", want), 30*time.Second, func() bool {
		for _, i := range c.Alive() {
			if c.Members[i].Node.AppliedIndex() < want {
				return false
			}
		}
		return true
	})
	// An entry applied between two dumps (an election's, or a cache
	// tick's) makes them differ for a moment: compare until they agree,
	// and report the last difference if they never do.
	var diff string
	if waitfor.Until(30*time.Second, func() bool {
		diff = ""
		ref := Dump(c.t, c.Members[l].DB)
		for _, i := range c.Alive() {
			if i == l {
				continue
			}
			if got := Dump(c.t, c.Members[i].DB); !bytes.Equal(got, ref) {
				diff = fmt.Sprintf("%s differs from leader %s:\n--- leader\n%s\n--- %s\n%s", c.Members[i].ID, c.Members[l].ID, ref, c.Members[i].ID, got)
				return false
			}
		}
		return true
	}) {
		return
	}
	c.t.Fatal(diff)
}

// columnCount returns how many columns table name has.
func columnCount(t testing.TB, db *sql.DB, name string) int {
	t.Helper()
	r, err := db.Query(`SELECT * FROM "` + name + `" LIMIT 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cols, err := r.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return len(cols)
}

// Dump renders every table of db (schema, then rows in rowid order, or
// ordered by every column for a WITHOUT ROWID table, with each value's
// storage class) through the local read path.
func Dump(t testing.TB, db *sql.DB) []byte {
	t.Helper()
	return dump(t, db, `SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
}

// UserDump is Dump of the application's tables only: not hiqlite's own,
// whose applied index differs between a cluster and one restored from its
// backup, nor SQLite's.
func UserDump(t testing.TB, db *sql.DB) []byte {
	t.Helper()
	return dump(t, db, `SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\_hiqlite%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
}

// dump renders the tables that tables, a query of (name, sql) pairs, lists.
func dump(t testing.TB, db *sql.DB, tables string) []byte {
	t.Helper()
	var out bytes.Buffer
	rows, err := db.Query(tables)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	noRowid := map[string]bool{}
	for rows.Next() {
		var name, sql string
		if err := rows.Scan(&name, &sql); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		noRowid[name] = strings.Contains(strings.ToUpper(sql), "WITHOUT ROWID")
		fmt.Fprintln(&out, sql)
	}
	rows.Close()
	for _, name := range names {
		fmt.Fprintf(&out, "== %s\n", name)
		order := "rowid"
		if noRowid[name] {
			order = "1"
			if cols := columnCount(t, db, name); cols > 1 {
				for i := 2; i <= cols; i++ {
					order += fmt.Sprintf(", %d", i)
				}
			}
		}
		r, err := db.Query(`SELECT * FROM "` + name + `" ORDER BY ` + order)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
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
				fmt.Fprintf(&out, "%T:%v ", v, v)
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

// RemoteDSN is the DSN of a remote client of c that knows the members
// given by index (all of them when none is given), in that order.
func (c *Cluster) RemoteDSN(members ...int) string {
	if len(members) == 0 {
		for i := range c.Members {
			members = append(members, i)
		}
	}
	hosts := make([]string, len(members))
	for i, m := range members {
		hosts[i] = c.Members[m].Listen
	}
	return hiqlite.RemotePrefix + strings.Join(hosts, ",") + "?_secret=" + url.QueryEscape(Secret)
}
