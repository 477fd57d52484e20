package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// A backup object, version 1:
//
//	"HIQLBKUP"          magic, 8 bytes
//	version             1 byte (1)
//	header length       uvarint, at most maxHeader
//	header              cluster id (string, empty when the cluster has none),
//	                    node id (string), Raft index (uvarint), Raft term
//	                    (uvarint), time (varint, Unix nanoseconds, UTC),
//	                    schema hash (bytes: SHA-256, see replication.SchemaHash),
//	                    flags (byte: flagEncrypted)
//	body                zstd of the database file; with flagEncrypted, that
//	                    zstd stream encrypted with age
//	trailer             SHA-256 of every byte before it, 32 bytes
//
// The header is plain text on purpose: listing and choosing a backup needs
// no key. It tells who took the backup, when, at which index and with
// which schema; the rows are only in the body.
const (
	magic         = "HIQLBKUP"
	formatVersion = 1
	maxHeader     = 64 << 10
	trailerSize   = sha256.Size

	flagEncrypted = 1 << 0
	knownFlags    = flagEncrypted
)

// Errors of reading a backup. Each is wrapped with what was found.
var (
	// ErrNotBackup: the object does not start as a hiqlite backup.
	ErrNotBackup = errors.New("hiqlite: not a hiqlite backup")
	// ErrDamaged: the object is truncated or some byte of it changed (its
	// checksum, or its header, does not hold).
	ErrDamaged = errors.New("hiqlite: backup damaged")
	// ErrKey: the backup is encrypted and no key was given, or none of the
	// keys given opens it.
	ErrKey = errors.New("hiqlite: backup key")
)

// Header is what a backup says of itself, readable without its key.
type Header struct {
	Cluster    string // empty: the cluster has no id
	Node       string
	Index      uint64
	Term       uint64
	Time       time.Time // UTC
	SchemaHash [sha256.Size]byte
	Encrypted  bool
}

// AppendHeader appends the start of a backup: magic, version, header.
func AppendHeader(b []byte, h Header) []byte {
	var p []byte
	p = encoding.AppendString(p, h.Cluster)
	p = encoding.AppendString(p, h.Node)
	p = encoding.AppendUvarint(p, h.Index)
	p = encoding.AppendUvarint(p, h.Term)
	p = encoding.AppendVarint(p, h.Time.UnixNano())
	p = encoding.AppendBytes(p, h.SchemaHash[:])
	var flags byte
	if h.Encrypted {
		flags |= flagEncrypted
	}
	p = append(p, flags)
	b = append(b, magic...)
	b = append(b, formatVersion)
	b = encoding.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// decodeHeader reads the header fields (after the length).
func decodeHeader(p []byte) (Header, error) {
	d := encoding.NewDecoder(p, ErrDamaged)
	var h Header
	h.Cluster = d.String()
	h.Node = d.String()
	h.Index = d.Uvarint()
	h.Term = d.Uvarint()
	h.Time = time.Unix(0, d.Varint()).UTC()
	sum := d.Bytes()
	if d.Err() == nil && len(sum) != sha256.Size {
		d.Fail("schema hash of %d bytes", len(sum))
	}
	copy(h.SchemaHash[:], sum)
	flags := d.Byte()
	if d.Err() == nil && flags&^knownFlags != 0 {
		d.Fail("unknown flags %#x", flags)
	}
	h.Encrypted = flags&flagEncrypted != 0
	d.Done()
	return h, d.Err()
}

// ReadHeader reads a backup's header from r, which is left just after it.
func ReadHeader(r io.Reader) (Header, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = oneByteReader{r}
	}
	head := make([]byte, len(magic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, fmt.Errorf("%w: truncated: the object ends within its first %d bytes", ErrDamaged, len(head)+trailerSize)
		}
		return Header{}, err
	}
	if string(head[:len(magic)]) != magic {
		return Header{}, fmt.Errorf("%w: it starts with %q, not %q", ErrNotBackup, head[:len(magic)], magic)
	}
	d := encoding.NewDecoder(head[len(magic):], ErrDamaged)
	if d.Version("backup", formatVersion); d.Err() != nil {
		return Header{}, d.Err()
	}
	n, err := binaryUvarint(br)
	if err != nil {
		return Header{}, fmt.Errorf("%w: header length: %w", ErrDamaged, err)
	}
	if n > maxHeader {
		return Header{}, fmt.Errorf("%w: header of %d bytes (at most %d)", ErrDamaged, n, maxHeader)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return Header{}, fmt.Errorf("%w: header: %w", ErrDamaged, err)
	}
	return decodeHeader(p)
}

// Encode writes a backup of the database file read from db to w: h's
// header (h.Encrypted is set from recipients), the zstd stream of db,
// encrypted to recipients when there are any, and the trailer. It streams:
// memory stays bounded whatever db's size. ctx stops it between blocks.
func Encode(ctx context.Context, w io.Writer, h Header, db io.Reader, recipients []age.Recipient) error {
	sum := sha256.New()
	bw := bufio.NewWriterSize(w, 64<<10)
	hw := io.MultiWriter(bw, sum)
	h.Encrypted = len(recipients) > 0
	if _, err := hw.Write(AppendHeader(nil, h)); err != nil {
		return err
	}
	var body io.Writer = hw
	var sealed io.WriteCloser
	if h.Encrypted {
		var err error
		if sealed, err = age.Encrypt(hw, recipients...); err != nil {
			return fmt.Errorf("hiqlite: backup: encrypt: %w", err)
		}
		body = sealed
	}
	// One block at a time on this goroutine (as snapshots do): bounded
	// memory, and no write from another goroutine after a failure.
	// SpeedDefault, not the snapshots' SpeedFastest: a backup is kept, and
	// SpeedFastest stores literals without entropy coding (hex text of
	// random bytes: 100% of its size against 57%).
	enc, err := zstd.NewWriter(body, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	if _, err := io.Copy(enc, stopReader{db, ctx}); err != nil {
		enc.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if sealed != nil {
		if err := sealed.Close(); err != nil {
			return err
		}
	}
	if _, err := bw.Write(sum.Sum(nil)); err != nil {
		return err
	}
	return bw.Flush()
}

// Decode reads the backup in r: it checks the start, decrypts the body
// with identities (when it is encrypted), decompresses it into out and
// checks the trailer. Every byte is read, so a damaged object is always
// reported as ErrDamaged even where decryption or decompression fails
// first. On any error, what was written to out must be thrown away.
func Decode(ctx context.Context, r io.Reader, identities []age.Identity, out io.Writer) (Header, error) {
	tr := newTailReader(r)
	h, err := ReadHeader(tr)
	if errors.Is(err, ErrNotBackup) || errors.Is(err, encoding.ErrUnknownVersion) {
		return h, err // nothing to check a checksum of, or a layout this version cannot know
	}
	if err != nil {
		return h, tr.damaged(err)
	}
	err = decodeBody(ctx, tr, h, identities, out)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return h, err
	}
	return h, tr.damaged(err)
}

func decodeBody(ctx context.Context, r io.Reader, h Header, identities []age.Identity, out io.Writer) error {
	body := r
	if !h.Encrypted && len(identities) > 0 {
		// The checksum proves the object whole, not who wrote it: one
		// who can write to the store could put a plain backup in place
		// of an encrypted one.
		return fmt.Errorf("%w: the backup is not encrypted, but an identity was given: check where it comes from, and restore or verify it without the identity to accept it", ErrKey)
	}
	if h.Encrypted {
		if len(identities) == 0 {
			return fmt.Errorf("%w: the backup is encrypted: give the identity file it was encrypted for (age secret keys or the passphrase)", ErrKey)
		}
		var err error
		if body, err = age.Decrypt(r, identities...); err != nil {
			var nomatch *age.NoIdentityMatchError
			if errors.As(err, &nomatch) {
				return fmt.Errorf("%w: none of the given keys opens this backup (wrong identity file or passphrase): %w", ErrKey, err)
			}
			return fmt.Errorf("%w: decrypt: %w", ErrDamaged, err)
		}
	}
	// The writer's window is 8 MiB (SpeedDefault); a crafted frame asking
	// for zstd's 512 MiB default is refused before it is allocated.
	dec, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return err
	}
	defer dec.Close()
	if _, err := io.Copy(out, stopReader{dec, ctx}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrKey) {
			return err
		}
		return fmt.Errorf("%w: body: %w", ErrDamaged, err)
	}
	return nil
}

// tailReader passes on every byte of r but the last trailerSize, which it
// holds back as the trailer, and hashes what it passes on.
type tailReader struct {
	r   io.Reader
	buf []byte // read from r, not passed on yet; the trailer at the end
	sum hash.Hash
	err error // r's error, once it returned one
}

func newTailReader(r io.Reader) *tailReader {
	return &tailReader{r: r, buf: make([]byte, 0, 64<<10+trailerSize), sum: sha256.New()}
}

func (t *tailReader) Read(p []byte) (int, error) {
	for len(t.buf) <= trailerSize && t.err == nil {
		m, err := t.r.Read(t.buf[len(t.buf):cap(t.buf)])
		t.buf = t.buf[:len(t.buf)+m]
		t.err = err
	}
	avail := len(t.buf) - trailerSize
	if avail <= 0 {
		return 0, t.err
	}
	n := copy(p, t.buf[:avail])
	t.sum.Write(p[:n])
	t.buf = t.buf[:copy(t.buf, t.buf[n:])]
	return n, nil
}

// ReadByte lets ReadHeader read the header length from the tailReader.
func (t *tailReader) ReadByte() (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(t, b[:])
	return b[0], err
}

// damaged reads what is left and checks the trailer. A mismatch (or a
// missing trailer) is the error, as ErrDamaged, whatever else failed: a
// wrong key and a damaged object must not be confused. Otherwise it
// returns err.
func (t *tailReader) damaged(err error) error {
	if _, rerr := io.Copy(io.Discard, t); rerr != nil {
		return errors.Join(rerr, err)
	}
	if len(t.buf) < trailerSize {
		return fmt.Errorf("%w: truncated: the object ends before its checksum", ErrDamaged)
	}
	if want := t.sum.Sum(nil); string(want) != string(t.buf) {
		return fmt.Errorf("%w: the checksum does not match the content (truncated, or a byte changed): computed %x, stored %x", ErrDamaged, want[:8], t.buf[:8])
	}
	return err
}

// stopReader fails with ctx's error once ctx ends.
type stopReader struct {
	r   io.Reader
	ctx context.Context
}

func (c stopReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type oneByteReader struct{ r io.Reader }

func (b oneByteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}

// binaryUvarint reads a uvarint of at most 10 bytes.
func binaryUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	var s uint
	for i := 0; i < 10; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, errors.New("uvarint overflows 64 bits")
}
