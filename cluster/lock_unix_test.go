//go:build unix

package cluster

import (
	"errors"
	"os/exec"
	"sync"
	"testing"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Closing a node and opening its DATA_DIR again in the same process works
// while the process starts children: they share the lock's open file
// description between fork and exec.
func TestLockReopenWhileForking(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to fork")
	}
	dir := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			exec.Command(truePath).Run()
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for i := range 100 {
		f, err := lockDir(dir)
		if err != nil {
			if errors.Is(err, nodeerr.ErrLocked) {
				t.Fatalf("cycle %d: reopen failed while forking: %v", i, err)
			}
			t.Fatal(err)
		}
		if err := unlockDir(f); err != nil {
			t.Fatal(err)
		}
	}
}
