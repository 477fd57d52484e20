package extensions

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// commandVersion starts every encoded Command; a node refuses a version it
// does not know.
const commandVersion = 1

// Op is what a Command does.
type Op uint8

// The operations of the cache group. The numbers are protocol: never reuse
// one.
const (
	// OpSet stores Value under Cache/Key, expiring TTL after the command's
	// time (0: never).
	OpSet Op = 1
	// OpDelete removes Cache/Key; Result.OK reports whether it existed.
	OpDelete Op = 2
	// OpCompareAndSet stores Value (with TTL) if the entry holds Old, or,
	// without HasOld, if there is no entry; Result.OK reports the swap.
	OpCompareAndSet Op = 3
	// OpGetAndDelete removes Cache/Key and returns its value.
	OpGetAndDelete Op = 4
	// OpTick only advances the group's clock to the command's time, which
	// expires entries and leases (every command does that first).
	OpTick Op = 5
	// OpAcquire asks for lock Cache for waiter ID with lease TTL: granted at
	// once (Result.OK, Token) when free, else queued (Result.Queued) when
	// Wait, else refused.
	OpAcquire Op = 6
	// OpRenew extends the lease of ID on lock Cache, if Token still holds
	// it, to TTL after the command's time.
	OpRenew Op = 7
	// OpRelease frees lock Cache if ID holds it with Token (any token when
	// Token is 0), or takes ID out of its queue.
	OpRelease Op = 8
	// OpClear removes every entry of Cache.
	OpClear Op = 9
)

func (op Op) String() string {
	names := [...]string{OpSet: "set", OpDelete: "delete", OpCompareAndSet: "compare-and-set", OpGetAndDelete: "get-and-delete",
		OpTick: "tick", OpAcquire: "acquire", OpRenew: "renew", OpRelease: "release", OpClear: "clear"}
	if int(op) < len(names) && names[op] != "" {
		return names[op]
	}
	return fmt.Sprintf("op(%d)", uint8(op))
}

// Command is one entry of the cache group's Raft log. The leader stamps
// Time with its clock when it applies the command, so every node expires
// entries and leases at the same leader time.
type Command struct {
	Op     Op
	Time   int64  // the leader's clock, Unix nanoseconds
	Cache  string // the cache, or the lock's name
	Key    string
	Value  []byte
	Old    []byte // OpCompareAndSet: the expected value, when HasOld
	HasOld bool
	TTL    int64  // nanoseconds; 0: no expiry
	ID     uint64 // lock waiter
	Token  uint64
	Wait   bool
}

// ErrCorruptCommand matches every decoding failure.
var ErrCorruptCommand = errors.New("hiqlite: corrupt cache command")

// Size is about how many bytes c takes encoded.
func (c *Command) Size() int { return 24 + len(c.Cache) + len(c.Key) + len(c.Value) + len(c.Old) }

// MarshalBinary encodes c.
func (c *Command) MarshalBinary() ([]byte, error) {
	return c.append(make([]byte, 0, c.Size())), nil
}

// append appends c's encoding to b.
func (c *Command) append(b []byte) []byte {
	b = append(b, commandVersion, byte(c.Op))
	b = binary.AppendVarint(b, c.Time)
	b = appendString(b, c.Cache)
	b = appendString(b, c.Key)
	b = appendBytes(b, c.Value)
	b = appendBytes(b, c.Old)
	var flags byte
	if c.HasOld {
		flags |= 1
	}
	if c.Wait {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, c.TTL)
	b = binary.AppendUvarint(b, c.ID)
	return binary.AppendUvarint(b, c.Token)
}

// UnmarshalCommand decodes a command. Its byte slices are copies.
func UnmarshalCommand(data []byte) (*Command, error) {
	d := decoder{b: data}
	c := &Command{}
	d.command(c, nil)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}

// command decodes one command into c; intern, if not nil, makes the
// strings of cache names.
func (d *decoder) command(c *Command, intern func([]byte) string) {
	if v := d.byte(); d.err == nil && v != commandVersion {
		d.fail("unknown command version %d", v)
		return
	}
	c.Op = Op(d.byte())
	c.Time = d.varint()
	if intern != nil {
		c.Cache = intern(d.bytes())
	} else {
		c.Cache = string(d.bytes())
	}
	c.Key = string(d.bytes())
	c.Value = d.copyBytes()
	c.Old = d.copyBytes()
	flags := d.byte()
	c.HasOld, c.Wait = flags&1 != 0, flags&2 != 0
	c.TTL = d.varint()
	c.ID = d.uvarint()
	c.Token = d.uvarint()
	if d.err == nil && (c.Op < OpSet || c.Op > OpClear) {
		d.fail("unknown op %d", c.Op)
	}
	if d.err == nil && c.TTL < 0 {
		d.fail("negative TTL")
	}
}

// entryVersion starts every entry of the group's log.
const entryVersion = 1

// MarshalEntry encodes cmds as one entry of the cache group's log, at time
// t (the leader's clock, Unix nanoseconds), which every command of the
// entry takes as its Time. The commands follow each other: each encoding
// says where it ends.
func MarshalEntry(t int64, cmds []*Command) ([]byte, error) {
	n := 16
	for _, c := range cmds {
		n += c.Size()
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = binary.AppendVarint(b, t)
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		c.Time = t
		b = c.append(b)
	}
	return b, nil
}

// UnmarshalEntry decodes an entry of the cache group's log.
func UnmarshalEntry(data []byte) (t int64, cmds []Command, err error) {
	return unmarshalEntry(data, nil)
}

func unmarshalEntry(data []byte, intern func([]byte) string) (t int64, cmds []Command, err error) {
	d := decoder{b: data}
	if v := d.byte(); d.err == nil && v != entryVersion {
		return 0, nil, fmt.Errorf("%w: unknown entry version %d", ErrCorruptCommand, v)
	}
	t = d.varint()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b))/8 { // a command takes at least 8 bytes
		d.fail("%d commands in %d bytes", n, len(d.b))
	}
	if d.err == nil {
		cmds = make([]Command, n)
	}
	for i := range cmds {
		if d.command(&cmds[i], intern); d.err != nil {
			break
		}
		cmds[i].Time = t
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes in an entry", len(d.b))
	}
	if d.err != nil {
		return 0, nil, d.err
	}
	return t, cmds, nil
}

// Result is what a command returns, on the leader and on every node that
// applies it.
type Result struct {
	OK     bool   // see each Op
	Queued bool   // OpAcquire: the waiter is in the queue
	Value  []byte // OpGetAndDelete: the value removed
	Token  uint64 // OpAcquire, OpRenew: the lease's fencing token
	Index  uint64 // the command's Raft index (not encoded)
	Err    error  // the command could not be applied (not encoded: see MarshalBinary)
}

// MarshalBinary encodes r without Index; an r with Err does not encode
// (the error crosses the wire as an error).
func (r *Result) MarshalBinary() ([]byte, error) {
	if r.Err != nil {
		return nil, r.Err
	}
	var flags byte
	if r.OK {
		flags |= 1
	}
	if r.Queued {
		flags |= 2
	}
	if r.Value != nil {
		flags |= 4
	}
	b := []byte{flags}
	b = appendBytes(b, r.Value)
	return binary.AppendUvarint(b, r.Token), nil
}

// UnmarshalResult decodes a result; Value is a copy.
func UnmarshalResult(data []byte) (Result, error) {
	d := decoder{b: data}
	flags := d.byte()
	r := Result{OK: flags&1 != 0, Queued: flags&2 != 0}
	v := d.copyBytes()
	if flags&4 != 0 && v == nil {
		v = []byte{}
	}
	r.Value = v
	r.Token = d.uvarint()
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes in a result", len(d.b))
	}
	return r, d.err
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads from b and keeps the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorruptCommand, fmt.Sprintf(format, args...))
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

// bytes returns the next length-prefixed bytes, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > math.MaxInt32 || n > uint64(len(d.b)) {
		d.fail("length %d exceeds the input", n)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// copyBytes is bytes, copied; nil when empty.
func (d *decoder) copyBytes() []byte {
	v := d.bytes()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}
