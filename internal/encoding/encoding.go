// Package encoding holds the primitives of hiqlite's binary formats: the
// Raft log commands (package replication), the session results stored in
// the database (replication), the RPC frames (internal/wire) and the cache
// group's log (extensions). Each format keeps its own schema and version
// byte; the pieces they share are written here once:
//
//   - unsigned numbers as uvarints, signed ones as zigzag varints;
//   - strings and blobs as a uvarint length and their bytes;
//   - float64 as its 8 IEEE 754 bits, little endian (NaN payloads survive);
//   - bools as one byte, 0 or 1;
//   - typed values (nil, int64, float64, string, []byte) as a tag byte from
//     the one table below, then the value.
//
// Decoder reads them back, keeps its first error, says at which byte it
// failed, and bounds every count and length by the input left, so hostile
// input cannot make it allocate more than a small multiple of its size.
//
// The testdata/golden files at the module root pin the bytes of every
// format.
package encoding

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Value tags. The numbers are protocol: never reuse one. TagNilBlob keeps
// a nil []byte apart from an empty one where a format needs it (the Raft
// log encodes a nil blob as TagNull, bound as NULL).
const (
	TagNull    = 0
	TagInt     = 1
	TagFloat   = 2
	TagText    = 3
	TagBlob    = 4
	TagNilBlob = 5
)

// AppendUvarint appends v as a uvarint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendVarint appends v as a zigzag varint.
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendBool appends 1 for true, 0 for false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendFloat64 appends v's IEEE 754 bits, little endian.
func AppendFloat64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// AppendBytes appends v's length and v.
func AppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendString appends s's length and s.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendStrings appends the number of strings and each string.
func AppendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = AppendString(b, s)
	}
	return b
}

// AppendValue appends v's tag and v: nil, int64, float64, string or
// []byte (a nil []byte as TagNilBlob). Other types fail, naming the type.
func AppendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, TagNull), nil
	case int64:
		return binary.AppendVarint(append(b, TagInt), v), nil
	case float64:
		return AppendFloat64(append(b, TagFloat), v), nil
	case string:
		return AppendString(append(b, TagText), v), nil
	case []byte:
		if v == nil {
			return append(b, TagNilBlob), nil
		}
		return AppendBytes(append(b, TagBlob), v), nil
	}
	return nil, fmt.Errorf("hiqlite: cannot encode a value of type %T", v)
}

// ErrUnknownVersion is matched by a VersionError.
var ErrUnknownVersion = errors.New("hiqlite: unknown format version")

// VersionError: the input is of a version of its format newer than this
// code reads, written by a newer node. The node must not guess at it.
type VersionError struct {
	Format  string // "Raft log command", ...
	Version byte   // what the input says
	Known   byte   // the newest version this code reads
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("hiqlite: %s version %d is newer than this node reads (up to %d): upgrade this node", e.Format, e.Version, e.Known)
}

// Unwrap returns ErrUnknownVersion.
func (e *VersionError) Unwrap() error { return ErrUnknownVersion }
