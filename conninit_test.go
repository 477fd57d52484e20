package hiqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/ext/regexp"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// appInit is an application's Config.ConnInit for member id: a
// deterministic function, one that is not (it returns the node's id), a
// non-deterministic aggregate, a case-insensitive collation, and the
// ncruces regexp extension (Go's regular expressions, deterministic).
func appInit(id string) func(*sqlite3.Conn) error {
	return func(c *sqlite3.Conn) error {
		return errors.Join(
			c.CreateFunction("twice", 1, sqlite3.DETERMINISTIC|sqlite3.INNOCUOUS, func(ctx sqlite3.Context, a ...sqlite3.Value) {
				ctx.ResultInt64(2 * a[0].Int64())
			}),
			c.CreateFunction("node_tag", 0, 0, func(ctx sqlite3.Context, _ ...sqlite3.Value) {
				ctx.ResultText(id)
			}),
			c.CreateWindowFunction("node_sum", 1, 0, func() sqlite3.AggregateFunction { return &nodeSum{id: id} }),
			c.CreateCollation("ci", func(a, b []byte) int {
				return strings.Compare(strings.ToLower(string(a)), strings.ToLower(string(b)))
			}),
			regexp.Register(c),
		)
	}
}

// nodeSum sums its argument plus the length of the node's id: an
// aggregate whose result differs from node to node.
type nodeSum struct {
	id  string
	sum int64
}

func (s *nodeSum) Step(_ sqlite3.Context, a ...sqlite3.Value) { s.sum += a[0].Int64() }
func (s *nodeSum) Value(ctx sqlite3.Context)                  { ctx.ResultInt64(s.sum + int64(len(s.id))) }

func TestConnInitCluster(t *testing.T) {
	t.Parallel()
	c := clustertest.NewWith(t, 3, func(m *clustertest.Member) { m.ConnInit = appInit(m.ID) })
	f := c.Follower()
	fol := c.Members[f].DB

	mustExec(t, fol, `CREATE TABLE t(id INTEGER PRIMARY KEY, v INT, name TEXT COLLATE ci)`)
	mustExec(t, fol, `CREATE UNIQUE INDEX t_name ON t(name)`)
	mustExec(t, fol, `CREATE TABLE s(what TEXT, x REAL)`)
	// A deterministic function of the application in a write from a
	// follower: the same rows everywhere.
	mustExec(t, fol, `INSERT INTO t(v, name) VALUES (twice(1), 'bravo'), (twice(2), 'Alpha'), (twice(3), 'charlie')`)
	// The collation in a unique index, on the writer: 'ALPHA' is 'Alpha'.
	if _, err := fol.Exec(`INSERT INTO t(v, name) VALUES (0, 'ALPHA')`); !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("insert of a duplicate under the collation ci: %v, want a UNIQUE constraint error", err)
	}
	// An extension's functions (ext/regexp, deterministic) in a write.
	mustExec(t, fol, `INSERT INTO s SELECT regexp_replace(name, '[aeiou]', '_'), regexp_count(name, '[aeiou]') FROM t`)

	// Non-deterministic functions and aggregates are refused in writes,
	// from a follower and from the leader, with their name.
	for _, i := range []int{f, c.Leader()} {
		for name, q := range map[string]string{
			"node_tag": `INSERT INTO t(v, name) VALUES (1, node_tag())`,
			"node_sum": `INSERT INTO s SELECT 'sum', node_sum(v) FROM t`,
		} {
			_, err := c.Members[i].DB.Exec(q)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("function %q is not deterministic", name)) {
				t.Errorf("%s: %s: err = %v, want the refusal naming %s", c.Members[i].ID, q, err, name)
			}
		}
	}
	c.EnsureSame()

	for _, m := range c.Members {
		// In reads, the real functions, on every node.
		var tag string
		var sum int64
		if err := m.DB.QueryRow(`SELECT node_tag(), (SELECT node_sum(v) FROM t)`).Scan(&tag, &sum); err != nil || tag != m.ID || sum != 12+int64(len(m.ID)) {
			t.Errorf("%s: read node_tag(), node_sum(v) = %q, %d, %v; want %q, %d", m.ID, tag, sum, err, m.ID, 12+len(m.ID))
		}
		// The collation orders reads, with and without the index.
		for _, q := range []string{`SELECT name FROM t ORDER BY name`, `SELECT name FROM t INDEXED BY t_name ORDER BY name`} {
			if got := strings.Join(strs(t, m.DB, q), ","); got != "Alpha,bravo,charlie" {
				t.Errorf("%s: %s = %s, want Alpha,bravo,charlie", m.ID, q, got)
			}
		}
		var v int64
		if err := m.DB.QueryRow(`SELECT v FROM t WHERE name = 'CHARLIE'`).Scan(&v); err != nil || v != 6 {
			t.Errorf("%s: lookup through the collation: %d, %v; want 6", m.ID, v, err)
		}
		if got := strings.Join(strs(t, m.DB, `SELECT what || '=' || x FROM s ORDER BY what`), ","); got != "Alph_=1.0,br_v_=2.0,ch_rl__=3.0" {
			t.Errorf("%s: regexp rows = %s", m.ID, got)
		}
	}

	// A restart checks the database (quick_check), whose index needs
	// the collation: the hook runs before it.
	c.Restart(f)
	c.WaitReady(30 * time.Second)
	mustExec(t, c.Members[f].DB, `INSERT INTO t(v, name) VALUES (twice(4), 'delta')`)
	c.EnsureSame()
}

// strs returns the first column of every row of q.
func strs(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConnInitError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	cfg, err := hiqlite.ParseDSN(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnInit = func(*sqlite3.Conn) error { return boom }
	cn, err := hiqlite.NewConnector(cfg)
	if err == nil {
		cn.Close()
		t.Fatal("NewConnector with a failing ConnInit succeeded")
	}
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "ConnInit") {
		t.Errorf("NewConnector: %v, want the hook's error wrapped", err)
	}
}
