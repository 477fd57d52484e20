package hiqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/minio/minio-go/v7"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/s3test"
)

// A running 3-node cluster backs up to a real S3 server (versitygw),
// configured as users do (an s3:// URL and the AWS environment variables);
// the backup restores from S3 into a new 3-node cluster that holds exactly
// the rows backed up. A backup into a missing bucket fails clearly and
// leaves nothing.
func TestBackupRestoreS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	srv.Setenv(t) // not parallel: the AWS variables are the process's
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const dest = "s3://backups/prod/nightly"

	c := clustertest.New(t, 3)
	lead := c.Members[c.Leader()].DB
	mustExec(t, lead, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, data BLOB, at DEFAULT CURRENT_TIMESTAMP)`)
	for i := range 300 {
		mustExec(t, lead, `INSERT INTO items(name, data) VALUES (?, randomblob(200))`, fmt.Sprintf("row-%d", i))
	}
	c.EnsureSame()
	want := clustertest.UserDump(t, lead)

	keyFile, id := writeIdentity(t)
	f := c.Members[c.Follower()]
	info, err := f.Node.Backup(ctx, dest, hiqlite.BackupOptions{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size == 0 || info.Index == 0 {
		t.Fatalf("backup info %+v", info)
	}

	// The object is in the bucket under the prefix, whole, encrypted, and
	// the only thing there: no temporary, no incomplete upload.
	store, err := backup.OpenStore(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Name != info.Name || objs[0].Size != info.Size {
		t.Fatalf("List = %+v; want the one backup %s of %d bytes", objs, info.Name, info.Size)
	}
	if newest, err := backup.Newest(ctx, store); err != nil || newest != info.Name {
		t.Fatalf("Newest = %q, %v; want %q", newest, err, info.Name)
	}
	cl := srv.Client(t)
	obj, err := cl.GetObject(ctx, "backups", "prod/nightly/"+info.Name, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != info.Size || bytes.Contains(raw, []byte("row-17")) {
		t.Fatalf("the object has %d bytes (want %d), or holds row text in plain", len(raw), info.Size)
	}
	for up := range cl.ListIncompleteUploads(ctx, "backups", "prod/", true) {
		t.Errorf("an incomplete upload is left: %+v", up)
	}

	// Restore from S3 and boot a new cluster from it.
	if _, err := backup.Verify(ctx, store, info.Name, []age.Identity{id}, t.TempDir()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, store, info.Name, dir, "r1", []age.Identity{id}); err != nil {
		t.Fatal(err)
	}
	bootRestored(t, dir, "r1", want)

	// A missing bucket: a clear error, and nothing written anywhere.
	_, err = f.Node.Backup(ctx, "s3://no-such-bucket/x", hiqlite.BackupOptions{})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "NoSuchBucket") ||
		!strings.Contains(err.Error(), `"no-such-bucket"`) {
		t.Fatalf("backup into a missing bucket: %v; want NoSuchBucket naming the bucket", err)
	}
	if objs, err := store.List(ctx); err != nil || !slices.Equal(backupNames(objs), []string{info.Name}) {
		t.Fatalf("List after the failed backup = %v, %v", backupNames(objs), err)
	}
}

func backupNames(objs []backup.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return out
}
