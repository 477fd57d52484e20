package hiqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// writeIdentity writes a new age identity to a key file and returns it.
func writeIdentity(t *testing.T) (string, *age.X25519Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.key")
	if err := os.WriteFile(path, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, id
}

// A backup taken on a follower of a 3-node cluster under write load,
// restored into a fresh directory, boots a new cluster that two empty
// nodes join: all three hold exactly the backed-up rows, and take writes.
func TestBackupRestoreCluster(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, 3)
	lead := c.Members[c.Leader()].DB
	mustExec(t, lead, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, data BLOB, at DEFAULT CURRENT_TIMESTAMP)`)
	mustExec(t, lead, `CREATE INDEX items_name ON items(name)`)
	for i := range 200 {
		mustExec(t, lead, `INSERT INTO items(name, data) VALUES (?, randomblob(64))`, fmt.Sprintf("before-%d", i))
	}
	keyFile, id := writeIdentity(t)
	dest := filepath.Join(t.TempDir(), "backups")

	// Writes go on while the follower takes the backup.
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := lead.Exec(`INSERT INTO items(name, data) VALUES (?, randomblob(64))`, fmt.Sprintf("during-%d", i)); err != nil {
				t.Errorf("write during the backup: %v", err)
				return
			}
			written.Add(1)
		}
	}()
	clustertest.WaitFor(t, "writes to start", 30*time.Second, func() bool { return written.Load() > 20 })
	f := c.Members[c.Follower()]
	info, err := f.Node.Backup(ctx, dest, hiqlite.BackupOptions{KeyFile: keyFile})
	clustertest.WaitFor(t, "writes after the backup", 30*time.Second, func() bool { return written.Load() > 40 })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if info.Index == 0 || info.Size == 0 || !strings.Contains(info.Name, f.ID) {
		t.Fatalf("backup info %+v", info)
	}
	t.Logf("backup %s: index %d, %d bytes, %v; %d writes during it", info.Name, info.Index, info.Size, info.Duration, written.Load())

	// What the backup holds: its database, read directly.
	store := backup.NewDirStore(dest)
	h, path, err := backup.Extract(ctx, store, info.Name, []age.Identity{id}, t.TempDir(), "want-*.db")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Encrypted || h.Node != f.ID || h.Index != info.Index {
		t.Fatalf("header %+v", h)
	}
	plain, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	want := clustertest.UserDump(t, plain)
	var n int
	plain.QueryRow(`SELECT count(*) FROM items`).Scan(&n)
	plain.Close()
	if n < 200 {
		t.Fatalf("the backup holds %d rows, fewer than the 200 written before it", n)
	}
	if raw, _ := os.ReadFile(filepath.Join(dest, info.Name)); bytes.Contains(raw, []byte("before-17")) {
		t.Fatal("the encrypted backup holds row text in plain")
	}

	// Restore, and boot a new cluster from it.
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, store, info.Name, dir, "r1", []age.Identity{id}); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, store, info.Name, dir, "r1", []age.Identity{id}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a restore into a non-empty dir: %v", err)
	}
	c2 := bootRestored(t, dir, "r1", want)
	// The restored node's own address was corrected from the placeholder.
	ms, _ := c2.Members[0].Node.Members()
	for _, m := range ms {
		if m.ID == "r1" && m.Address != c2.Members[0].Listen {
			t.Errorf("r1's address in the configuration is %q, want %q", m.Address, c2.Members[0].Listen)
		}
	}
	l := c2.Leader()
	mustExec(t, c2.Members[l].DB, `INSERT INTO items(name) VALUES ('after restore')`)
	c2.EnsureSame()
	var after int
	if err := c2.Members[(l+1)%3].DB.QueryRow(`SELECT count(*) FROM items`).Scan(&after); err != nil || after != n+1 {
		t.Fatalf("after a write: %d rows, %v; want %d", after, err, n+1)
	}
}

// bootRestored starts the node id on dir, a restored data directory, and
// two empty nodes that join it; it waits until all three are voters and
// checks that each holds exactly want, the application's tables as
// clustertest.UserDump renders them.
func bootRestored(t *testing.T, dir, id string, want []byte) *clustertest.Cluster {
	t.Helper()
	c2 := clustertest.NewWith(t, 1, func(m *clustertest.Member) { m.ID, m.Dir = id, dir })
	c2.Add(c2.NewMember(id + "-b"))
	c2.Add(c2.NewMember(id + "-c"))
	c2.WaitFor("3 voters", 60*time.Second, func() bool {
		ms, err := c2.Members[0].Node.Members()
		voters := 0
		for _, m := range ms {
			if m.Voter {
				voters++
			}
		}
		return err == nil && voters == 3
	})
	c2.EnsureSame()
	for _, m := range c2.Members {
		if got := clustertest.UserDump(t, m.DB); !bytes.Equal(got, want) {
			t.Fatalf("%s holds other rows than the backup:\n%.2000s\n--- want\n%.2000s", m.ID, got, want)
		}
	}
	return c2
}
