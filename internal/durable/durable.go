// Package durable writes the small files a node must find again after a
// crash (its id, Raft's stable store, the marker of a corrupt database):
// written whole or not at all, and on disk before the call returns.
package durable

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically and durably: to path+".tmp"
// first, synced, then renamed over path, and the directory synced so the
// rename itself survives a crash. A crash leaves either the old file or
// the new one, never a part of it.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir syncs the directory dir, so that the files created, renamed or
// removed in it stay so after a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
