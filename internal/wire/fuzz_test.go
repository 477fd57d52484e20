package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

// FuzzReadMessage: arbitrary bytes never panic, and whatever decodes
// re-encodes to a frame that decodes and encodes to the same bytes.
func FuzzReadMessage(f *testing.F) {
	for _, m := range messages(false) {
		f.Add(encode(f, m))
	}
	for _, err := range []error{
		fmt.Errorf("%w: %w", nodeerr.ErrTxAborted, uniqueError(f)),
		&nodeerr.NotLeaderError{LeaderID: "n2", LeaderAddr: "h:1"},
		&replication.RefusedError{SQL: "ATTACH", Reason: "no"},
		errors.Join(nodeerr.ErrClosed, sqlite3.BUSY, context.Canceled),
		sqlite3.BUSY_TIMEOUT,
	} {
		f.Add(encode(f, &ErrorResponse{Err: err}))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadMessage(bytes.NewReader(data))
		if err != nil {
			return
		}
		b1, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", m, err)
		}
		m2, err := ReadMessage(bytes.NewReader(b1))
		if err != nil {
			t.Fatalf("decoding the re-encoded %#v: %v", m, err)
		}
		b2, err := AppendMessage(nil, m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("unstable encoding:\n%x\n%x", b1, b2)
		}
	})
}

func BenchmarkExecRequest(b *testing.B) {
	m := &ExecRequest{
		Origin: replication.Origin{Node: "node-1", Session: 12345, Seq: 678},
		Busy:   5e9,
		Stmts: []replication.Statement{{
			SQL: "INSERT INTO users(name, email, age) VALUES (?, ?, ?)",
			Args: []replication.Arg{
				{Ordinal: 1, Value: "Ada Lovelace"},
				{Ordinal: 2, Value: "ada@example.com"},
				{Ordinal: 3, Value: int64(36)},
			},
		}},
	}
	var buf []byte
	r := bytes.NewReader(nil)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
		r.Reset(buf)
		if _, err := ReadMessage(r); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkErrorResponse is the whole path of a constraint error: encode,
// frame, decode and rebuild.
func BenchmarkErrorResponse(b *testing.B) {
	m := &ErrorResponse{Err: fmt.Errorf("%w: %w", nodeerr.ErrTxAborted,
		uniqueError(b))}
	var buf []byte
	r := bytes.NewReader(nil)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
		r.Reset(buf)
		if _, err := ReadMessage(r); err != nil {
			b.Fatal(err)
		}
	}
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
