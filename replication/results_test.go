package replication

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// The state machine stores marshalResults' bytes in the replicated database:
// they must round-trip, be the same for equal results, and reject garbage.
func TestResultsRoundTrip(t *testing.T) {
	t.Parallel()
	sq := map[string]error{"unique": uniqueError(t)}
	in := []Result{
		{Columns: []string{"id", "v"}, DeclTypes: []string{"INTEGER", ""}, Rows: [][]any{{int64(1), "x"}, {int64(2), []byte{0, 1}}, {int64(3), nil}, {int64(4), 1.5}}, LastInsertID: 4, RowsAffected: 4},
		{RowsAffected: 0, Err: sq["unique"]},
	}
	b, err := marshalResults(in)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := marshalResults(in)
	if !bytes.Equal(b, b2) {
		t.Fatal("marshalResults is not deterministic")
	}
	out, err := unmarshalResults(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !reflect.DeepEqual(out[0], in[0]) {
		t.Fatalf("got %#v, want %#v", out, in)
	}
	if !errors.Is(out[1].Err, sqlite3.CONSTRAINT_UNIQUE) || out[1].Err.Error() != in[1].Err.Error() {
		t.Fatalf("error result: got %v, want %v", out[1].Err, in[1].Err)
	}
	if none, err := unmarshalResults(mustMarshalResults(t, nil)); err != nil || len(none) != 0 {
		t.Fatalf("no results: %v %v", none, err)
	}
	for i := range b {
		if _, err := unmarshalResults(b[:i]); !errors.Is(err, errCorruptResults) {
			t.Fatalf("truncated to %d bytes: %v, want errCorruptResults", i, err)
		}
	}
	var ve *encoding.VersionError
	if _, err := unmarshalResults(append([]byte{2}, b[1:]...)); !errors.As(err, &ve) || ve.Version != 2 || ve.Known != 1 {
		t.Fatalf("newer version: %v, want a VersionError", err)
	}
	if _, err := unmarshalResults(append([]byte{0}, b[1:]...)); !errors.Is(err, errCorruptResults) {
		t.Fatalf("version 0: %v, want errCorruptResults", err)
	}
}

func mustMarshalResults(t testing.TB, rs []Result) []byte {
	t.Helper()
	b, err := marshalResults(rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uniqueError returns a real UNIQUE constraint error from SQLite.
func uniqueError(tb testing.TB) error {
	tb.Helper()
	conn, err := sqlite3.OpenFlags(":memory:", sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(`CREATE TABLE t(u UNIQUE); INSERT INTO t VALUES ('x')`); err != nil {
		tb.Fatal(err)
	}
	err = conn.Exec(`INSERT INTO t VALUES ('x')`)
	if err == nil {
		tb.Fatal("no UNIQUE error")
	}
	return err
}

// FuzzUnmarshalResults: arbitrary bytes never panic, counts never allocate
// past the input, and whatever decodes encodes to bytes that decode and
// encode again to the same bytes.
func FuzzUnmarshalResults(f *testing.F) {
	f.Add(mustMarshalResults(f, []Result{{Columns: []string{"a"}, Rows: [][]any{{int64(1), "x", []byte(nil), []byte{}, 2.5, nil}}}}))
	f.Add(mustMarshalResults(f, []Result{{Err: &RefusedError{SQL: "x", Reason: "y"}}, {Err: nodeerr.ErrTooLarge}}))
	f.Add(mustMarshalResults(f, nil))
	f.Add([]byte{resultsV1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := unmarshalResults(data)
		if err != nil {
			return
		}
		rows := 0
		for _, r := range rs {
			rows += len(r.Rows) + len(r.Columns) + len(r.DeclTypes)
		}
		if len(rs)+rows > len(data) {
			t.Fatalf("%d results and %d rows and names from %d bytes", len(rs), rows, len(data))
		}
		b1, err := marshalResults(rs)
		if err != nil {
			t.Fatal(err)
		}
		rs2, err := unmarshalResults(b1)
		if err != nil {
			t.Fatalf("re-encoded results do not decode: %v", err)
		}
		b2, _ := marshalResults(rs2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("unstable encoding:\n%x\n%x", b1, b2)
		}
	})
}
