package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite/internal/durable"
)

func init() { schemes["file"] = openDir }

// Directory stores keep each object as a file of the directory (0600; the
// directory is created 0700). Put writes a temporary file ".NAME.tmp-RANDOM"
// next to it, syncs it, renames it to NAME and syncs the directory, so an
// object is there whole or not at all, after a crash too. List ignores the
// temporaries (and every name starting with a dot); a Put removes those
// that no Put has written to for staleTemp (left by a crash).
const (
	dirMode   = 0o700
	fileMode  = 0o600
	tempInfix = ".tmp-"
	staleTemp = time.Hour
)

// DirStore is a Store in a directory of the local file system.
type DirStore struct {
	dir string
}

var _ Store = (*DirStore)(nil)

// openDir opens a file:// destination: file:///abs/path, or a relative
// path as OpenStore rewrites one (file://rel/path).
func openDir(_ context.Context, u *url.URL) (Store, error) {
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("hiqlite: backup: directory %q: a directory path takes no user, query or fragment (? and # are not allowed)", u.Redacted())
	}
	path := u.Host + u.Path
	if path == "" {
		return nil, fmt.Errorf("hiqlite: backup: destination %q names no directory", u.Redacted())
	}
	return NewDirStore(path), nil
}

// NewDirStore returns the store of directory dir, created at the first Put.
func NewDirStore(dir string) *DirStore { return &DirStore{dir: filepath.Clean(dir)} }

func (s *DirStore) String() string { return s.dir }

// checkName refuses a name that is not a plain file name of the store.
func checkName(name string) error {
	if name == "" || name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("hiqlite: backup: object name %q: want a plain file name, not starting with a dot", name)
	}
	return nil
}

// Put implements Store.
func (s *DirStore) Put(ctx context.Context, name string, r io.Reader) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, dirMode); err != nil {
		return fmt.Errorf("hiqlite: backup: create %s: %w", s.dir, err)
	}
	s.removeStale(time.Now())
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.dir, "."+name+tempInfix+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("hiqlite: backup: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(f, ctxReader{r, ctx}); err != nil {
		return fmt.Errorf("hiqlite: backup: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("hiqlite: backup: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("hiqlite: backup: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("hiqlite: backup: %w", err)
	}
	if err := durable.SyncDir(s.dir); err != nil {
		return fmt.Errorf("hiqlite: backup: sync %s: %w", s.dir, err)
	}
	return nil
}

// removeStale deletes the temporaries nobody has written to for staleTemp.
func (s *DirStore) removeStale(now time.Time) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !isTemp(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleTemp {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// Open implements Store.
func (s *DirStore) Open(_ context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("hiqlite: backup: %w", err)
	}
	return f, nil
}

// List implements Store.
func (s *DirStore) List(_ context.Context) ([]Object, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: backup: list %w", err)
	}
	var out []Object
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("hiqlite: backup: list %s: %w", s.dir, err)
		}
		out = append(out, Object{Name: e.Name(), Size: fi.Size(), Modified: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Remove implements Store.
func (s *DirStore) Remove(_ context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("hiqlite: backup: %w", err)
	}
	return durable.SyncDir(s.dir)
}
