package replication

import (
	"errors"
	"fmt"
	"math"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// commandVersion is the version byte that starts every encoded command. A
// node that meets a newer version in its log stops applying (a node fault,
// the error an *encoding.VersionError), so a node that is not upgraded yet
// never misreads nor skips an entry; it applies again once upgraded.
//
// Version 1:
//
//	version 1 byte, kind 1 byte
//	time    varint; seed uvarint
//	origin  node string, session uvarint, seq uvarint
//	flags   uvarint
//	stmts   count, then each: SQL string, failed byte (0 or 1),
//	        args count, then each: name string, ordinal uvarint, value
//
// Values are tagged as in package encoding; a nil blob is logged as
// TagNull (it binds as NULL, as on the leader), never TagNilBlob.
//
// Version 2 adds KindBatch (batch.go), whose body after the kind byte is
//
//	count uvarint, then each: a command of kind exec, encoded whole
//	(version byte included) as a length-prefixed byte string
//
// Only KindBatch is written with version 2; every other kind is still
// written as version 1, so that a node of the previous release reads it.
// A batch stops such a node with a VersionError until it is upgraded.
const commandVersion = 2

// commandVersion1 is the version the kinds of version 1 are written with.
const commandVersion1 = 1

// commandFormat names the format in errors.
const commandFormat = "Raft log command"

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
	// KindBatch carries several autocommit writes (KindExec) that waited on
	// the leader together, in one log entry: each is applied exactly as it
	// would be alone, in order, with its own clock, seed, origin and
	// response. Only Batch is set. See batch.go.
	KindBatch CommandKind = 5
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
	case KindBatch:
		return "batch"
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
	// Batch holds the commands of a KindBatch, each of KindExec.
	Batch []*Command
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

// ErrCorruptCommand is matched by every decoding failure but a newer
// version (encoding.ErrUnknownVersion).
var ErrCorruptCommand = errors.New("hiqlite: corrupt command")

// MarshalBinary encodes c: a KindBatch with version 2, any other kind with
// version 1.
func (c *Command) MarshalBinary() ([]byte, error) {
	if c.Kind == KindBatch {
		return c.marshalBatch()
	}
	n := 32 + len(c.Origin.Node)
	for i := range c.Stmts {
		n += 8 + len(c.Stmts[i].SQL) + 12*len(c.Stmts[i].Args)
	}
	b := make([]byte, 0, n)
	b = append(b, commandVersion1, byte(c.Kind))
	b = encoding.AppendVarint(b, c.Time)
	b = encoding.AppendUvarint(b, c.Seed)
	b = encoding.AppendString(b, c.Origin.Node)
	b = encoding.AppendUvarint(b, c.Origin.Session)
	b = encoding.AppendUvarint(b, c.Origin.Seq)
	b = encoding.AppendUvarint(b, uint64(c.Flags))
	b = encoding.AppendUvarint(b, uint64(len(c.Stmts)))
	for i := range c.Stmts {
		s := &c.Stmts[i]
		b = encoding.AppendString(b, s.SQL)
		b = encoding.AppendBool(b, s.Failed)
		b = encoding.AppendUvarint(b, uint64(len(s.Args)))
		for j, a := range s.Args {
			b = encoding.AppendString(b, a.Name)
			b = encoding.AppendUvarint(b, uint64(a.Ordinal))
			v := a.Value
			if bv, ok := v.([]byte); ok && bv == nil {
				v = nil // bound as NULL, as on the leader
			}
			var err error
			if b, err = encoding.AppendValue(b, v); err != nil {
				return nil, fmt.Errorf("hiqlite: argument %d of statement %d: %w", j+1, i+1, err)
			}
		}
	}
	return b, nil
}

// UnmarshalCommand decodes a command. Text and blob values are copied, so
// data may be reused by the caller. A command of a newer version fails
// with an *encoding.VersionError.
func UnmarshalCommand(data []byte) (*Command, error) {
	d := encoding.NewDecoder(data, ErrCorruptCommand)
	d.CopyBlobs = true
	v := d.Version(commandFormat, commandVersion)
	c := &Command{Kind: CommandKind(d.Byte())}
	if c.Kind == KindBatch && v >= 2 && d.Err() == nil {
		return unmarshalBatch(d)
	}
	c.Time = d.Varint()
	c.Seed = d.Uvarint()
	c.Origin.Node = d.String()
	c.Origin.Session = d.Uvarint()
	c.Origin.Seq = d.Uvarint()
	if f := d.Uvarint(); f > math.MaxUint32 {
		d.Fail("flags %#x", f)
	} else {
		c.Flags = Flags(f)
	}
	n := d.Count(3) // a statement takes at least 3 bytes
	if n > 0 {
		c.Stmts = make([]Statement, n)
	}
	// A transaction's statements often repeat one text with other
	// arguments (10,000 inserts): repeated texts and names share one
	// string, and the arguments of all statements share one backing array
	// while it lasts.
	var prevSQL, prevName string
	var args []Arg
	for i := 0; i < n && d.Err() == nil; i++ {
		s := &c.Stmts[i]
		if b := d.Bytes(); string(b) == prevSQL {
			s.SQL = prevSQL
		} else {
			s.SQL = string(b)
			prevSQL = s.SQL
		}
		s.Failed = d.Byte() == 1
		na := d.Count(3) // an argument takes at least 3 bytes
		if na > 0 {
			if len(args) < na {
				// Room for the next 64 statements of this shape, never
				// more arguments than the bytes left could hold.
				args = make([]Arg, max(na, min(min(n-i, 64)*na, d.Len()/3)))
			}
			s.Args, args = args[:na:na], args[na:]
		}
		for j := 0; j < na && d.Err() == nil; j++ {
			a := &s.Args[j]
			if b := d.Bytes(); string(b) == prevName {
				a.Name = prevName
			} else {
				a.Name = string(b)
				prevName = a.Name
			}
			if o := d.Uvarint(); o > math.MaxInt32 {
				d.Fail("ordinal %d", o)
			} else {
				a.Ordinal = int(o)
			}
			a.Value = d.Value()
		}
	}
	d.Done()
	if d.Err() != nil {
		return nil, d.Err()
	}
	switch c.Kind {
	case KindExec, KindTx, KindNoop, KindFence:
	default:
		return nil, fmt.Errorf("%w: unknown command kind %d", ErrCorruptCommand, c.Kind)
	}
	return c, nil
}
