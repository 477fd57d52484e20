package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/backup"
)

// cmdBackup runs "hiqlite backup" (take one from a node opened here),
// "hiqlite backup list SRC" and "hiqlite backup verify SRC".
func cmdBackup(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return cmdBackupList(ctx, args[1:], stdout, stderr)
		case "verify":
			return cmdBackupVerify(ctx, args[1:], stdout, stderr)
		}
	}
	fs := newFlagSet("backup", "--dsn DSN|hiqlite://... --to DEST [--key-file FILE] | list SRC | verify SRC [--name OBJ] [--identity FILE]", stderr)
	dsn := fs.String("dsn", "", "the DSN of a member whose data dir no other process holds: DATA_DIR[?param=value&...],\nor a running cluster's, as a remote client: hiqlite://HOST:PORT[,HOST:PORT...]?_secret=...\n(a member takes the backup and streams it here)")
	to := fs.String("to", "", "where to write the backup: a directory, or s3://bucket/prefix (with a remote DSN:\non this machine, with this process's AWS variables)")
	keyFile := fs.String("key-file", "", "encrypt with age: a file of age keys, one per line (age1... public keys or\nAGE-SECRET-KEY-1... secret keys), or else a passphrase on its first line (with a remote\nDSN it is read here: its public keys, or the passphrase, go to the member, which encrypts)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the node to be ready (leader known, caught up),\nor with a remote DSN for a member to accept the session")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsn == "" || *to == "" {
		return &usageError{errors.New("give --dsn DSN and --to DEST (or: backup list SRC, backup verify SRC)")}
	}
	if hiqlite.IsRemoteDSN(*dsn) {
		if _, err := hiqlite.ParseClientDSN(*dsn); err != nil {
			return &usageError{fmt.Errorf("invalid --dsn: %w", err)}
		}
		return remoteBackup(ctx, *dsn, *to, *keyFile, *wait, stdout, stderr)
	}
	if _, err := hiqlite.ParseDSN(*dsn); err != nil {
		return &usageError{fmt.Errorf("invalid --dsn: %w", err)}
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	db, err := openNode(wctx, *dsn)
	if err != nil {
		if errors.Is(err, hiqlite.ErrLocked) {
			return fmt.Errorf("%w\n(if hiqlite serve runs that node, ask it for the backup: curl -X POST -H 'Authorization: Bearer TOKEN' 'http://ADDR/backup?to=DEST')", err)
		}
		return err
	}
	defer db.Close()
	n, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "backing up node %s at applied index %d to %s: copying the database ...\n", n.ID(), n.AppliedIndex(), *to)
	p := startProgress(stderr, "backup")
	info, err := n.Backup(ctx, *to, hiqlite.BackupOptions{KeyFile: *keyFile, Progress: p.set})
	p.stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: index %d, %s, %v\n", info.Name, info.Index, sizeText(info.Size), info.Duration.Round(time.Millisecond))
	return nil
}

// remoteBackup takes a backup through a remote client: a member of the
// cluster takes it and streams it here, into to. Interrupting it (ctx)
// stops the member's work and leaves no object.
func remoteBackup(ctx context.Context, dsn, to, keyFile string, wait time.Duration, stdout, stderr io.Writer) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	db, err := openNode(wctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	client, err := hiqlite.ClientOf(wctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "backing up a member of the cluster through a remote client to %s: the member copies its database ...\n", to)
	p := startProgress(stderr, "backup")
	info, err := client.Backup(ctx, to, hiqlite.BackupOptions{KeyFile: keyFile, Progress: p.set})
	p.stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: index %d, %s, %v\n", info.Name, info.Index, sizeText(info.Size), info.Duration.Round(time.Millisecond))
	return nil
}

// splitSource takes the source, the first argument, off args: "list SRC
// --flag" and "list --flag SRC" both work.
func splitSource(fs *flag.FlagSet, args []string) (string, error) {
	var src string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		src, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", &usageError{errors.New("")}
	}
	rest := fs.Args()
	if src == "" && len(rest) > 0 {
		src, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", &usageError{fmt.Errorf("unexpected argument %q", rest[0])}
	}
	if src == "" {
		return "", &usageError{errors.New("give the source: a directory, or s3://bucket/prefix")}
	}
	return src, nil
}

func cmdBackupList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup list", "SRC", stderr)
	src, err := splitSource(fs, args)
	if err != nil {
		return err
	}
	store, err := backup.OpenStore(ctx, src)
	if err != nil {
		return err
	}
	objs, err := backup.Backups(ctx, store)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		fmt.Fprintf(stderr, "no backup in %s\n", store)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNODE\tINDEX\tTAKEN (UTC)\tSIZE\tENCRYPTED")
	for _, o := range objs {
		h, err := backup.ReadInfo(ctx, store, o.Name)
		if err != nil {
			fmt.Fprintf(tw, "%s\t\t\t\t%s\tunreadable: %v\n", o.Name, sizeText(o.Size), err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\n", o.Name, h.Node, h.Index, h.Time.Format(time.DateTime), sizeText(o.Size), h.Encrypted)
	}
	return tw.Flush()
}

func cmdBackupVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup verify", "SRC [--name OBJ] [--identity FILE]", stderr)
	name := fs.String("name", "", "the object to verify (default: the newest backup in SRC)")
	identity := fs.String("identity", "", "the key file of an encrypted backup: age secret keys, or the passphrase")
	tmp := fs.String("tmp", os.TempDir(), "the directory for the temporary copy of the database, as large as it")
	src, err := splitSource(fs, args)
	if err != nil {
		return err
	}
	store, ids, obj, err := openSource(ctx, src, *name, *identity)
	if err != nil {
		return err
	}
	p := startProgress(stderr, "verifying "+obj)
	h, err := backup.Verify(ctx, progressStore{store, p}, obj, ids, *tmp)
	p.stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (node %s, index %d, taken %s UTC, encrypted %v): checksum, decryption, decompression and integrity_check pass\n",
		obj, h.Node, h.Index, h.Time.Format(time.DateTime), h.Encrypted)
	return nil
}

func cmdRestore(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "--from SRC [--name OBJ] --dir DATA_DIR [--identity FILE] [--node ID]", stderr)
	from := fs.String("from", "", "where the backups are: a directory, or s3://bucket/prefix")
	name := fs.String("name", "", "the object to restore (default: the newest backup in SRC)")
	dir := fs.String("dir", "", "the data directory to create: it must not exist or be empty")
	identity := fs.String("identity", "", "the key file of an encrypted backup: age secret keys, or the passphrase")
	node := fs.String("node", "", "the restored node's id (default: the id of the node that took the backup);\nstart it with this _node, or none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *dir == "" {
		return &usageError{errors.New("give --from SRC and --dir DATA_DIR")}
	}
	store, ids, obj, err := openSource(ctx, *from, *name, *identity)
	if err != nil {
		return err
	}
	p := startProgress(stderr, "restoring "+obj)
	h, err := backup.Restore(ctx, progressStore{store, p}, obj, *dir, *node, ids)
	p.stop()
	if err != nil {
		return err
	}
	id := *node
	if id == "" {
		id = h.Node
	}
	fmt.Fprintf(stdout, "restored %s (index %d, taken %s UTC) into %s as node %s.\n"+
		"Start that node with its _listen/_gossip and _node=%s (or no _node): it forms a new cluster of one\n"+
		"holding exactly this data; other nodes with empty data dirs then join it (_join) and catch up.\n",
		obj, h.Index, h.Time.Format(time.DateTime), *dir, id, id)
	return nil
}

// openSource opens the store src, the identities of identityFile (if
// any) and picks the object: name, or the newest backup.
func openSource(ctx context.Context, src, name, identityFile string) (backup.Store, []age.Identity, string, error) {
	store, err := backup.OpenStore(ctx, src)
	if err != nil {
		return nil, nil, "", err
	}
	var ids []age.Identity
	if identityFile != "" {
		if ids, err = backup.LoadIdentities(identityFile); err != nil {
			return nil, nil, "", err
		}
	}
	if name == "" {
		if name, err = backup.Newest(ctx, store); err != nil {
			return nil, nil, "", err
		}
	}
	return store, ids, name, nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progress prints, every progressEvery while work runs, how many bytes of
// the object (restore, verify) or of the database copy (backup) were read.
type progress struct {
	mu    sync.Mutex
	n     int64
	size  int64
	done  chan struct{}
	wg    sync.WaitGroup
	w     io.Writer
	label string
}

const progressEvery = 2 * time.Second

func startProgress(w io.Writer, label string) *progress {
	p := &progress{done: make(chan struct{}), w: w, label: label}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.mu.Lock()
				n, size := p.n, p.size
				p.mu.Unlock()
				if size > 0 {
					fmt.Fprintf(p.w, "%s: %s of %s read (%.0f%%)\n", p.label, sizeText(n), sizeText(size), 100*float64(n)/float64(size))
				} else {
					fmt.Fprintf(p.w, "%s: %s read\n", p.label, sizeText(n))
				}
			}
		}
	}()
	return p
}

// set records n bytes of size done (BackupOptions.Progress).
func (p *progress) set(n, size int64) {
	p.mu.Lock()
	p.n, p.size = n, size
	p.mu.Unlock()
}

func (p *progress) add(n int) {
	p.mu.Lock()
	p.n += int64(n)
	p.mu.Unlock()
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// progressStore counts the bytes read from the objects it opens.
type progressStore struct {
	backup.Store
	p *progress
}

func (s progressStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if objs, err := s.Store.List(ctx); err == nil {
		for _, o := range objs {
			if o.Name == name {
				s.p.mu.Lock()
				s.p.size = o.Size
				s.p.mu.Unlock()
			}
		}
	}
	rc, err := s.Store.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return progressReader{rc, s.p}, nil
}

type progressReader struct {
	io.ReadCloser
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	r.p.add(n)
	return n, err
}
