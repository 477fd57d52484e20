package hiqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite/internal/backup"
)

// BackupOptions says how Node.Backup encrypts. With neither field set, the
// backup is compressed but not encrypted.
type BackupOptions struct {
	// KeyFile is a file of age keys, one per line (public keys "age1..."
	// or secret keys "AGE-SECRET-KEY-1...", # comments allowed), or else a
	// passphrase on its first line. The backup is encrypted to those keys
	// or that passphrase.
	KeyFile string
	// Recipients are age public keys ("age1...") to encrypt to, besides
	// KeyFile's. A passphrase cannot be combined with them.
	Recipients []string
	// Progress, when set, is called as the backup streams out, with the
	// bytes of the database copy read so far and the copy's size, on a
	// goroutine of the backup (often: keep it quick). The copy itself,
	// before, is not reported.
	Progress func(read, size int64)
}

// BackupInfo describes a backup taken.
type BackupInfo struct {
	// Name is the object's name in the destination:
	// hiqlite-<UTC yyyymmddThhmmssZ>-<index>-<node>.hqb.
	Name string
	// Index and Term are the Raft index and term the backup holds the
	// database as of.
	Index, Term uint64
	// Size is the object's size in bytes.
	Size int64
	// Duration is how long the backup took, the copy included.
	Duration time.Duration
}

// Backup writes a backup of the node's database to dest, a directory path
// (or file:// URL) or an s3:// URL: the database as of the node's applied
// index, from a read snapshot, so writes go on meanwhile. Any node can take
// one; the object says which node and index. An empty dest is the DSN's
// _backup, with its _backup_key_file unless opts names keys. See the
// README's Backups section for the format and restoring.
func (n *Node) Backup(ctx context.Context, dest string, opts BackupOptions) (BackupInfo, error) {
	if dest == "" {
		if n.backupDest == "" {
			return BackupInfo{}, errors.New("hiqlite: Backup: no destination given and the DSN has no _backup")
		}
		dest = n.backupDest
		if opts.KeyFile == "" && len(opts.Recipients) == 0 {
			opts.KeyFile = n.backupKeyFile
		}
	}
	recipients, err := opts.recipients()
	if err != nil {
		return BackupInfo{}, err
	}
	store, err := backup.OpenStore(ctx, dest)
	if err != nil {
		return BackupInfo{}, err
	}
	return n.backupTo(ctx, store, recipients, opts.Progress)
}

func (n *Node) backupTo(ctx context.Context, store backup.Store, recipients []age.Recipient, progress func(read, size int64)) (BackupInfo, error) {
	start := time.Now()
	// A backup is a read: it holds what this node acknowledged.
	if err := n.c.WaitOwnWrites(ctx); err != nil {
		return BackupInfo{}, err
	}
	c, err := n.c.CopyDatabase(ctx)
	if err != nil {
		return BackupInfo{}, err
	}
	defer c.Remove()
	info, err := backup.Take(ctx, store, c, "", n.ID(), recipients, progress)
	return BackupInfo{Name: info.Name, Index: info.Index, Term: info.Term, Size: info.Size, Duration: time.Since(start)}, err
}

func (o BackupOptions) recipients() ([]age.Recipient, error) {
	var out []age.Recipient
	if o.KeyFile != "" {
		rs, err := backup.LoadRecipients(o.KeyFile)
		if err != nil {
			return nil, err
		}
		out = rs
	}
	for i, s := range o.Recipients {
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: BackupOptions.Recipients[%d] %q: %w", i, s, err)
		}
		out = append(out, r)
	}
	return out, nil
}
