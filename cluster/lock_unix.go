//go:build unix

package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// lockDir takes an exclusive advisory lock on dir's LOCK file, so that a
// second process opening the same DATA_DIR fails at once instead of
// corrupting the log or the database. The lock dies with the process.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, privateFile)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("hiqlite: data dir %s is in use by another process: %w", dir, nodeerr.ErrLocked)
		}
		return nil, fmt.Errorf("hiqlite: lock data dir %s: %w", dir, err)
	}
	return f, nil
}

// unlockDir releases the lock explicitly before closing: a child process
// forked by this one (os/exec) shares the open file description between
// fork and exec, and a lock released by close alone would stay held by that
// copy for a moment, failing a reopen of the same DATA_DIR with ErrLocked.
func unlockDir(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return errors.Join(err, f.Close())
}
