package encoding

import "fmt"

// An error is encoded as its Error() text and the parts of its tree that
// the receiver can rebuild, each a kind byte from an ErrorTable and that
// kind's fields. The decoder returns the single part itself when its text
// is the whole text (so err == ErrClosed still holds), and otherwise an
// error with the original text that unwraps to every part, so that
// errors.Is and errors.As match exactly what they matched before encoding.
// Whatever else the tree held arrives as text only.

// ErrorPart is one kind of error an ErrorTable rebuilds: a sentinel
// (matched with ==, no fields) or a typed error.
type ErrorPart struct {
	Kind     byte
	Sentinel error
	// Typed parts: Match reports whether err is one (not what it wraps),
	// Append appends its fields, Decode reads them back.
	Match  func(err error) bool
	Append func(b []byte, err error) []byte
	Decode func(d *Decoder) error
}

// ErrorTable is the set of parts a format carries.
type ErrorTable struct {
	parts []ErrorPart
}

// MaxErrorParts bounds the parts kept per error; more are dropped (their
// text stays). maxErrorDepth bounds how deep the encoder walks a tree.
const (
	MaxErrorParts = 16
	maxErrorDepth = 64
)

// NewErrorTable returns a table of parts. It panics if two parts share a
// kind, or a kind is 0.
func NewErrorTable(parts ...ErrorPart) *ErrorTable {
	t := &ErrorTable{}
	return t.With(parts...)
}

// With returns a table of t's parts and parts.
func (t *ErrorTable) With(parts ...ErrorPart) *ErrorTable {
	out := &ErrorTable{parts: append(append([]ErrorPart(nil), t.parts...), parts...)}
	seen := map[byte]bool{}
	for _, p := range out.parts {
		if p.Kind == 0 || seen[p.Kind] {
			panic(fmt.Sprintf("encoding: error kind %d used twice or zero", p.Kind))
		}
		seen[p.Kind] = true
	}
	return out
}

// part returns the part err is encoded as, or nil.
func (t *ErrorTable) part(err error) *ErrorPart {
	for i := range t.parts {
		p := &t.parts[i]
		if p.Match != nil && p.Match(err) {
			return p
		}
	}
	for i := range t.parts {
		// Cannot panic: the sentinels' dynamic types are comparable, and
		// == only panics on two values of one uncomparable type.
		if p := &t.parts[i]; p.Sentinel != nil && err == p.Sentinel {
			return p
		}
	}
	return nil
}

// collect appends the parts of err's tree, in the order errors.Is visits
// them, without descending into a part.
func (t *ErrorTable) collect(parts []error, err error, depth int) []error {
	if err == nil || depth > maxErrorDepth || len(parts) >= MaxErrorParts {
		return parts
	}
	if t.part(err) != nil {
		return append(parts, err)
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return t.collect(parts, u.Unwrap(), depth+1)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			parts = t.collect(parts, e, depth+1)
		}
	}
	return parts
}

// AppendError appends err: a presence byte (0 for nil), then its text, the
// number of its parts and each part.
func (t *ErrorTable) AppendError(b []byte, err error) []byte {
	if err == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = AppendString(b, err.Error())
	var buf [4]error
	parts := t.collect(buf[:0], err, 0)
	b = AppendUvarint(b, uint64(len(parts)))
	for _, e := range parts {
		p := t.part(e)
		b = append(b, p.Kind)
		if p.Append != nil {
			b = p.Append(b, e)
		}
	}
	return b
}

// RemoteError is a decoded error: its text as it was encoded, and the
// parts of it that could be rebuilt.
type RemoteError struct {
	Msg  string
	Errs []error
}

func (e *RemoteError) Error() string   { return e.Msg }
func (e *RemoteError) Unwrap() []error { return e.Errs }

// DecodeError reads what AppendError wrote.
func (t *ErrorTable) DecodeError(d *Decoder) error {
	switch v := d.Byte(); v {
	case 0:
		return nil
	case 1:
	default:
		d.Fail("bad error presence %d", v)
		return nil
	}
	text := d.String()
	n := d.Count(1) // a part takes at least its kind
	if n > MaxErrorParts {
		d.Fail("%d error parts", n)
	}
	var parts []error
	if n > 0 && d.err == nil {
		parts = make([]error, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		parts = append(parts, t.decodePart(d))
	}
	if d.err != nil {
		return nil
	}
	if n == 1 && parts[0].Error() == text {
		return parts[0]
	}
	return &RemoteError{Msg: text, Errs: parts}
}

func (t *ErrorTable) decodePart(d *Decoder) error {
	k := d.Byte()
	if d.err != nil {
		return nil
	}
	for i := range t.parts {
		p := &t.parts[i]
		if p.Kind != k {
			continue
		}
		if p.Decode != nil {
			return p.Decode(d)
		}
		return p.Sentinel
	}
	d.Fail("unknown error kind %d", k)
	return nil
}
