package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

var origin = replication.Origin{Node: "nöde-1 ☃", Session: 1<<63 + 5, Seq: 42}

// bigBlob is an 8 MiB blob value.
var bigBlob = func() []byte {
	b := make([]byte, 8<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// messages returns one or more representative values of every message type.
// big adds the ones carrying 8 MiB blobs.
func messages(big bool) []Message {
	insert := replication.Statement{
		SQL: "INSERT INTO t(a, b, c) VALUES (?, ?, :c) RETURNING id",
		Args: []replication.Arg{
			{Ordinal: 1, Value: int64(-1 << 63)},
			{Ordinal: 2, Value: "héllo, 世界 🌍"},
			{Name: "c", Value: []byte{}},
		},
	}
	all := replication.Statement{
		SQL:    "UPDATE t SET x = ? WHERE y = ? OR z = ? OR w = ? OR v = ? OR u = ?",
		Failed: true,
		Args: []replication.Arg{
			{Ordinal: 1, Value: nil},
			{Ordinal: 2, Value: int64(math.MaxInt64)},
			{Ordinal: 3, Value: math.Inf(-1)},
			{Ordinal: 4, Value: ""},
			{Ordinal: 5, Value: []byte(nil)},
			{Ordinal: 6, Value: []byte{0, 1, 2, 0xff}},
		},
	}
	result := replication.Result{
		Columns:   []string{"id", "name", "data", "score", "nothing"},
		DeclTypes: []string{"INTEGER", "TEXT", "BLOB", "REAL", ""},
		Rows: [][]any{
			{int64(1), "Ünïcödé ✓", []byte{}, 1.5, nil},
			{int64(-2), "", []byte{9}, math.SmallestNonzeroFloat64, nil},
		},
		LastInsertID: 2,
		RowsAffected: 2,
	}
	ms := []Message{
		&ExecRequest{},
		&ExecRequest{Origin: origin, Flags: replication.FlagForeignKeys, Busy: 5 * time.Second,
			Stmts: []replication.Statement{insert, all, {SQL: "DELETE FROM t"}}},
		&ExecResponse{},
		// The smallest encodings of repeated elements, against the decoder's
		// bounds on counts.
		&ExecResponse{Index: 3, Results: make([]replication.Result, 20)},
		&ExecRequest{Stmts: make([]replication.Statement, 20)},
		&TxExecRequest{Stmt: replication.Statement{Args: make([]replication.Arg, 20)}},
		&ResultResponse{Result: replication.Result{Columns: make([]string, 20), DeclTypes: make([]string, 20), Rows: make([][]any, 20)}},
		&ErrorResponse{Err: errors.Join(nodeerr.ErrClosed, nodeerr.ErrClosed, nodeerr.ErrClosed, nodeerr.ErrClosed, nodeerr.ErrClosed, nodeerr.ErrClosed)},
		&ExecResponse{Index: 1 << 40, Results: []replication.Result{result, {RowsAffected: 1}, {Err: errors.New("boom")}}},
		&TxBeginRequest{},
		&TxBeginRequest{Origin: origin, Flags: 0xffffffff, Busy: time.Millisecond, Idle: -time.Minute, SnapIndex: 99, SnapValid: true},
		&OK{},
		&TxExecRequest{Stmt: insert},
		&TxExecRequest{Stmt: all, ReadOnly: true},
		&ResultResponse{},
		&ResultResponse{Result: result},
		&TxCommitRequest{},
		&CommitResponse{Index: math.MaxUint64},
		&TxRollbackRequest{},
		&ReadIndexRequest{},
		&ReadIndexResponse{Index: 7},
		&OutcomeRequest{Origin: origin},
		&OutcomeResponse{Applied: true, Index: 12},
		&OutcomeResponse{},
		&ErrorResponse{Err: nodeerr.ErrNoLeader},
		&ErrorResponse{},
		&CacheRequest{},
		&CacheRequest{Cmd: []byte{1, 2, 0, 0xff}},
		&CacheResponse{},
		&CacheResponse{Index: 1 << 50, Result: []byte("result")},
		&ClientHello{},
		&ClientHello{Node: "client-ab", Session: math.MaxUint64},
		&ClientRequest{},
		&ClientRequest{Op: OpExec, Seq: 1 << 40, Stmt: insert, Consistency: 1, Timeout: -time.Second, ReadOnly: true},
		&ClientResult{},
		&ClientResult{Result: result, More: true, InTx: true, TxSeq: 3, Applied: true, Nullable: []byte{2, 1, 0, 0, 2}, NumInput: -1},
		&ClientCancel{},
		&ClientBackup{},
		&ClientBackup{Recipients: []string{"age1a", "age1b"}, Passphrase: "pass", Timeout: time.Minute},
		&BackupChunk{},
		&BackupChunk{Name: "hiqlite-x.hqb", Data: []byte{0, 1, 0xff}, Read: 1 << 33, Size: -1},
		&BackupDone{},
		&BackupDone{Name: "hiqlite-x.hqb", Index: math.MaxUint64, Term: 3, Size: 1 << 40},
		&ExecBatchRequest{},
		&ExecBatchRequest{Reqs: make([]ExecRequest, 20)},
		&ExecBatchRequest{Reqs: []ExecRequest{{Origin: origin, Flags: replication.FlagForeignKeys, Busy: time.Second,
			Stmts: []replication.Statement{insert, all}}, {Stmts: []replication.Statement{{SQL: "DELETE FROM t"}}}}},
		&ExecBatchResponse{},
		&ExecBatchResponse{Outcomes: make([]ExecOutcome, 20)},
		&ExecBatchResponse{Outcomes: []ExecOutcome{{Index: 9, Results: []replication.Result{result, {Err: errors.New("boom")}}},
			{Err: nodeerr.ErrNotApplied}, {Err: &nodeerr.NotLeaderError{LeaderID: "n2", LeaderAddr: "127.0.0.1:7000"}}}},
	}
	if big {
		ms = append(ms,
			&ExecRequest{Origin: origin, Stmts: []replication.Statement{{
				SQL: "INSERT INTO blobs VALUES (?)", Args: []replication.Arg{{Ordinal: 1, Value: bigBlob}}}}},
			&ResultResponse{Result: replication.Result{Columns: []string{"b"}, DeclTypes: []string{"BLOB"},
				Rows: [][]any{{bigBlob}, {strings.Repeat("é", 1<<20)}}}},
		)
	}
	return ms
}

func encode(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := AppendMessage(nil, m)
	if err != nil {
		t.Fatalf("AppendMessage(%T): %v", m, err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range messages(true) {
		t.Run(m.Type().String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMessage(&buf, m); err != nil {
				t.Fatal(err)
			}
			frame := bytes.Clone(buf.Bytes())
			got, err := ReadMessage(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes left unread", buf.Len())
			}
			if got.Type() != m.Type() {
				t.Fatalf("got %s, want %s", got.Type(), m.Type())
			}
			if !reflect.DeepEqual(got, m) && !errorsOnlyDiffer(got, m) {
				t.Fatalf("got %#v\nwant %#v", got, m)
			}
			if again := encode(t, got); !bytes.Equal(again, frame) {
				t.Fatal("the decoded message encodes differently")
			}
		})
	}
}

// errorsOnlyDiffer compares messages whose errors are rebuilt values: equal
// texts stand for equal errors (the error tests check the rest).
func errorsOnlyDiffer(a, b Message) bool {
	if ea, ok := a.(*ErrorResponse); ok {
		eb := b.(*ErrorResponse)
		return ea.Err != nil && eb.Err != nil && ea.Err.Error() == eb.Err.Error()
	}
	if ba, ok := a.(*ExecBatchResponse); ok {
		bb := b.(*ExecBatchResponse)
		if len(ba.Outcomes) != len(bb.Outcomes) {
			return false
		}
		for i := range ba.Outcomes {
			x, y := ba.Outcomes[i], bb.Outcomes[i]
			if (x.Err == nil) != (y.Err == nil) || x.Err != nil && x.Err.Error() != y.Err.Error() ||
				x.Index != y.Index || !resultsOnlyErrorsDiffer(x.Results, y.Results) {
				return false
			}
		}
		return true
	}
	ra, ok1 := a.(*ExecResponse)
	rb, ok2 := b.(*ExecResponse)
	return ok1 && ok2 && ra.Index == rb.Index && resultsOnlyErrorsDiffer(ra.Results, rb.Results)
}

// resultsOnlyErrorsDiffer: ra and rb are equal but for errors of equal
// texts.
func resultsOnlyErrorsDiffer(ra, rb []replication.Result) bool {
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		x, y := ra[i], rb[i]
		if (x.Err == nil) != (y.Err == nil) || x.Err != nil && x.Err.Error() != y.Err.Error() {
			return false
		}
		x.Err, y.Err = nil, nil
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// TestValuesExact checks what DeepEqual cannot: NaN payloads, and nil and
// empty blobs.
func TestValuesExact(t *testing.T) {
	t.Parallel()
	nan := math.Float64frombits(0x7ff8_dead_beef_0001)
	values := []any{nan, math.Copysign(0, -1), []byte{}, []byte(nil), "", nil}
	args := make([]replication.Arg, len(values))
	row := make([]any, len(values))
	for i, v := range values {
		args[i] = replication.Arg{Ordinal: i + 1, Value: v}
		row[i] = v
	}
	m, err := ReadMessage(bytes.NewReader(encode(t, &TxExecRequest{Stmt: replication.Statement{Args: args}})))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReadMessage(bytes.NewReader(encode(t, &ResultResponse{Result: replication.Result{Rows: [][]any{row}}})))
	if err != nil {
		t.Fatal(err)
	}
	gotRow := r.(*ResultResponse).Result.Rows[0]
	for i, a := range m.(*TxExecRequest).Stmt.Args {
		for _, got := range []any{a.Value, gotRow[i]} {
			checkExact(t, got, values[i])
		}
	}
}

func checkExact(t *testing.T, got, want any) {
	t.Helper()
	if reflect.TypeOf(got) != reflect.TypeOf(want) {
		t.Fatalf("got %T, want %T", got, want)
	}
	switch w := want.(type) {
	case float64:
		if math.Float64bits(got.(float64)) != math.Float64bits(w) {
			t.Fatalf("got float bits %#x, want %#x", math.Float64bits(got.(float64)), math.Float64bits(w))
		}
	case []byte:
		g := got.([]byte)
		if (g == nil) != (w == nil) || !bytes.Equal(g, w) {
			t.Fatalf("got blob %#v, want %#v", g, w)
		}
	default:
		if got != want {
			t.Fatalf("got %#v, want %#v", got, want)
		}
	}
}

// TestStream reads several messages back to back, through a reader with and
// without ReadByte.
func TestStream(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	ms := messages(false)
	for _, m := range ms {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for name, r := range map[string]io.Reader{
		"ByteReader": bytes.NewReader(buf.Bytes()),
		"Reader":     struct{ io.Reader }{bytes.NewReader(buf.Bytes())},
	} {
		for _, want := range ms {
			got, err := ReadMessage(r)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.Type() != want.Type() {
				t.Fatalf("%s: got %s, want %s", name, got.Type(), want.Type())
			}
		}
		if _, err := ReadMessage(r); err != io.EOF {
			t.Fatalf("%s: at the end: got %v, want io.EOF", name, err)
		}
	}
}

// TestTruncated cuts every frame at every length, both as a stream that ends
// early and as a frame whose declared length fits its shortened body.
func TestTruncated(t *testing.T) {
	t.Parallel()
	for _, m := range messages(false) {
		frame := encode(t, m)
		for n := range len(frame) {
			_, err := ReadMessage(bytes.NewReader(frame[:n]))
			want := io.ErrUnexpectedEOF
			if n == 0 {
				want = io.EOF
			}
			if err != want {
				t.Fatalf("%s cut to %d of %d bytes: got %v, want %v", m.Type(), n, len(frame), err, want)
			}
		}
		_, p := uvarintLen(frame)
		body := frame[p:]
		for n := 1; n < len(body); n++ {
			short := frameOf(body[:n])
			if _, err := ReadMessage(bytes.NewReader(short)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s body cut to %d of %d bytes: got %v, want ErrMalformed", m.Type(), n, len(body), err)
			}
		}
	}
}

func uvarintLen(b []byte) (uint64, int) {
	var n uint64
	for i, c := range b {
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return n, i + 1
		}
	}
	panic("bad uvarint")
}

// frameOf frames body (type byte and message body) as is.
func frameOf(body []byte) []byte {
	var b []byte
	for n := uint64(len(body)); ; n >>= 7 {
		if n < 0x80 {
			b = append(b, byte(n))
			break
		}
		b = append(b, byte(n)|0x80)
	}
	return append(b, body...)
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	okBody := encode(t, &OutcomeResponse{Applied: true, Index: 1})[1:]
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"empty frame", []byte{0}, "empty frame"},
		{"unknown type 0", frameOf([]byte{0}), "unknown message type 0"},
		{"unknown type 26", frameOf([]byte{26}), "unknown message type 26"},
		{"unknown type 255", frameOf([]byte{255, 1, 2, 3}), "unknown message type 255"},
		{"trailing bytes", frameOf(append(bytes.Clone(okBody), 0)), "1 trailing bytes"},
		{"bad bool", frameOf([]byte{byte(TypeOutcomeResponse), 2, 0}), "bad bool 2"},
		{"bad value tag", frameOf([]byte{byte(TypeTxExecRequest), 0, 0, 1, 0, 2, 9, 0}), "unknown value tag 9"},
		{"bad error presence", frameOf([]byte{byte(TypeErrorResponse), 2}), "bad error presence 2"},
		{"unknown error kind", frameOf([]byte{byte(TypeErrorResponse), 1, 1, 'x', 1, 99}), "unknown error kind 99"},
		{"too many parts", frameOf(append([]byte{byte(TypeErrorResponse), 1, 0, encoding.MaxErrorParts + 1}, bytes.Repeat([]byte{kindClosed}, encoding.MaxErrorParts+1)...)), "17 error parts"},
		{"huge count", frameOf([]byte{byte(TypeExecResponse), 0, 0xff, 0xff, 0xff, 0xff, 0x0f}), "exceeds the input"},
		{"bad sqlite code", frameOf([]byte{byte(TypeErrorResponse), 1, 0, 1, 1 /* sqlite3.ErrorCode */, 0x80, 0x02}), "sqlite error code 256"},
		{"bad length varint", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "not a valid uvarint"},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "exceeds the limit"},
		{"length over max", lengthPrefix(MaxFrameSize + 1), "exceeds the limit"},
	} {
		m, err := ReadMessage(bytes.NewReader(tc.frame))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want ErrMalformed with %q", tc.name, m, err, tc.want)
		}
	}
}

func lengthPrefix(n uint64) []byte {
	var b []byte
	for ; n >= 0x80; n >>= 7 {
		b = append(b, byte(n)|0x80)
	}
	return append(b, byte(n))
}

// TestOversizeAllocatesNothing: a declared length above MaxFrameSize is
// rejected before any allocation.
func TestOversizeAllocatesNothing(t *testing.T) {
	frame := lengthPrefix(MaxFrameSize + 1)
	r := bytes.NewReader(frame)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(frame)
		if _, err := ReadMessage(r); !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations to reject an oversize frame", allocs)
	}
}

// TestLargeDeclaredLength: a peer declaring MaxFrameSize and sending a few
// bytes makes the reader allocate a chunk, not the declared length.
func TestLargeDeclaredLength(t *testing.T) {
	frame := append(lengthPrefix(MaxFrameSize), byte(TypeOK), 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := ReadMessage(bytes.NewReader(frame)); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte input", d, len(frame))
	}
}

// TestChunkedRead: a frame above chunkSize is read correctly in chunks.
func TestChunkedRead(t *testing.T) {
	t.Parallel()
	m := &ResultResponse{Result: replication.Result{Rows: [][]any{{bigBlob}}}}
	got, err := ReadMessage(struct{ io.Reader }{bytes.NewReader(encode(t, m))})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.(*ResultResponse).Result.Rows[0][0].([]byte), bigBlob) {
		t.Fatal("blob differs")
	}
}

func TestWriteOversize(t *testing.T) {
	t.Parallel()
	// A value over the limit is refused before it is copied (the pages of
	// huge are never touched).
	huge := make([]byte, MaxFrameSize+1)
	err := WriteMessage(io.Discard, &TxExecRequest{Stmt: replication.Statement{Args: []replication.Arg{{Value: huge}}}})
	if err == nil || !strings.Contains(err.Error(), "exceeds the frame limit") {
		t.Fatalf("got %v, want a frame limit error", err)
	}
}

func TestWriteOversizeFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 256 MiB buffer")
	}
	// Values that fit, in a frame that does not.
	half := make([]byte, MaxFrameSize/2)
	m := &ExecRequest{Stmts: []replication.Statement{{Args: []replication.Arg{{Value: half}, {Value: half}}}}}
	if _, err := AppendMessage(nil, m); err == nil || !strings.Contains(err.Error(), "exceeds the frame limit") {
		t.Fatalf("got %v, want a frame limit error", err)
	}
}

func TestUnsupportedValue(t *testing.T) {
	t.Parallel()
	b, err := AppendMessage([]byte("keep"), &TxExecRequest{Stmt: replication.Statement{Args: []replication.Arg{{Value: 1}}}})
	if err == nil || !strings.Contains(err.Error(), "type int") {
		t.Fatalf("got %v, want an error naming int", err)
	}
	if string(b) != "keep" {
		t.Fatalf("got %q, want the input unchanged", b)
	}
}

// A batch beyond MaxExecBatch is neither sent nor decoded: a peer cannot
// make the leader start more writes at once than a follower would send.
func TestExecBatchBound(t *testing.T) {
	t.Parallel()
	over := &ExecBatchRequest{Reqs: make([]ExecRequest, MaxExecBatch+1)}
	if _, err := AppendMessage(nil, over); err == nil {
		t.Fatalf("a batch of %d writes was encoded", len(over.Reqs))
	}
	if _, err := AppendMessage(nil, &ExecBatchResponse{Outcomes: make([]ExecOutcome, MaxExecBatch+1)}); err == nil {
		t.Fatal("a batch response beyond the bound was encoded")
	}
	// The frame a peer could send anyway: the count, then empty writes.
	body := encoding.AppendUvarint([]byte{byte(TypeExecBatchRequest)}, MaxExecBatch+1)
	for range MaxExecBatch + 1 {
		body = append(body, 0, 0, 0, 0, 0, 0) // origin node, session, seq; flags, busy, no statements
	}
	frame := append(encoding.AppendUvarint(nil, uint64(len(body))), body...)
	_, err := ReadMessage(bytes.NewReader(frame))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("a frame of %d writes: %v, want ErrMalformed for the limit", MaxExecBatch+1, err)
	}
	at := &ExecBatchRequest{Reqs: make([]ExecRequest, MaxExecBatch)}
	if _, err := ReadMessage(bytes.NewReader(encode(t, at))); err != nil {
		t.Fatalf("a batch of exactly %d writes: %v", MaxExecBatch, err)
	}
}
