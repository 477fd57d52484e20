package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// CommandVersion is the version byte that starts every encoded command. A node
// refuses (and stops applying at) a command whose version it does not know, so a
// rolling upgrade never silently misreads the log.
const CommandVersion = 1

// CommandKind says how the state machine applies a command.
type CommandKind uint8

const (
	// KindExec is a write outside a transaction: its statements run in
	// order, each as in SQLite's autocommit mode (a failing statement undoes
	// only itself and stops the rest), and the command commits as one SQLite
	// transaction.
	KindExec CommandKind = 1
	// KindTx is a committed interactive transaction: the statements it ran
	// on the leader, in order, including failed ones and savepoint control.
	// Every node replays them and must reach the same outcome per statement.
	KindTx CommandKind = 2
	// KindNoop changes nothing but the applied index (barriers, tests).
	KindNoop CommandKind = 3
	// KindFence settles the outcome of its Origin's write: if that write
	// was applied, the fence reports where; if not, the fence makes sure it
	// never will be (a later copy of it in the log is refused). It has no
	// statements. An interrupted COMMIT is resolved with one.
	KindFence CommandKind = 4
)

func (k CommandKind) String() string {
	switch k {
	case KindExec:
		return "exec"
	case KindTx:
		return "tx"
	case KindNoop:
		return "noop"
	case KindFence:
		return "fence"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flags are session settings carried by every write of a session.
type Flags uint32

const (
	// FlagForeignKeys runs the command with PRAGMA foreign_keys=ON.
	FlagForeignKeys Flags = 1 << iota
	// FlagNotMigrate: the command is not one of the root package's
	// Migrate, so its statements may not write MigrationsTable either
	// (internal.go). Commands of earlier versions lack it and keep the
	// rule they were applied under (any command could write that table),
	// so an old log replays alike.
	FlagNotMigrate
)

// Origin names the session that sent a write: (Node, Session, Seq) is unique
// and lets the state machine recognise a retried command. A session's writes
// must carry increasing Seq, one write at a time; Session 0 opts out of
// exactly-once (nothing is recorded, so such a write must not be retried).
type Origin struct {
	Node    string
	Session uint64
	Seq     uint64
}

// Command is one Raft log entry of the SQL state machine.
type Command struct {
	Kind   CommandKind
	Time   int64  // the leader's clock, Unix nanoseconds: 'now' for every statement
	Seed   uint64 // seeds random() and randomblob()
	Origin Origin
	Flags  Flags
	Stmts  []Statement
}

// Statement is SQL text (possibly several statements for KindExec) and its
// arguments.
type Statement struct {
	SQL  string
	Args []Arg
	// Failed records, in a KindTx, that the statement failed on the leader;
	// replay expects it to fail again.
	Failed bool
}

// Arg is one bound parameter: by Name (without its ':', '@' or '$' prefix)
// when Name is not empty, else by 1-based Ordinal. Value is nil, int64,
// float64, string or []byte.
type Arg struct {
	Name    string
	Ordinal int
	Value   any
}

// value tags on the wire.
const (
	tagNull = iota
	tagInt
	tagFloat
	tagText
	tagBlob
)

// ErrCorruptCommand is matched by every decoding failure.
var ErrCorruptCommand = errors.New("hiqlite: corrupt command")

// MarshalBinary encodes c with the current CommandVersion.
func (c *Command) MarshalBinary() ([]byte, error) {
	n := 32 + len(c.Origin.Node)
	for i := range c.Stmts {
		n += 8 + len(c.Stmts[i].SQL) + 12*len(c.Stmts[i].Args)
	}
	b := make([]byte, 0, n)
	b = append(b, CommandVersion, byte(c.Kind))
	b = binary.AppendVarint(b, c.Time)
	b = binary.AppendUvarint(b, c.Seed)
	b = appendString(b, c.Origin.Node)
	b = binary.AppendUvarint(b, c.Origin.Session)
	b = binary.AppendUvarint(b, c.Origin.Seq)
	b = binary.AppendUvarint(b, uint64(c.Flags))
	b = binary.AppendUvarint(b, uint64(len(c.Stmts)))
	for i := range c.Stmts {
		s := &c.Stmts[i]
		b = appendString(b, s.SQL)
		var f byte
		if s.Failed {
			f = 1
		}
		b = append(b, f)
		b = binary.AppendUvarint(b, uint64(len(s.Args)))
		for _, a := range s.Args {
			b = appendString(b, a.Name)
			b = binary.AppendUvarint(b, uint64(a.Ordinal))
			var err error
			if b, err = appendValue(b, a.Value); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v any) ([]byte, error) {
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
			return append(b, tagNull), nil // bound as NULL, as on the leader
		}
		b = binary.AppendUvarint(append(b, tagBlob), uint64(len(v)))
		return append(b, v...), nil
	}
	return nil, fmt.Errorf("hiqlite: cannot encode argument of type %T", v)
}

// UnmarshalCommand decodes a command. Text and blob values are copied, so
// data may be reused by the caller.
func UnmarshalCommand(data []byte) (*Command, error) {
	d := decoder{b: data}
	if v := d.byte(); d.err == nil && v != CommandVersion {
		return nil, fmt.Errorf("%w: unknown command version %d (this node reads version %d)", ErrCorruptCommand, v, CommandVersion)
	}
	c := &Command{Kind: CommandKind(d.byte())}
	c.Time = d.varint()
	c.Seed = d.uvarint()
	c.Origin.Node = d.string()
	c.Origin.Session = d.uvarint()
	c.Origin.Seq = d.uvarint()
	c.Flags = Flags(d.uvarint())
	n := d.count(3) // a statement takes at least 3 bytes
	if n > 0 {
		c.Stmts = make([]Statement, n)
	}
	// A transaction's statements often repeat one text with other
	// arguments (10,000 inserts): repeated texts and names share one
	// string, and the arguments of all statements share one backing array
	// while it lasts.
	var prevSQL, prevName string
	var args []Arg
	for i := 0; i < n && d.err == nil; i++ {
		s := &c.Stmts[i]
		if b := d.bytes(); string(b) == prevSQL {
			s.SQL = prevSQL
		} else {
			s.SQL = string(b)
			prevSQL = s.SQL
		}
		s.Failed = d.byte() == 1
		na := d.count(3) // an argument takes at least 3 bytes
		if na > 0 {
			if len(args) < na {
				// Room for the next 64 statements of this shape, never
				// more arguments than the bytes left could hold.
				args = make([]Arg, max(na, min(min(n-i, 64)*na, len(d.b)/3)))
			}
			s.Args, args = args[:na:na], args[na:]
		}
		for j := 0; j < na && d.err == nil; j++ {
			a := &s.Args[j]
			if b := d.bytes(); string(b) == prevName {
				a.Name = prevName
			} else {
				a.Name = string(b)
				prevName = a.Name
			}
			a.Ordinal = int(d.count(0))
			a.Value = d.value()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	switch c.Kind {
	case KindExec, KindTx, KindNoop, KindFence:
	default:
		return nil, fmt.Errorf("%w: unknown command kind %d", ErrCorruptCommand, c.Kind)
	}
	return c, nil
}

// decoder reads from b and remembers the first error; every read after an
// error returns a zero value.
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

// count reads a length and checks that the rest of the input can hold that
// many items of at least min bytes each, so a corrupt length cannot make the
// decoder allocate more than the input's size.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > math.MaxInt32 || (min > 0 && v > uint64(len(d.b)/min)) {
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

func (d *decoder) value() any {
	switch t := d.byte(); t {
	case tagNull:
		return nil
	case tagInt:
		return d.varint()
	case tagFloat:
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
		b := d.bytes()
		if d.err != nil {
			return nil
		}
		return append([]byte{}, b...)
	default:
		d.fail("unknown value tag %d", t)
		return nil
	}
}
