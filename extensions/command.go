package extensions

import (
	"errors"
	"fmt"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// The cache group's formats, in package encoding's primitives. A newer
// version than this code reads fails with an *encoding.VersionError.
//
// Command, version 1 (it travels in CacheRequest and inside entries):
//
//	version 1 byte, op 1 byte, time varint
//	cache, key string; value, old bytes
//	flags   1 byte: 1 HasOld, 2 Wait
//	ttl varint, id uvarint, token uvarint
//
// Entry of the log, version 1: version 1 byte, time varint, count, then
// each command. Result, unversioned: flags 1 byte (1 OK, 2 Queued, 4 a
// value), value bytes, token uvarint. Snapshot: see Machine.Snapshot.
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
	b = encoding.AppendVarint(b, c.Time)
	b = encoding.AppendString(b, c.Cache)
	b = encoding.AppendString(b, c.Key)
	b = encoding.AppendBytes(b, c.Value)
	b = encoding.AppendBytes(b, c.Old)
	var flags byte
	if c.HasOld {
		flags |= 1
	}
	if c.Wait {
		flags |= 2
	}
	b = append(b, flags)
	b = encoding.AppendVarint(b, c.TTL)
	b = encoding.AppendUvarint(b, c.ID)
	return encoding.AppendUvarint(b, c.Token)
}

// UnmarshalCommand decodes a command. Its byte slices are copies.
func UnmarshalCommand(data []byte) (*Command, error) {
	d := encoding.NewDecoder(data, ErrCorruptCommand)
	c := &Command{}
	decodeCommand(d, c, nil)
	d.Done()
	if d.Err() != nil {
		return nil, d.Err()
	}
	return c, nil
}

// command decodes one command into c; intern, if not nil, makes the
// strings of cache names.
func decodeCommand(d *encoding.Decoder, c *Command, intern func([]byte) string) {
	d.Version("cache command", commandVersion)
	c.Op = Op(d.Byte())
	c.Time = d.Varint()
	if b := d.Bytes(); intern != nil && d.Err() == nil {
		c.Cache = intern(b)
	} else {
		c.Cache = string(b)
	}
	c.Key = d.String()
	c.Value = copyBytes(d.Bytes())
	c.Old = copyBytes(d.Bytes())
	flags := d.Byte()
	c.HasOld, c.Wait = flags&1 != 0, flags&2 != 0
	c.TTL = d.Varint()
	c.ID = d.Uvarint()
	c.Token = d.Uvarint()
	if d.Err() == nil && (c.Op < OpSet || c.Op > OpClear) {
		d.Fail("unknown op %d", c.Op)
	}
	if d.Err() == nil && c.TTL < 0 {
		d.Fail("negative TTL")
	}
}

// copyBytes returns a copy of b; nil when empty.
func copyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
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
	b = encoding.AppendVarint(b, t)
	b = encoding.AppendUvarint(b, uint64(len(cmds)))
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
	d := encoding.NewDecoder(data, ErrCorruptCommand)
	d.Version("cache log entry", entryVersion)
	t = d.Varint()
	n := d.Count(8) // a command takes at least 8 bytes
	if d.Err() == nil {
		cmds = make([]Command, n)
	}
	for i := range cmds {
		if decodeCommand(d, &cmds[i], intern); d.Err() != nil {
			break
		}
		cmds[i].Time = t
	}
	d.Done()
	if d.Err() != nil {
		return 0, nil, d.Err()
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
	b = encoding.AppendBytes(b, r.Value)
	return encoding.AppendUvarint(b, r.Token), nil
}

// UnmarshalResult decodes a result; Value is a copy.
func UnmarshalResult(data []byte) (Result, error) {
	d := encoding.NewDecoder(data, ErrCorruptCommand)
	flags := d.Byte()
	r := Result{OK: flags&1 != 0, Queued: flags&2 != 0}
	v := copyBytes(d.Bytes())
	if flags&4 != 0 && v == nil {
		v = []byte{}
	}
	r.Value = v
	r.Token = d.Uvarint()
	d.Done()
	return r, d.Err()
}
