package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/hiqlite/hiqlite/replication"
)

// The primitive encodings mirror replication's command encoding: unsigned
// numbers as uvarints, signed ones as zigzag varints, strings and blobs as a
// uvarint length and their bytes, floats as their 8 IEEE 754 bits, little
// endian, so NaN payloads survive.

// Value tags. 0 to 4 are replication's; tagNilBlob keeps a nil []byte
// distinct from an empty one.
const (
	tagNull = iota
	tagInt
	tagFloat
	tagText
	tagBlob
	tagNilBlob
)

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendDuration(b []byte, d time.Duration) []byte {
	return binary.AppendVarint(b, int64(d))
}

// errValueTooLarge rejects a text or blob that cannot fit in a frame before
// it is copied; AppendMessage checks the frame as a whole.
var errValueTooLarge = fmt.Errorf("hiqlite: wire: a value exceeds the frame limit of %d bytes", MaxFrameSize)

func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		if len(v) > MaxFrameSize {
			return nil, errValueTooLarge
		}
	case []byte:
		if len(v) > MaxFrameSize {
			return nil, errValueTooLarge
		}
	}
	switch v := v.(type) {
	case nil:
		return append(b, tagNull), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt), v), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(v)), nil
	case string:
		return appendString(append(b, tagText), v), nil
	case []byte:
		if v == nil {
			return append(b, tagNilBlob), nil
		}
		b = binary.AppendUvarint(append(b, tagBlob), uint64(len(v)))
		return append(b, v...), nil
	}
	return nil, fmt.Errorf("hiqlite: wire: cannot encode a value of type %T", v)
}

func appendOrigin(b []byte, o replication.Origin) []byte {
	b = appendString(b, o.Node)
	b = binary.AppendUvarint(b, o.Session)
	return binary.AppendUvarint(b, o.Seq)
}

func appendStatement(b []byte, s *replication.Statement) ([]byte, error) {
	b = appendString(b, s.SQL)
	b = appendBool(b, s.Failed)
	b = binary.AppendUvarint(b, uint64(len(s.Args)))
	for i := range s.Args {
		a := &s.Args[i]
		b = appendString(b, a.Name)
		b = binary.AppendVarint(b, int64(a.Ordinal))
		var err error
		if b, err = appendValue(b, a.Value); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendResult(b []byte, r *replication.Result) ([]byte, error) {
	b = appendStrings(b, r.Columns)
	b = appendStrings(b, r.DeclTypes)
	b = binary.AppendUvarint(b, uint64(len(r.Rows)))
	for _, row := range r.Rows {
		b = binary.AppendUvarint(b, uint64(len(row)))
		for _, v := range row {
			var err error
			if b, err = appendValue(b, v); err != nil {
				return nil, err
			}
		}
	}
	b = binary.AppendVarint(b, r.LastInsertID)
	b = binary.AppendVarint(b, r.RowsAffected)
	return appendError(b, r.Err), nil
}

// decoder reads one message body from b and remembers the first error; every
// read after an error returns a zero value. Blobs alias b (which the decoder
// owns: ReadMessage allocates it per frame), strings are copied.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool {
	switch v := d.byte(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bad bool %d", v)
		return false
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) duration() time.Duration { return time.Duration(d.varint()) }

// count reads a length and checks that the rest of the input can hold that
// many items of at least min bytes each, so a corrupt length cannot make the
// decoder allocate more than a small multiple of the input's size.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > math.MaxInt32 || v > uint64(len(d.b)/min) {
		d.fail("count %d exceeds the input", v)
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) strings() []string {
	n := d.count(1) // a string takes at least its length byte
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.string()
	}
	return ss
}

func (d *decoder) value() any {
	switch t := d.byte(); t {
	case tagNull:
		return nil
	case tagInt:
		return d.varint()
	case tagFloat:
		if d.err != nil {
			return nil
		}
		if len(d.b) < 8 {
			d.fail("truncated float")
			return nil
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
		return v
	case tagText:
		return d.string()
	case tagBlob:
		if b := d.bytes(); d.err == nil {
			return b // never nil: a sub-slice of the body
		}
		return nil
	case tagNilBlob:
		return []byte(nil)
	default:
		d.fail("unknown value tag %d", t)
		return nil
	}
}

func (d *decoder) origin() replication.Origin {
	return replication.Origin{Node: d.string(), Session: d.uvarint(), Seq: d.uvarint()}
}

func (d *decoder) statement(s *replication.Statement) {
	s.SQL = d.string()
	s.Failed = d.bool()
	n := d.count(3) // name length, ordinal and value tag
	if n > 0 {
		s.Args = make([]replication.Arg, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		a := &s.Args[i]
		a.Name = d.string()
		o := d.varint()
		if o != int64(int(o)) {
			d.fail("ordinal %d out of range", o)
		}
		a.Ordinal = int(o)
		a.Value = d.value()
	}
}

func (d *decoder) result(r *replication.Result) {
	r.Columns = d.strings()
	r.DeclTypes = d.strings()
	n := d.count(1) // a row takes at least its length byte
	if n > 0 {
		r.Rows = make([][]any, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		nv := d.count(1) // a value takes at least its tag
		if nv == 0 {
			continue // nil, like every empty slice here
		}
		row := make([]any, nv)
		for j := 0; j < nv && d.err == nil; j++ {
			row[j] = d.value()
		}
		r.Rows[i] = row
	}
	r.LastInsertID = d.varint()
	r.RowsAffected = d.varint()
	r.Err = d.error()
}
