package replication

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/golden"
)

// The header of the SQL state machine's snapshot stream is pinned; what
// follows is a zstd stream of the database file, whose bytes depend on the
// compressor and SQLite, so it is checked by decoding, not byte for byte.
func TestGoldenSnapshotHeader(t *testing.T) {
	head := append([]byte(snapshotMagic), snapshotFormat)
	b := golden.Bytes(t, "sqlsnapshot_v1_header", "SQL state machine snapshot (state.bin), format 1: the header, \"HIQLSNAP\"\nand the format byte; a zstd stream of the database file follows", head)
	if !bytes.Equal(head, b) {
		t.Fatalf("header changed:\n got %x\nwant %x", head, b)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	stream := append(bytes.Clone(b), enc.EncodeAll([]byte("database file"), nil)...)
	var out bytes.Buffer
	if err := decodeSnapshot(bytes.NewReader(stream), &out); err != nil || out.String() != "database file" {
		t.Fatalf("decoded %q, %v", out.String(), err)
	}
	stream[len(snapshotMagic)] = snapshotFormat + 1
	var ve *encoding.VersionError
	if err := decodeSnapshot(bytes.NewReader(stream), &out); !errors.As(err, &ve) {
		t.Fatalf("a newer format: %v, want a VersionError", err)
	}
}
