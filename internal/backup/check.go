package backup

import (
	"io"
)

// CheckedStream passes the bytes of a backup object read from r on
// unchanged, and checks them as they pass with the trailer's checksum:
// where the object is truncated or a byte of it changed, the Read that
// would have returned io.EOF returns an error matching ErrDamaged
// instead. A store's Put that reads it therefore keeps nothing of a
// damaged object. Errors of r pass on as they are.
func CheckedStream(r io.Reader) io.Reader {
	return &checkedStream{t: newTailReader(r)}
}

type checkedStream struct {
	t    *tailReader
	tail []byte // the trailer, checked, still to pass on
	err  error  // what every later Read returns
}

func (c *checkedStream) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.tail != nil {
		n := copy(p, c.tail)
		c.tail = c.tail[n:]
		if len(c.tail) == 0 {
			c.err = io.EOF
		}
		return n, nil
	}
	n, err := c.t.Read(p)
	if n > 0 || err == nil {
		return n, nil
	}
	if err != io.EOF {
		c.err = err
		return 0, err
	}
	if err := c.t.damaged(nil); err != nil {
		c.err = err
		return 0, err
	}
	c.tail = append([]byte(nil), c.t.buf...)
	return c.Read(p)
}
