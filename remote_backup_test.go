package hiqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/s3test"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// remoteBackupClient opens a remote client of c on its member m and
// returns its *sql.DB and extensions.
func remoteBackupClient(t *testing.T, c *clustertest.Cluster, m int) (*sql.DB, *hiqlite.Client) {
	t.Helper()
	db, err := sql.Open(hiqlite.DriverName, c.RemoteDSN(m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	client, err := hiqlite.ClientOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return db, client
}

// fillItems writes rows of text and incompressible blobs, about rows*blob
// bytes, through the leader.
func fillItems(t *testing.T, c *clustertest.Cluster, rows, blob int) {
	t.Helper()
	lead := c.Members[c.Leader()].DB
	mustExec(t, lead, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, data BLOB)`)
	for i := range rows {
		mustExec(t, lead, `INSERT INTO items(name, data) VALUES (?, randomblob(?))`, fmt.Sprintf("secret-row-%d", i), blob)
	}
	c.EnsureSame()
}

// A remote client backs up a follower of a 3-node cluster into a directory
// of its own side, encrypted with an age key: the object holds no row
// text, verifies, and restores into a fresh directory from which a node
// boots holding exactly the cluster's rows. The session stays usable.
func TestRemoteBackupRestore(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, 3)
	fillItems(t, c, 300, 100)
	want := clustertest.UserDump(t, c.Members[c.Leader()].DB)
	f := c.Follower()
	db, client := remoteBackupClient(t, c, f)
	db.SetMaxOpenConns(1) // the backup's session is the one queried after

	keyFile, id := writeIdentity(t)
	dest := filepath.Join(t.TempDir(), "backups")
	var mu sync.Mutex
	var lastRead, lastSize int64
	info, err := client.Backup(ctx, dest, hiqlite.BackupOptions{KeyFile: keyFile, Progress: func(read, size int64) {
		mu.Lock()
		lastRead, lastSize = read, size
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Index == 0 || info.Size == 0 || !strings.Contains(info.Name, c.Members[f].ID) || !backup.IsBackupName(info.Name) {
		t.Fatalf("backup info %+v", info)
	}
	if lastSize == 0 || lastRead == 0 {
		t.Errorf("progress: %d of %d bytes reported", lastRead, lastSize)
	}
	raw, err := os.ReadFile(filepath.Join(dest, info.Name))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != info.Size {
		t.Errorf("the object has %d bytes, the info says %d", len(raw), info.Size)
	}
	if bytes.Contains(raw, []byte("secret-row-1")) {
		t.Fatal("the encrypted backup holds row text in plain")
	}
	entries, _ := os.ReadDir(dest)
	if len(entries) != 1 {
		t.Errorf("the destination holds %d entries, want the one object", len(entries))
	}

	store := backup.NewDirStore(dest)
	h, err := backup.Verify(ctx, store, info.Name, []age.Identity{id}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !h.Encrypted || h.Node != c.Members[f].ID || h.Index != info.Index {
		t.Fatalf("header %+v, info %+v", h, info)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, store, info.Name, dir, "r1", []age.Identity{id}); err != nil {
		t.Fatal(err)
	}
	c2 := clustertest.NewWith(t, 1, func(m *clustertest.Member) { m.ID, m.Dir = "r1", dir })
	if got := clustertest.UserDump(t, c2.Members[0].DB); !bytes.Equal(got, want) {
		t.Fatalf("the restored node holds other rows than the cluster:\n%.1000s\n--- want\n%.1000s", got, want)
	}

	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 300 {
		t.Fatalf("the session after the backup: %d rows, %v", n, err)
	}
}

// A passphrase key file: the passphrase goes to the member, which encrypts
// with it; the backup opens with the same file. A key file that is
// neither fails before anything is sent.
func TestRemoteBackupPassphrase(t *testing.T) {
	ctx := context.Background()
	c := clustertest.New(t, 3)
	fillItems(t, c, 20, 10)
	_, client := remoteBackupClient(t, c, c.Leader())
	keyFile := filepath.Join(t.TempDir(), "pass.txt")
	os.WriteFile(keyFile, []byte("a long remote passphrase\n"), 0o600)
	dest := t.TempDir()
	info, err := client.Backup(ctx, dest, hiqlite.BackupOptions{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := backup.LoadIdentities(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := backup.Verify(ctx, backup.NewDirStore(dest), info.Name, ids, t.TempDir()); err != nil || !h.Encrypted {
		t.Fatalf("verify: %+v, %v", h, err)
	}
	if _, err := client.Backup(ctx, dest, hiqlite.BackupOptions{Recipients: []string{"age1bad"}}); err == nil || !strings.Contains(err.Error(), `"age1bad"`) {
		t.Errorf("a bad recipient: %v", err)
	}
	if _, err := client.Backup(ctx, "", hiqlite.BackupOptions{}); err == nil || !strings.Contains(err.Error(), "no destination") {
		t.Errorf("no destination: %v", err)
	}
}

// A backup cancelled while its chunks stream leaves no object in the
// destination; the member stops, the pool's session stays usable, and the
// next backup succeeds. A member that dies mid-backup gives an error and
// no object either.
func TestRemoteBackupCancelAndMemberDeath(t *testing.T) {
	c := clustertest.New(t, 3)
	fillItems(t, c, 64, 64<<10) // about 4 MiB of random bytes: many chunks
	f := c.Follower()
	db, client := remoteBackupClient(t, c, f)
	db.SetMaxOpenConns(1)
	dest := t.TempDir()
	store := backup.NewDirStore(dest)
	noObject := func(what string) {
		t.Helper()
		objs, err := store.List(context.Background())
		if err != nil || len(objs) != 0 {
			t.Fatalf("%s: the destination lists %v, %v; want nothing", what, objs, err)
		}
		if entries, _ := os.ReadDir(dest); len(entries) != 0 {
			t.Errorf("%s: the destination directory holds %v (a temporary left?)", what, entries)
		}
	}

	session := func() uint64 {
		t.Helper()
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var id uint64
		conn.Raw(func(dc any) error { id = hiqlite.RemoteSession(dc); return nil })
		return id
	}
	before := session()

	// Cancelled at the third chunk: the object is being written.
	ctx, cancel := context.WithCancel(context.Background())
	chunks := 0
	_, err := client.Backup(ctx, dest, hiqlite.BackupOptions{Progress: func(read, size int64) {
		if chunks++; chunks == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled backup: %v, want context.Canceled", err)
	}
	noObject("after a cancelled backup")
	if after := session(); after != before {
		t.Errorf("the cancelled backup's session was dropped (session %x, then %x): it should stay usable", before, after)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM items`).Scan(&n); err != nil || n != 64 {
		t.Fatalf("the session after a cancelled backup: %d rows, %v", n, err)
	}
	info, err := client.Backup(context.Background(), dest, hiqlite.BackupOptions{})
	if err != nil {
		t.Fatalf("a backup after a cancelled one: %v", err)
	}
	if err := store.Remove(context.Background(), info.Name); err != nil {
		t.Fatal(err)
	}

	// The member dies under the backup (the client knows only it). Four
	// times the data first: on a loaded machine, 4 MiB fit in the sockets'
	// buffers and reached the client whole before the member was gone.
	lead := c.Members[c.Leader()].DB
	for range 192 {
		mustExec(t, lead, `INSERT INTO items(name, data) VALUES ('more', randomblob(65536))`)
	}
	c.EnsureSame()
	var kill sync.Once
	killed := make(chan struct{})
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = client.Backup(ctx, dest, hiqlite.BackupOptions{Progress: func(read, size int64) {
		kill.Do(func() {
			go func() { // not on the reading goroutine: Kill waits for the session
				defer close(killed)
				c.Kill(f)
			}()
		})
	}})
	if err == nil {
		t.Fatal("a backup whose member died succeeded")
	}
	<-killed
	if !strings.Contains(err.Error(), "the session with the member broke") {
		t.Errorf("a backup whose member died: %v, want the session broke", err)
	}
	noObject("after the member died")
}

// With an S3 server (HIQLITE_S3_SERVER or versitygw on PATH), a remote
// client backs up into a bucket with its own AWS variables.
func TestRemoteBackupS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "remote")
	srv.Setenv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := clustertest.New(t, 3)
	fillItems(t, c, 100, 1000)
	_, client := remoteBackupClient(t, c, c.Follower())
	const dest = "s3://remote/from-client"
	info, err := client.Backup(ctx, dest, hiqlite.BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := backup.OpenStore(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Verify(ctx, store, info.Name, nil, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if !srv.Exists(t, "remote", "from-client/"+info.Name) {
		t.Errorf("%s is not in the bucket under the prefix", info.Name)
	}
}

// Backups through a remote client, whole and cancelled, leave no goroutine
// behind on the client or on the member once the client is closed.
func TestRemoteBackupLeavesNoGoroutine(t *testing.T) {
	c := clustertest.New(t, 1)
	fillItems(t, c, 32, 64<<10)
	db, err := sql.Open(hiqlite.DriverName, c.RemoteDSN())
	if err != nil {
		t.Fatal(err)
	}
	client, err := hiqlite.ClientOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	if _, err := client.Backup(context.Background(), dest, hiqlite.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = client.Backup(ctx, dest, hiqlite.BackupOptions{Progress: func(read, size int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled backup: %v", err)
	}
	db.Close()
	// The goroutines of sessions and backups, not the node's own (which
	// come and go with its timers).
	var stacks []byte
	waitfor.Cond(t, "the goroutines of the closed client, its sessions and backups to end", 10*time.Second, func() bool {
		buf := make([]byte, 4<<20)
		stacks = buf[:runtime.Stack(buf, true)]
		for _, f := range []string{"hiqlite.(*clientSession)", "hiqlite.(*Node).serveClient", "hiqlite.(*remoteConn)", "backup.Take", "backup.Encode", "hiqlite.(*chunkStore)"} {
			if bytes.Contains(stacks, []byte(f)) {
				return false
			}
		}
		return true
	})
}
