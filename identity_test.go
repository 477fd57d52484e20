package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestJoinRefusedThroughSQL: through database/sql, a node whose DSN has
// _join and no _expect and that the cluster refuses (another secret, a
// live member's _node) fails its very first write with an error that says
// why, and the cluster keeps its leader and members and takes writes.
func TestJoinRefusedThroughSQL(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	if _, err := c.Members[l].DB.Exec(`CREATE TABLE t(v)`); err != nil {
		t.Fatal(err)
	}
	members := func() []hiqlite.Member {
		ms, err := c.Members[c.Leader()].Node.Members()
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	before := members()
	var seeds []string
	for _, m := range c.Members {
		seeds = append(seeds, m.Gossip)
	}

	for _, tc := range []struct {
		name, id, secret string
		want             error
		says             string
	}{
		{"wrong secret", "stranger", "not-the-cluster-secret", hiqlite.ErrNotInCluster, "wrong secret?"},
		{"live member's id", c.Members[(l+1)%3].ID, clustertest.Secret, hiqlite.ErrNodeIDInUse, c.Members[(l+1)%3].Listen},
	} {
		m := c.NewMember(tc.id)
		dsn := m.Dir + "?" + strings.Join([]string{
			"_node=" + tc.id,
			"_listen=" + m.Listen,
			"_gossip=" + m.Gossip,
			"_join=" + strings.Join(seeds, ","),
			"_secret=" + url.QueryEscape(tc.secret),
			"_timeout=2s",
		}, "&")
		db, err := sql.Open("hiqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.ExecContext(context.Background(), `INSERT INTO t(v) VALUES ('stray')`)
		db.Close()
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: first write: %v; want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}

	if l2 := c.Leader(); l2 != l {
		t.Fatalf("the leader moved from %s to %s", c.Members[l].ID, c.Members[l2].ID)
	}
	if after := members(); !reflect.DeepEqual(after, before) {
		t.Fatalf("members %+v, want %+v", after, before)
	}
	for _, m := range c.Members {
		if _, err := m.DB.Exec(`INSERT INTO t(v) VALUES ('after')`); err != nil {
			t.Fatalf("write on %s: %v", m.ID, err)
		}
	}
}
