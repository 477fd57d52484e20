package encoding

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Decoder reads a format's fields from a byte slice. It keeps the first
// error: every read after one returns a zero value, so a format's decoder
// reads its whole schema and checks Err once. Bytes, Value's blobs and
// Strings' results alias or copy the input as documented on each.
type Decoder struct {
	b    []byte
	n    int   // len of the whole input
	err  error // the first error
	kind error // what every decoding error wraps (the format's sentinel)
	// CopyBlobs makes Value return copies of blobs instead of slices of
	// the input.
	CopyBlobs bool
}

// NewDecoder returns a decoder of b whose errors wrap kind, the format's
// sentinel error (nil: none).
func NewDecoder(b []byte, kind error) *Decoder {
	return &Decoder{b: b, n: len(b), kind: kind}
}

// Err returns the first error, nil if none.
func (d *Decoder) Err() error { return d.err }

// Len returns the number of bytes not read yet.
func (d *Decoder) Len() int { return len(d.b) }

// Offset returns the number of bytes read.
func (d *Decoder) Offset() int { return d.n - len(d.b) }

// Fail records a decoding error at the current offset, unless one is
// recorded already, and stops reading.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		msg := fmt.Sprintf(format, args...)
		if d.kind != nil {
			d.err = fmt.Errorf("%w: %s at byte %d", d.kind, msg, d.Offset())
		} else {
			d.err = fmt.Errorf("hiqlite: %s at byte %d", msg, d.Offset())
		}
	}
	d.b = nil
}

// SetErr records err as the decoding error, unless one is recorded
// already, and stops reading.
func (d *Decoder) SetErr(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

// Version reads a version byte and checks it is from 1 to known: 0 is a
// corrupt input, above known a *VersionError for format.
func (d *Decoder) Version(format string, known byte) byte {
	v := d.Byte()
	switch {
	case d.err != nil:
		return 0
	case v == 0:
		d.Fail("%s version 0", format)
		return 0
	case v > known:
		d.SetErr(&VersionError{Format: format, Version: v, Known: known})
		return 0
	}
	return v
}

// Done fails if input is left.
func (d *Decoder) Done() {
	if d.err == nil && len(d.b) != 0 {
		d.Fail("%d trailing bytes", len(d.b))
	}
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.Fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	switch v := d.Byte(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.Fail("bad bool %d", v)
		return false
	}
}

// Uvarint reads a uvarint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.Fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a zigzag varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.Fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Float64 reads 8 bytes of IEEE 754 bits, little endian.
func (d *Decoder) Float64() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.Fail("truncated float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// Count reads the number of items that follow and checks that the input
// left can hold that many of at least min bytes each (min >= 1), so a
// corrupt count cannot make the caller allocate more than the input's size
// in items.
func (d *Decoder) Count(min int) int {
	v := d.Uvarint()
	if d.err != nil {
		return 0
	}
	if v > math.MaxInt32 || v > uint64(len(d.b)/max(min, 1)) {
		d.Fail("count %d exceeds the input (%d bytes left)", v, len(d.b))
		return 0
	}
	return int(v)
}

// Bytes reads a length and that many bytes: a slice of the input, with
// its capacity cut to its length.
func (d *Decoder) Bytes() []byte {
	n := d.Count(1)
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// String reads a length and that many bytes, copied.
func (d *Decoder) String() string { return string(d.Bytes()) }

// Strings reads a count and that many strings; nil when none.
func (d *Decoder) Strings() []string {
	n := d.Count(1) // a string takes at least its length byte
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.String()
	}
	return ss
}

// Value reads a tag and a value: nil, int64, float64, string or []byte
// (TagNilBlob gives a nil []byte; TagBlob a non-nil one, a slice of the
// input or, with CopyBlobs, a copy).
func (d *Decoder) Value() any {
	switch t := d.Byte(); t {
	case TagNull:
		return nil
	case TagInt:
		return d.Varint()
	case TagFloat:
		return d.Float64()
	case TagText:
		return d.String()
	case TagBlob:
		b := d.Bytes()
		if d.err != nil {
			return nil
		}
		if d.CopyBlobs {
			return append([]byte{}, b...)
		}
		return b
	case TagNilBlob:
		return []byte(nil)
	default:
		d.Fail("unknown value tag %d", t)
		return nil
	}
}
