package hiqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/wire"
)

// A remote client's backup: the client asks its member over the session
// (wire.ClientBackup); the member copies its database as Node.Backup does
// and streams the backup object back in BackupChunk frames, which the
// client pipes into the destination store's Put, checking the object's
// checksum as it passes. The object therefore lands on the client's side
// (its directory, or S3 with its AWS variables), and only whole and sound.

// backupChunkSize bounds the bytes of one BackupChunk: with the
// connection's buffers, what a backup holds in memory on either side.
const backupChunkSize = 256 << 10

// Backup takes a backup of the database of a member of the cluster and
// writes it to dest, on this side: a directory path (or file:// URL) of
// this machine, or an s3:// URL, with this process's AWS variables. The
// member takes it as Node.Backup does (any member: the one this client's
// session is on) and streams the object here; the object appears in dest
// only once it arrived whole and its checksum holds. Cancelling ctx stops
// the member's work and leaves no object.
//
// opts.KeyFile is read here: the public keys of its age keys go to the
// member, which encrypts to them (never a secret key); a passphrase key
// file's passphrase is sent to the member over the session (authenticated
// by the cluster secret, and encrypted when the client uses TLS), which
// encrypts with it and forgets it. opts.Progress reports the member's
// reading of its copy.
func (c *Client) Backup(ctx context.Context, dest string, opts BackupOptions) (BackupInfo, error) {
	if dest == "" {
		return BackupInfo{}, errors.New("hiqlite: Client.Backup: no destination given (a directory or s3:// URL of this side)")
	}
	req := &wire.ClientBackup{}
	if opts.KeyFile != "" {
		rs, pass, err := backup.RemoteKeys(opts.KeyFile)
		if err != nil {
			return BackupInfo{}, err
		}
		req.Recipients, req.Passphrase = rs, pass
	}
	req.Recipients = append(req.Recipients, opts.Recipients...)
	// The member checks them too; here the error names the option.
	if _, err := backup.ParseRecipients(req.Recipients, req.Passphrase); err != nil {
		return BackupInfo{}, fmt.Errorf("hiqlite: Client.Backup: %w", err)
	}
	store, err := backup.OpenStore(ctx, dest)
	if err != nil {
		return BackupInfo{}, err
	}
	start := time.Now()
	for try := 0; ; try++ {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			return BackupInfo{}, err
		}
		var info BackupInfo
		err = conn.Raw(func(dc any) error {
			var err error
			info, err = dc.(*remoteConn).backup(ctx, req, store, opts.Progress)
			return err
		})
		conn.Close()
		if errors.Is(err, driver.ErrBadConn) && try < 2 {
			continue // nothing was sent: another connection
		}
		info.Duration = time.Since(start)
		return info, err
	}
}

// backup runs one backup over the session (see Client.Backup).
func (c *remoteConn) backup(ctx context.Context, req *wire.ClientBackup, store backup.Store, progress func(read, size int64)) (BackupInfo, error) {
	if c.bad || c.nc == nil {
		return BackupInfo{}, driver.ErrBadConn
	}
	if c.rows != nil {
		c.rows.detach()
	}
	if err := ctx.Err(); err != nil {
		return BackupInfo{}, err
	}
	if d, ok := ctx.Deadline(); ok {
		req.Timeout = max(time.Until(d), time.Nanosecond)
	}
	if err := wire.WriteMessage(c.w, req); err != nil || c.w.Flush() != nil {
		// A frame that did not go out whole is never run.
		c.close()
		c.bad = true
		return BackupInfo{}, driver.ErrBadConn
	}
	s := &chunkStream{c: c, progress: progress}
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			if wire.WriteMessage(c.w, &wire.ClientCancel{}) != nil || c.w.Flush() != nil {
				c.nc.SetReadDeadline(time.Unix(1, 0))
				return
			}
			c.nc.SetReadDeadline(time.Now().Add(cancelWait))
		})
	}
	stop := context.AfterFunc(ctx, cancel)
	var perr error
	s.next()
	switch {
	case s.err != nil:
	case s.name == "" || s.done != nil:
		s.fail(errors.New("the member's answer does not start with a chunk naming the object"))
	case !backup.IsBackupName(s.name):
		// A name is a file name in a directory store: only a backup's.
		s.fail(fmt.Errorf("the member names the object %q, not a backup's name", s.name))
	default:
		perr = store.Put(ctx, s.name, backup.CheckedStream(s))
	}
	if !s.ended() {
		// Put stopped first: stop the member, and read to the end of
		// its answer so that the session stays usable.
		cancel()
		for !s.ended() {
			s.buf = nil
			s.next()
		}
	}
	if !stop() {
		once.Do(func() {}) // wait for the cancel, if it runs
	}
	if s.broken {
		c.close()
		c.bad = true
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	switch {
	case perr != nil:
		if ctx.Err() != nil {
			return BackupInfo{}, fmt.Errorf("hiqlite: remote backup to %s: %w", store, ctx.Err())
		}
		return BackupInfo{}, perr
	case s.err != nil:
		if s.broken && ctx.Err() != nil {
			return BackupInfo{}, fmt.Errorf("%w (%w)", s.err, ctx.Err())
		}
		return BackupInfo{}, ctxError(ctx, s.err)
	}
	d := s.done
	return BackupInfo{Name: d.Name, Index: d.Index, Term: d.Term, Size: d.Size}, nil
}

// chunkStream reads the member's answer to a ClientBackup: the chunks'
// bytes, then io.EOF at BackupDone, or the member's error.
type chunkStream struct {
	c        *remoteConn
	progress func(read, size int64)
	name     string
	buf      []byte // what is left of the current chunk
	n        int64  // bytes of the chunks so far
	done     *wire.BackupDone
	err      error // the member's, or the session's failure
	broken   bool  // the session failed: no more frames of it
}

// ended reports whether the member's answer is over, or can no longer be
// read.
func (s *chunkStream) ended() bool { return s.done != nil || s.err != nil }

func (s *chunkStream) fail(err error) {
	s.err = fmt.Errorf("hiqlite: remote backup: %w", err)
	s.broken = true
}

func (s *chunkStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.done != nil {
			return 0, io.EOF
		}
		if s.err != nil {
			return 0, s.err
		}
		s.next()
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// next reads the member's next frame.
func (s *chunkStream) next() {
	m, err := wire.ReadMessage(s.c.r)
	if err != nil {
		if err == io.EOF {
			// Not the object's end: the member's.
			err = io.ErrUnexpectedEOF
		}
		s.fail(fmt.Errorf("the session with the member broke: %w", err))
		return
	}
	switch m := m.(type) {
	case *wire.BackupChunk:
		if s.name == "" {
			s.name = m.Name
		}
		s.buf = m.Data
		s.n += int64(len(m.Data))
		if s.progress != nil && m.Size > 0 {
			s.progress(m.Read, m.Size)
		}
	case *wire.BackupDone:
		if m.Name != s.name || m.Size != s.n {
			s.err = fmt.Errorf("hiqlite: remote backup: %w: the member sent %d bytes of %s, but ends %s of %d bytes", backup.ErrDamaged, s.n, s.name, m.Name, m.Size)
			return
		}
		s.done = m
	case *wire.ErrorResponse:
		s.err = m.Err
	default:
		s.fail(fmt.Errorf("unexpected %s", m.Type()))
	}
}

// backup takes a backup for the remote client and streams it back (see
// wire.ClientBackup). It returns an error only when the session can go on
// no longer.
func (s *clientSession) backup(req *wire.ClientBackup) error {
	s.closeRows()
	ctx := s.ctx
	var cancel context.CancelFunc
	if req.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	s.started(cancel)
	defer s.settled()
	defer cancel()
	recipients, err := backup.ParseRecipients(req.Recipients, req.Passphrase)
	if err != nil {
		return s.send(&wire.ErrorResponse{Err: err})
	}
	// A write blocked on a client that no longer reads ends with the
	// session (the client left, or the node closes).
	unblock := context.AfterFunc(s.ctx, func() { s.nc.SetWriteDeadline(time.Unix(1, 0)) })
	defer unblock()
	cs := &chunkStore{s: s}
	info, err := s.n.backupTo(ctx, cs, recipients, cs.setProgress)
	if cs.sendErr != nil {
		return cs.sendErr
	}
	if err != nil {
		return s.send(&wire.ErrorResponse{Err: err})
	}
	return s.send(&wire.BackupDone{Name: info.Name, Index: info.Index, Term: info.Term, Size: info.Size})
}

// chunkStore is the backup.Store through which a member streams a backup
// object to its remote client: Put sends the object's bytes as
// BackupChunk frames, the first naming it.
type chunkStore struct {
	s          *clientSession
	read, size atomic.Int64
	sendErr    error // the session failed under a chunk
}

func (cs *chunkStore) setProgress(read, size int64) {
	cs.read.Store(read)
	cs.size.Store(size)
}

func (cs *chunkStore) Put(ctx context.Context, name string, r io.Reader) error {
	buf := make([]byte, backupChunkSize)
	first := true
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || first {
			m := &wire.BackupChunk{Data: buf[:n], Read: cs.read.Load(), Size: cs.size.Load()}
			if first {
				m.Name, first = name, false
			}
			if serr := cs.s.send(m); serr != nil {
				cs.sendErr = serr
				return serr
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		case err != nil:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		}
	}
}

func (cs *chunkStore) Open(context.Context, string) (io.ReadCloser, error) {
	return nil, errors.New("hiqlite: a remote client's backup stream cannot be read back")
}

func (cs *chunkStore) List(context.Context) ([]backup.Object, error) { return nil, nil }

func (cs *chunkStore) Remove(context.Context, string) error { return nil }

func (cs *chunkStore) String() string { return "the remote client" }
