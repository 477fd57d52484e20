package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite/replication"
)

// Object names: hiqlite-<UTC yyyymmddThhmmssZ>-<index, 20 digits>-<node>.hqb,
// so that the names of one destination sort by time, then index.
const (
	namePrefix = "hiqlite-"
	nameSuffix = ".hqb"
	timeLayout = "20060102T150405Z"
)

var nameRE = regexp.MustCompile(`^hiqlite-[0-9]{8}T[0-9]{6}Z-[0-9]{20}-[A-Za-z0-9._-]{1,64}\.hqb$`)

// ObjectName is the name of h's backup.
func ObjectName(h Header) string {
	return fmt.Sprintf("%s%s-%020d-%s%s", namePrefix, h.Time.UTC().Format(timeLayout), h.Index, h.Node, nameSuffix)
}

// IsBackupName reports whether name is a name ObjectName makes.
func IsBackupName(name string) bool { return nameRE.MatchString(name) }

// Backups returns the objects of s named as backups, oldest first.
func Backups(ctx context.Context, s Store) ([]Object, error) {
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, o := range all {
		if IsBackupName(o.Name) {
			out = append(out, o)
		}
	}
	return out, nil
}

// Newest returns the name of the newest backup in s.
func Newest(ctx context.Context, s Store) (string, error) {
	objs, err := Backups(ctx, s)
	if err != nil {
		return "", err
	}
	if len(objs) == 0 {
		return "", fmt.Errorf("hiqlite: backup: no backup in %s (names like hiqlite-20260101T000000Z-...-node.hqb)", s)
	}
	return objs[len(objs)-1].Name, nil
}

// Prune removes the oldest backups of s beyond the keep newest ones, and
// returns the names removed. It never removes spare, the backup just taken:
// names sort by the clock of the node that took each, and a node whose
// clock runs behind the others' would otherwise find its new backup the
// oldest.
func Prune(ctx context.Context, s Store, keep int, spare string) ([]string, error) {
	objs, err := Backups(ctx, s)
	if err != nil {
		return nil, err
	}
	var removed []string
	for i := 0; i < len(objs)-keep; i++ {
		if objs[i].Name == spare {
			continue
		}
		if err := s.Remove(ctx, objs[i].Name); err != nil {
			return removed, err
		}
		removed = append(removed, objs[i].Name)
	}
	return removed, nil
}

// Info describes a backup taken.
type Info struct {
	Name     string
	Index    uint64
	Term     uint64
	Size     int64 // bytes of the object
	Duration time.Duration
}

// Take writes the database copy c to s as a new backup object of node,
// encrypted to recipients when there are any. The object streams from the
// copy's file through the format's encoder into the store's Put (an
// io.Pipe between them): memory stays bounded.
//
// progress, when not nil, is called on the encoder's goroutine with the
// bytes of the copy read so far and its size, as the encoder reads.
func Take(ctx context.Context, s Store, c *replication.Copy, cluster, node string, recipients []age.Recipient, progress func(read, size int64)) (Info, error) {
	start := time.Now()
	h := Header{Cluster: cluster, Node: node, Index: c.Index, Term: c.Term, Time: start.UTC().Truncate(time.Second), SchemaHash: c.SchemaHash}
	info := Info{Name: ObjectName(h), Index: c.Index, Term: c.Term}
	f, err := os.Open(c.Path)
	if err != nil {
		return info, err
	}
	defer f.Close()
	var src io.Reader = f
	if progress != nil {
		fi, err := f.Stat()
		if err != nil {
			return info, err
		}
		src = &copyProgress{r: f, size: fi.Size(), fn: progress}
	}
	pr, pw := io.Pipe()
	cw := &byteCounter{w: pw}
	done := make(chan error, 1)
	go func() {
		err := Encode(ctx, cw, h, src, recipients)
		pw.CloseWithError(err)
		done <- err
	}()
	perr := s.Put(ctx, info.Name, pr)
	pr.CloseWithError(errors.New("hiqlite: backup: the store stopped reading"))
	eerr := <-done
	if perr != nil {
		return info, fmt.Errorf("hiqlite: backup to %s: %w", s, perr)
	}
	if eerr != nil {
		return info, fmt.Errorf("hiqlite: backup to %s: %w", s, eerr)
	}
	info.Size = cw.n
	info.Duration = time.Since(start)
	return info, nil
}

type copyProgress struct {
	r    io.Reader
	n    int64
	size int64
	fn   func(read, size int64)
}

func (p *copyProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.fn(p.n, p.size)
	return n, err
}

type byteCounter struct {
	w io.Writer
	n int64
}

func (c *byteCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadInfo reads the header of the object name in s.
func ReadInfo(ctx context.Context, s Store, name string) (Header, error) {
	rc, err := s.Open(ctx, name)
	if err != nil {
		return Header{}, err
	}
	defer rc.Close()
	h, err := ReadHeader(rc)
	if err != nil {
		return h, fmt.Errorf("%s: %w", name, err)
	}
	return h, nil
}

// Extract decodes the object name of s into a new file in dir (its name
// starts with pattern, as os.CreateTemp takes it), and checks it all: the
// checksum, PRAGMA integrity_check and the schema hash of the header. It
// returns the header and the file; on error no file is left.
func Extract(ctx context.Context, s Store, name string, identities []age.Identity, dir, pattern string) (_ Header, path string, err error) {
	rc, err := s.Open(ctx, name)
	if err != nil {
		return Header{}, "", err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return Header{}, "", err
	}
	path = f.Name()
	defer func() {
		if err != nil {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				os.Remove(path + suffix)
			}
			path = ""
		}
	}()
	h, err := Decode(ctx, rc, identities, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return h, path, fmt.Errorf("%s: %w", name, err)
	}
	sum, err := replication.CheckDatabase(path)
	if err != nil {
		return h, path, fmt.Errorf("%s: %w: the database in it fails its integrity check: %w", name, ErrDamaged, err)
	}
	if sum != h.SchemaHash {
		return h, path, fmt.Errorf("%s: %w: the schema hash %x of the database differs from the header's %x", name, ErrDamaged, sum[:8], h.SchemaHash[:8])
	}
	return h, path, nil
}

// Verify reads the whole object name of s as a restore would (into a
// temporary file in tmpDir, removed after) and checks it.
func Verify(ctx context.Context, s Store, name string, identities []age.Identity, tmpDir string) (Header, error) {
	h, path, err := Extract(ctx, s, name, identities, tmpDir, "hiqlite-verify-*.db")
	if err != nil {
		return h, err
	}
	return h, os.Remove(path)
}

// NodeOf returns the node id in a backup object's name, "" if the name is
// not one.
func NodeOf(name string) string {
	if !IsBackupName(name) {
		return ""
	}
	rest := strings.TrimSuffix(name, nameSuffix)
	// hiqlite-<16 time>-<20 index>-<node>
	return rest[len(namePrefix)+len(timeLayout)+1+20+1:]
}

// TimeOf returns when the backup object name was taken, zero if the name
// is not one.
func TimeOf(name string) time.Time {
	if !IsBackupName(name) {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, name[len(namePrefix):len(namePrefix)+len(timeLayout)])
	if err != nil {
		return time.Time{}
	}
	return t
}
