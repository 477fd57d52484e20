package wire

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// MaxFrameSize bounds a frame's length (its type byte and body). ReadMessage
// rejects a larger declared length before allocating anything, and
// WriteMessage refuses to send a larger message.
const MaxFrameSize = 256 << 20

// Frames bigger than this are read in growing chunks, so that a peer that
// declares a large length and sends little makes the reader allocate about
// twice what it sent (and at least one chunk), not the declared length.
const chunkSize = 1 << 20

// AppendMessage appends m's frame to b: the uvarint length of what follows,
// m's type byte, and its body. On error it returns b unchanged in length.
func AppendMessage(b []byte, m Message) ([]byte, error) {
	start := len(b)
	// Reserve the longest length prefix MaxFrameSize needs, then move the
	// frame down over the unused bytes of the prefix.
	const reserve = binary.MaxVarintLen32 // enough for MaxFrameSize
	b = append(b, make([]byte, reserve)...)
	b = append(b, byte(m.Type()))
	out, err := m.appendBody(b)
	if err != nil {
		return b[:start], err
	}
	b = out
	n := len(b) - start - reserve
	if n > MaxFrameSize {
		return b[:start], fmt.Errorf("hiqlite: wire: %s of %d bytes exceeds the frame limit of %d bytes", m.Type(), n, MaxFrameSize)
	}
	var prefix [binary.MaxVarintLen64]byte
	p := binary.PutUvarint(prefix[:], uint64(n))
	copy(b[start+p:], b[start+reserve:])
	copy(b[start:], prefix[:p])
	return b[:start+p+n], nil
}

// WriteMessage writes m's frame to w with one Write. Callers that send
// often should give it a bufio.Writer and flush after the last message.
func WriteMessage(w io.Writer, m Message) error {
	b, err := AppendMessage(nil, m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadMessage reads one frame from r and decodes it. It returns io.EOF if r
// ends before the frame's first byte, io.ErrUnexpectedEOF if it ends inside
// the frame, an error matching ErrMalformed if the frame is not a valid
// message, and r's own errors otherwise. The message owns its memory: blobs
// in it are slices of a buffer allocated for this frame alone.
//
// r should be buffered: the length prefix is read a byte at a time (with
// ReadByte if r is an io.ByteReader such as *bufio.Reader).
func ReadMessage(r io.Reader) (Message, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = &byteReader{r: r}
	}
	n, err := readLength(br)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	frame, err := readFull(r, n)
	if err != nil {
		return nil, err
	}
	return decodeFrame(frame)
}

// readLength reads a frame's uvarint length, failing as soon as it exceeds
// MaxFrameSize.
func readLength(r io.ByteReader) (int, error) {
	var n uint64
	for i, shift := 0, uint(0); i < binary.MaxVarintLen32; i, shift = i+1, shift+7 {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 {
				return 0, unexpected(err)
			}
			return 0, err
		}
		n |= uint64(c&0x7f) << shift
		if n > MaxFrameSize {
			return 0, errFrameTooLarge
		}
		if c < 0x80 {
			return int(n), nil
		}
	}
	return 0, fmt.Errorf("%w: frame length is not a valid uvarint", ErrMalformed)
}

// errFrameTooLarge is made once: rejecting a length allocates nothing.
var errFrameTooLarge = fmt.Errorf("%w: frame length exceeds the limit of %d bytes", ErrMalformed, MaxFrameSize)

// readFull reads exactly n bytes. Up to chunkSize it allocates n at once;
// beyond, it grows the buffer as the bytes arrive.
func readFull(r io.Reader, n int) ([]byte, error) {
	if n <= chunkSize {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, unexpected(err)
		}
		return b, nil
	}
	b := make([]byte, 0, chunkSize)
	for len(b) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(2*cap(b), n))
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(r, b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			return nil, unexpected(err)
		}
	}
	return b, nil
}

// unexpected turns an EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// byteReader adapts an io.Reader without ReadByte.
type byteReader struct {
	r   io.Reader
	buf [1]byte
}

func (b *byteReader) ReadByte() (byte, error) {
	if _, err := io.ReadFull(b.r, b.buf[:]); err != nil {
		return 0, err
	}
	return b.buf[0], nil
}

// decodeFrame decodes a frame without its length prefix: the type byte and
// the body. Blobs in the message alias frame.
func decodeFrame(frame []byte) (Message, error) {
	t := Type(frame[0])
	m := newMessage(t)
	if m == nil {
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, frame[0])
	}
	d := decoder{encoding.NewDecoder(frame[1:], ErrMalformed)}
	m.decodeBody(d)
	if d.Err() == nil && d.Len() != 0 {
		d.Fail("%d trailing bytes after %s", d.Len(), t)
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	return m, nil
}
