package hiqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/backup"
)

// A single node's backup restores into a directory a single node opens
// with the same rows, and goes on from.
func TestBackupRestoreSingle(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("hiqlite", filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID`)
	mustExec(t, db, `INSERT INTO kv VALUES ('a', 1), ('b', x'00ff'), ('c', 2.5), ('d', NULL)`)
	n, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	info, err := n.Backup(ctx, dest, hiqlite.BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `INSERT INTO kv VALUES ('after', 'the backup')`)
	dir := filepath.Join(t.TempDir(), "restored")
	h, err := backup.Restore(ctx, backup.NewDirStore(dest), info.Name, dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Encrypted || h.Node != n.ID() || h.Index != info.Index {
		t.Fatalf("header %+v, info %+v", h, info)
	}
	r, err := sql.Open("hiqlite", dir+"?_node="+n.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	rows, err := r.Query(`SELECT k, typeof(v) FROM kv ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, typ string
		rows.Scan(&k, &typ)
		got = append(got, k+":"+typ)
	}
	rows.Close()
	if strings.Join(got, " ") != "a:integer b:blob c:real d:null" {
		t.Fatalf("restored rows %v", got)
	}
	mustExec(t, r, `INSERT INTO kv VALUES ('e', 5)`)
	rn, _ := hiqlite.NodeOf(ctx, r)
	if rn.AppliedIndex() <= info.Index {
		t.Fatalf("applied index %d after a write, backup at %d", rn.AppliedIndex(), info.Index)
	}
}

// A wrong key, a truncated object and a flipped byte (header, body,
// trailer) are each refused with a clear error, and restore nothing.
func TestRestoreRefusesBadObjects(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("hiqlite", filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `CREATE TABLE t(x)`)
	mustExec(t, db, `INSERT INTO t SELECT 'distinctive-row-text-' || value FROM generate_series(1, 2000)`)
	n, _ := hiqlite.NodeOf(ctx, db)
	keyFile, id := writeIdentity(t)
	dest := t.TempDir()
	info, err := n.Backup(ctx, dest, hiqlite.BackupOptions{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dest, info.Name))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(good, []byte("distinctive-row-text-")) {
		t.Fatal("the encrypted object holds row text")
	}
	other, _ := age.GenerateX25519Identity()
	headerEnd := bytes.Index(good, []byte("age-encryption.org")) // the body starts with age's header
	if headerEnd < 0 {
		t.Fatal("no age header in the object")
	}
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x01
		return b
	}
	for _, tc := range []struct {
		name string
		obj  []byte
		ids  []age.Identity
		want error
		text string
	}{
		{"wrong key", good, []age.Identity{other}, backup.ErrKey, "wrong identity"},
		{"no key", good, nil, backup.ErrKey, "encrypted"},
		{"truncated", good[:len(good)-100], []age.Identity{id}, backup.ErrDamaged, "checksum"},
		{"truncated in the trailer", good[:len(good)-5], []age.Identity{id}, backup.ErrDamaged, "checksum"},
		{"flipped in the header", flip(headerEnd - 3), []age.Identity{id}, backup.ErrDamaged, "checksum"},
		{"flipped in the body", flip(len(good) / 2), []age.Identity{id}, backup.ErrDamaged, "checksum"},
		{"flipped in the trailer", flip(len(good) - 1), []age.Identity{id}, backup.ErrDamaged, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			if err := os.WriteFile(filepath.Join(src, info.Name), tc.obj, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "restored")
			_, err := backup.Restore(ctx, backup.NewDirStore(src), info.Name, dir, "", tc.ids)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), info.Name) {
				t.Fatalf("restore: %v; want %v naming the object and saying %q", err, tc.want, tc.text)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused restore left %s: %v", dir, err)
			}
			// An existing empty directory is left empty.
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if _, err := backup.Restore(ctx, backup.NewDirStore(src), info.Name, dir, "", tc.ids); err == nil {
				t.Fatal("restored")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a refused restore left %v", entries)
			}
		})
	}
}
