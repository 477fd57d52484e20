package wire

import (
	"fmt"
	"math"
	"time"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/replication"
)

// The primitives are package encoding's. A frame has no version byte: the
// message types and their layouts are protocol, fixed, and a layout that
// changes takes a new type. Ordinals are zigzag varints here (a uvarint in
// the Raft log), nil blobs keep encoding.TagNilBlob (NULL in the log), and
// blobs alias the frame, which ReadMessage allocates per frame.

// errValueTooLarge rejects a text or blob that cannot fit in a frame before
// it is copied; AppendMessage checks the frame as a whole.
var errValueTooLarge = fmt.Errorf("hiqlite: wire: a value exceeds the frame limit of %d bytes", MaxFrameSize)

// tooLarge reports whether v is a text or blob longer than a frame.
func tooLarge(v any) bool {
	switch v := v.(type) {
	case string:
		return len(v) > MaxFrameSize
	case []byte:
		return len(v) > MaxFrameSize
	}
	return false
}

func appendValue(b []byte, v any) ([]byte, error) {
	if tooLarge(v) {
		return nil, errValueTooLarge
	}
	b, err := encoding.AppendValue(b, v)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: wire: %w", err)
	}
	return b, nil
}

func appendDuration(b []byte, d time.Duration) []byte {
	return encoding.AppendVarint(b, int64(d))
}

func appendOrigin(b []byte, o replication.Origin) []byte {
	b = encoding.AppendString(b, o.Node)
	b = encoding.AppendUvarint(b, o.Session)
	return encoding.AppendUvarint(b, o.Seq)
}

func appendStatement(b []byte, s *replication.Statement) ([]byte, error) {
	b = encoding.AppendString(b, s.SQL)
	b = encoding.AppendBool(b, s.Failed)
	b = encoding.AppendUvarint(b, uint64(len(s.Args)))
	for i := range s.Args {
		a := &s.Args[i]
		b = encoding.AppendString(b, a.Name)
		b = encoding.AppendVarint(b, int64(a.Ordinal))
		var err error
		if b, err = appendValue(b, a.Value); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendResult(b []byte, r *replication.Result) ([]byte, error) {
	for _, row := range r.Rows {
		for _, v := range row {
			if tooLarge(v) {
				return nil, errValueTooLarge
			}
		}
	}
	b, err := replication.AppendResult(b, r, nodeErrors)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: wire: %w", err)
	}
	return b, nil
}

// decoder reads one message body. Blobs alias the frame; strings are
// copied.
type decoder struct {
	*encoding.Decoder
}

func (d decoder) duration() time.Duration { return time.Duration(d.Varint()) }

func (d decoder) flags() replication.Flags {
	f := d.Uvarint()
	if f > math.MaxUint32 {
		d.Fail("flags %#x", f)
	}
	return replication.Flags(f)
}

func (d decoder) origin() replication.Origin {
	return replication.Origin{Node: d.String(), Session: d.Uvarint(), Seq: d.Uvarint()}
}

func (d decoder) statement(s *replication.Statement) {
	s.SQL = d.String()
	s.Failed = d.Bool()
	n := d.Count(3) // name length, ordinal and value tag
	if n > 0 {
		s.Args = make([]replication.Arg, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		a := &s.Args[i]
		a.Name = d.String()
		o := d.Varint()
		if o != int64(int(o)) {
			d.Fail("ordinal %d out of range", o)
		}
		a.Ordinal = int(o)
		a.Value = d.Value()
	}
}

func (d decoder) result(r *replication.Result) { replication.DecodeResult(d.Decoder, r, nodeErrors) }

func (d decoder) error() error { return nodeErrors.DecodeError(d.Decoder) }
