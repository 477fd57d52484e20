package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite/cluster"
)

// Restore makes dir, which must be empty or absent, the data directory of
// node id (the backup's node when id is empty) holding exactly the
// database of the backup name in s: a node started on dir forms a new
// cluster of its own with that data, and nodes that join it get it (see
// cluster.Seed). The object is decoded into a temporary file of dir and
// checked whole (checksum, integrity_check, schema hash) before anything
// takes its place; on any error dir is left as it was found.
func Restore(ctx context.Context, s Store, name, dir, id string, identities []age.Identity) (_ Header, err error) {
	created, err := prepareEmpty(dir)
	if err != nil {
		return Header{}, err
	}
	defer func() {
		if err != nil {
			clean(dir, created)
		}
	}()
	// restore-*.db: what a node's start removes, should this process die.
	h, path, err := Extract(ctx, s, name, identities, dir, "restore-*.db")
	if err != nil {
		return h, err
	}
	if id == "" {
		id = h.Node
	}
	if err := cluster.Seed(ctx, dir, id, path, h.Index); err != nil {
		os.Remove(path)
		return h, fmt.Errorf("hiqlite: restore into %s: %w", dir, err)
	}
	return h, nil
}

// prepareEmpty creates dir (0700) or checks that it is empty, and reports
// whether it created it.
func prepareEmpty(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := cluster.MakePrivateDir(dir); err != nil {
			return false, fmt.Errorf("hiqlite: restore: create %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("hiqlite: restore: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("hiqlite: restore: data dir %s is not empty (it holds %s): restore only into an empty or new directory", dir, entries[0].Name())
	}
	return false, cluster.MakePrivateDir(dir)
}

// clean undoes a failed restore: it removes what it put in dir, and dir
// if it created it.
func clean(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
