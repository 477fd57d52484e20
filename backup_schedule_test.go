package hiqlite_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// With _backup on every node, only the leader takes the scheduled backups,
// and retention keeps the newest _backup_keep of them.
func TestScheduledBackups(t *testing.T) {
	ctx := context.Background()
	dest := filepath.Join(t.TempDir(), "backups")
	const keep = 2
	c := clustertest.New(t, 3, "_backup="+url.QueryEscape(dest), "_backup_every=1s", "_backup_keep=2")
	l := c.Leader()
	leader := c.Members[l].ID
	mustExec(t, c.Members[l].DB, `CREATE TABLE t(x)`)
	store := backup.NewDirStore(dest)
	seen := map[string]bool{}
	leaders := map[string]bool{leader: true} // every node seen leading
	most := 0
	c.WaitFor("5 scheduled backups", 60*time.Second, func() bool {
		l := c.Leader()
		leaders[c.Members[l].ID] = true
		mustExec(t, c.Members[l].DB, `INSERT INTO t VALUES (1)`)
		objs, err := backup.Backups(ctx, store)
		if err != nil {
			return false // the leader has not created the directory yet
		}
		most = max(most, len(objs))
		for _, o := range objs {
			seen[o.Name] = true
		}
		return len(seen) >= 5
	})
	leaders[c.Members[c.Leader()].ID] = true
	// Between a new backup and the retention that follows it there is one
	// more than keep, never more.
	if most > keep+1 {
		t.Errorf("%d backups at once, keep is %d", most, keep)
	}
	// Leadership rarely moves in this test; a backup may only come from a
	// node seen leading, so the followers took none.
	for name := range seen {
		if node := backup.NodeOf(name); !leaders[node] {
			t.Errorf("backup %s taken by %s, which never led (leaders: %v)", name, node, leaders)
		}
	}
	if len(leaders) == len(c.Members) {
		t.Logf("every node led at some point: the followers' abstention is not shown by this run")
	}
	for i := range c.Members {
		c.Kill(i)
	}
	objs, err := backup.Backups(ctx, store)
	if err != nil || len(objs) != keep {
		t.Fatalf("after the nodes stopped: %d backups (%v), want keep=%d", len(objs), err, keep)
	}
	for _, o := range objs {
		if _, err := backup.Verify(ctx, store, o.Name, nil, t.TempDir()); err != nil {
			t.Errorf("verify %s: %v", o.Name, err)
		}
	}
}
