package replication

import (
	"github.com/hiqlite/hiqlite/internal/encoding"

	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

var commandCases = []*Command{
	{Kind: KindNoop},
	{Kind: KindExec, Time: 1700000000123456789, Seed: math.MaxUint64, Origin: Origin{Node: "n1", Session: 7, Seq: 9},
		Stmts: []Statement{{SQL: "INSERT INTO t VALUES (?, ?, ?, ?, ?)", Args: []Arg{
			{Ordinal: 1, Value: nil}, {Ordinal: 2, Value: int64(math.MinInt64)}, {Ordinal: 3, Value: math.Inf(-1)},
			{Ordinal: 4, Value: "héllo"}, {Ordinal: 5, Value: []byte{0, 255}},
		}}}},
	{Kind: KindTx, Time: -1, Flags: FlagForeignKeys, Origin: Origin{Node: "a-very-long-node-id"},
		Stmts: []Statement{
			{SQL: "SAVEPOINT a"},
			{SQL: "INSERT INTO t VALUES (:x)", Args: []Arg{{Name: "x", Value: ""}}, Failed: true},
			{SQL: "", Args: []Arg{{Name: "y", Value: []byte{}}}},
		}},
	{Kind: KindBatch, Batch: []*Command{
		{Kind: KindExec, Time: 1, Seed: 2, Origin: Origin{Node: "n1", Session: 7, Seq: 10}, Stmts: []Statement{{SQL: "DELETE FROM t"}}},
		{Kind: KindExec, Time: 3, Stmts: []Statement{{SQL: "INSERT INTO t VALUES (?)", Args: []Arg{{Ordinal: 1, Value: int64(1)}}}}},
	}},
}

func TestCommandRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range commandCases {
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		// Version 2 only for a batch: the other kinds stay readable by
		// a node of version 1.
		if want := byte(1); b[0] != want && (c.Kind != KindBatch || b[0] != commandVersion) {
			t.Errorf("%v: version byte %d", c.Kind, b[0])
		}
		got, err := UnmarshalCommand(b)
		if err != nil {
			t.Fatalf("%v: %v", c.Kind, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, c)
		}
		// Every truncation is an error, never a panic or a shorter command.
		for i := range len(b) {
			if _, err := UnmarshalCommand(b[:i]); !errors.Is(err, ErrCorruptCommand) {
				t.Errorf("%v truncated to %d bytes: err = %v", c.Kind, i, err)
			}
		}
	}
}

func TestCommandRefusesUnknownVersion(t *testing.T) {
	t.Parallel()
	b, _ := (&Command{Kind: KindNoop}).MarshalBinary()
	b[0] = commandVersion + 1
	_, err := UnmarshalCommand(b)
	var ve *encoding.VersionError
	if !errors.As(err, &ve) || ve.Version != commandVersion+1 || ve.Known != commandVersion || !errors.Is(err, encoding.ErrUnknownVersion) {
		t.Fatalf("err = %v, want a VersionError", err)
	}
	b[0] = 0
	if _, err := UnmarshalCommand(b); !errors.Is(err, ErrCorruptCommand) {
		t.Fatalf("version 0: err = %v, want ErrCorruptCommand", err)
	}
}

func TestCommandRefusesUnknownArgType(t *testing.T) {
	t.Parallel()
	c := &Command{Kind: KindExec, Stmts: []Statement{{SQL: "x", Args: []Arg{{Ordinal: 1, Value: 3}}}}}
	if _, err := c.MarshalBinary(); err == nil {
		t.Fatal("an int (not int64) argument must be refused")
	}
}

// FuzzUnmarshalCommand: arbitrary bytes never panic, and whatever decodes
// encodes to bytes that decode and encode again to the same bytes (compared
// as bytes: a NaN argument is not DeepEqual to itself).
func FuzzUnmarshalCommand(f *testing.F) {
	for _, c := range commandCases {
		b, _ := c.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := UnmarshalCommand(b)
		if err != nil {
			return
		}
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := UnmarshalCommand(again)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		third, err := c2.MarshalBinary()
		if err != nil || !bytes.Equal(again, third) {
			t.Fatalf("re-encode differs: %v", err)
		}
	})
}
