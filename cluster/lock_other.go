//go:build !unix

package cluster

import (
	"os"
	"path/filepath"
)

// lockDir on systems without flock only creates the LOCK file: there, two
// processes must not open one DATA_DIR.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, privateFile)
}

func unlockDir(f *os.File) error { return f.Close() }
