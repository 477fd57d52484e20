// Package backup takes, stores, lists, verifies and restores backups of a
// node's SQLite database.
package backup

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Store is a place that holds backups: a directory, or a bucket of an
// S3-compatible object store. A Store is safe for concurrent use.
type Store interface {
	// Put writes r as the object name. The object becomes visible under
	// name only once all of r is stored: a failed or interrupted Put (an
	// error, a cancelled ctx, a crash of the process) never leaves an
	// object called name behind, at most a temporary one that List does
	// not show.
	Put(ctx context.Context, name string, r io.Reader) error
	// Open reads the object name.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the whole objects in the store, oldest name first.
	List(ctx context.Context) ([]Object, error)
	// Remove deletes the object name.
	Remove(ctx context.Context, name string) error
	// String names the store for messages, without credentials.
	String() string
}

// Object describes one stored object.
type Object struct {
	Name     string
	Size     int64
	Modified time.Time
}

// opener opens a store from a destination URL of its scheme.
type opener func(ctx context.Context, u *url.URL) (Store, error)

// schemes maps a destination's URL scheme to its opener; each kind of store
// registers itself from its own file.
var schemes = map[string]opener{}

// OpenStore opens the store that dest names: a directory path (or a
// file:// URL) or an s3://bucket/prefix URL.
func OpenStore(ctx context.Context, dest string) (Store, error) {
	if dest == "" {
		return nil, fmt.Errorf("hiqlite: backup: empty destination")
	}
	scheme, _, hasScheme := strings.Cut(dest, "://")
	if !hasScheme {
		// A plain path is taken as it is: as a URL, "%20" or "#" in it
		// would name another directory.
		return NewDirStore(dest), nil
	}
	u, err := url.Parse(dest)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: backup: destination %q: %w", redactURL(dest), err)
	}
	open, ok := schemes[strings.ToLower(scheme)]
	if !ok {
		return nil, fmt.Errorf("hiqlite: backup: destination %q: unknown scheme %q (want a directory path, file:// or s3://)", redactURL(dest), scheme)
	}
	return open(ctx, u)
}

// redactURL hides a password a destination URL may carry.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
