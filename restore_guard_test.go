package hiqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/cluster"
	"github.com/hiqlite/hiqlite/internal/backup"
)

// TestRestoreGuards: a restore that did not finish leaves a marker that a
// node refuses to start on (it would start empty, or with the database and
// no Raft state), and a backup whose header names another index than its
// database's is refused (a new log started before the database's applied
// index would have its first writes skipped).
func TestRestoreGuards(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("hiqlite", filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `CREATE TABLE g(x)`)
	mustExec(t, db, `INSERT INTO g VALUES (1)`)
	n, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	info, err := n.Backup(ctx, dest, hiqlite.BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := backup.NewDirStore(dest)

	// An index the database does not have.
	tmp := t.TempDir()
	_, path, err := backup.Extract(ctx, store, info.Name, nil, tmp, "x-*.db")
	if err != nil {
		t.Fatal(err)
	}
	seeded := filepath.Join(t.TempDir(), "seeded")
	err = cluster.Seed(ctx, seeded, n.ID(), path, info.Index-1)
	if err == nil || !strings.Contains(err.Error(), "applied index") {
		t.Fatalf("seed at index %d of a database at %d: %v, want a refusal", info.Index-1, info.Index, err)
	}

	// A restore cut short: the marker is there.
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, store, info.Name, dir, "", nil); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "restore-incomplete")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := sql.Open("hiqlite", dir)
	if err == nil {
		err = r.Ping()
		r.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "unfinished restore") {
		t.Fatalf("open of a dir with an unfinished restore: %v, want a refusal", err)
	}
	os.Remove(marker)
	r, err = sql.Open("hiqlite", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var x int
	if err := r.QueryRow(`SELECT x FROM g`).Scan(&x); err != nil || x != 1 {
		t.Fatalf("restored row: %d, %v", x, err)
	}
}
