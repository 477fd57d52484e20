package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/internal/golden"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/replication"
)

type goldenMessage struct {
	name, comment string
	m             Message
}

// goldenMessages are the RPC frames pinned by testdata/golden: one or more
// per message type, and the error encoding's kinds of parts.
func goldenMessages(t *testing.T) []goldenMessage {
	sq := sqliteErrs(t)
	origin := replication.Origin{Node: "node-1", Session: 1<<63 + 5, Seq: 42}
	stmt := replication.Statement{
		SQL: "UPDATE t SET a = ?1, b = :b WHERE c = ?3 OR d = ?4 OR e = ?5 OR f = ?6 OR g = ?7",
		Args: []replication.Arg{
			{Ordinal: 1, Value: int64(-1 << 63)},
			{Name: "b", Value: "héllo ☃"},
			{Ordinal: 3, Value: []byte{}},
			{Ordinal: 4, Value: []byte(nil)},
			{Ordinal: 5, Value: math.Inf(1)},
			{Ordinal: 6, Value: nil},
			{Ordinal: 300, Value: []byte{0, 0xff}},
		},
	}
	failed := replication.Statement{SQL: "INSERT INTO t VALUES (1)", Failed: true}
	result := replication.Result{
		Columns:   []string{"id", "name", "data", "score", "nothing"},
		DeclTypes: []string{"INTEGER", "TEXT", "BLOB", "REAL", ""},
		Rows: [][]any{
			{int64(1), "Ünïcödé ✓", []byte{}, 1.5, nil},
			{int64(-2), "", []byte{9}, -0.25, nil},
		},
		LastInsertID: 2,
		RowsAffected: 3,
	}
	failedResult := replication.Result{Err: sq["unique"]}
	refused := &replication.RefusedError{SQL: "DROP TABLE _hiqlite_state", Reason: "an internal table"}
	return []goldenMessage{
		{"rpc_v1_exec_request", "RPC frame ExecRequest: origin, both flags, busy 1.5s, a statement with\narguments of every value type (nil blob kept) and a failed one", &ExecRequest{
			Origin: origin, Flags: replication.FlagForeignKeys | replication.FlagNotMigrate, Busy: 1500 * time.Millisecond,
			Stmts: []replication.Statement{stmt, failed}}},
		{"rpc_v1_exec_response", "RPC frame ExecResponse: index 77, a result with rows of every value type\nand a result with a SQLite UNIQUE constraint error", &ExecResponse{
			Index: 77, Results: []replication.Result{result, failedResult}}},
		{"rpc_v1_exec_batch_request", "RPC frame ExecBatchRequest: two writes, the first as in rpc_v1_exec_request,\nthe second empty", &ExecBatchRequest{Reqs: []ExecRequest{{
			Origin: origin, Flags: replication.FlagForeignKeys | replication.FlagNotMigrate, Busy: 1500 * time.Millisecond,
			Stmts: []replication.Statement{stmt, failed}}, {}}}},
		{"rpc_v1_exec_batch_response", "RPC frame ExecBatchResponse: a write refused with ErrNotApplied, then a write\nanswered at index 77 with a result with rows and a failed result", &ExecBatchResponse{Outcomes: []ExecOutcome{
			{Err: nodeerr.ErrNotApplied}, {Index: 77, Results: []replication.Result{result, failedResult}}}}},
		{"rpc_v1_tx_begin_request", "RPC frame TxBeginRequest: origin, flags, busy 1s, idle 30s, snapshot index 9", &TxBeginRequest{
			Origin: origin, Flags: replication.FlagNotMigrate, Busy: time.Second, Idle: 30 * time.Second, SnapIndex: 9, SnapValid: true}},
		{"rpc_v1_ok", "RPC frame OK", &OK{}},
		{"rpc_v1_tx_exec_request", "RPC frame TxExecRequest: a statement with every value type, read-only", &TxExecRequest{Stmt: stmt, ReadOnly: true}},
		{"rpc_v1_result_response", "RPC frame ResultResponse: a result with rows of every value type", &ResultResponse{Result: result}},
		{"rpc_v1_result_response_refused", "RPC frame ResultResponse: a result whose error is a RefusedError", &ResultResponse{Result: replication.Result{Err: refused}}},
		{"rpc_v1_tx_commit_request", "RPC frame TxCommitRequest", &TxCommitRequest{}},
		{"rpc_v1_commit_response", "RPC frame CommitResponse: index 2^40", &CommitResponse{Index: 1 << 40}},
		{"rpc_v1_tx_rollback_request", "RPC frame TxRollbackRequest", &TxRollbackRequest{}},
		{"rpc_v1_read_index_request", "RPC frame ReadIndexRequest", &ReadIndexRequest{}},
		{"rpc_v1_read_index_response", "RPC frame ReadIndexResponse: index 12345", &ReadIndexResponse{Index: 12345}},
		{"rpc_v1_outcome_request", "RPC frame OutcomeRequest: origin node-1/2^63+5/42", &OutcomeRequest{Origin: origin}},
		{"rpc_v1_outcome_response", "RPC frame OutcomeResponse: applied at index 99", &OutcomeResponse{Applied: true, Index: 99}},
		{"rpc_v1_error_not_leader_at", "RPC frame ErrorResponse: a NotLeaderError naming leader n2 at 127.0.0.1:7000", &ErrorResponse{
			Err: &nodeerr.NotLeaderError{LeaderID: "n2", LeaderAddr: "127.0.0.1:7000"}}},
		{"rpc_v1_error_sentinel", "RPC frame ErrorResponse: the sentinel ErrTxIdle alone", &ErrorResponse{Err: nodeerr.ErrTxIdle}},
		{"rpc_v1_error_sqlite", "RPC frame ErrorResponse: a SQLite error (UNIQUE constraint, extended code)", &ErrorResponse{Err: sq["unique"]}},
		{"rpc_v1_error_codes", "RPC frame ErrorResponse: wrapped parts: sqlite3.BUSY, sqlite3.IOERR_READ,\na RefusedError, ErrClosed, context.Canceled", &ErrorResponse{
			Err: fmt.Errorf("while writing: %w", errors.Join(sqlite3.BUSY, sqlite3.IOERR_READ, refused, nodeerr.ErrClosed, context.Canceled))}},
		{"rpc_v1_error_extensions", "RPC frame ErrorResponse: the extensions' sentinels ErrLockLost, ErrLockHeld,\nErrListenerClosed, joined", &ErrorResponse{
			Err: errors.Join(extensions.ErrLockLost, extensions.ErrLockHeld, extensions.ErrListenerClosed)}},
		{"rpc_v1_error_outcome", "RPC frame ErrorResponse: ErrOutcomeUnknown and ErrNotVisible, joined (what a\nremote client's member may answer of a COMMIT)", &ErrorResponse{
			Err: errors.Join(nodeerr.ErrOutcomeUnknown, nodeerr.ErrNotVisible)}},
		{"rpc_v1_error_text", "RPC frame ErrorResponse: an error with no part (text only)", &ErrorResponse{Err: errors.New("disk on fire")}},
		{"rpc_v1_cache_request", "RPC frame CacheRequest: 3 opaque bytes", &CacheRequest{Cmd: []byte{1, 2, 3}}},
		{"rpc_v1_cache_response", "RPC frame CacheResponse: index 5, 2 opaque bytes", &CacheResponse{Index: 5, Result: []byte{4, 5}}},
		{"rpc_v1_client_hello", "client frame ClientHello: node client-1, session 2^63+5", &ClientHello{Node: "client-1", Session: 1<<63 + 5}},
		{"rpc_v1_client_request", "client frame ClientRequest: query, seq 42, a statement with every value type,\nlinearizable, timeout 2.5s, read-only", &ClientRequest{
			Op: OpQuery, Seq: 42, Stmt: stmt, Consistency: 1, Timeout: 2500 * time.Millisecond, ReadOnly: true}},
		{"rpc_v1_client_result", "client frame ClientResult: a batch of rows of every value type, more to come,\nin a transaction of seq 7, applied, nullability of 3 columns, 2 parameters", &ClientResult{
			Result: result, More: true, InTx: true, TxSeq: 7, Applied: true, Nullable: []byte{0, 1, 2}, NumInput: 2}},
		{"rpc_v1_client_result_error", "client frame ClientResult: a result with a SQLite UNIQUE constraint error", &ClientResult{Result: failedResult, NumInput: -1}},
		{"rpc_v1_client_cancel", "client frame ClientCancel", &ClientCancel{}},
		{"rpc_v1_client_backup", "client frame ClientBackup: two age recipients, no passphrase, timeout 90s", &ClientBackup{
			Recipients: []string{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg"}, Timeout: 90 * time.Second}},
		{"rpc_v1_client_backup_passphrase", "client frame ClientBackup: a passphrase, no deadline", &ClientBackup{Passphrase: "correct horse battery staple"}},
		{"rpc_v1_backup_chunk", "client frame BackupChunk: the first chunk, naming the object, 12 bytes of it,\n4096 of 65536 bytes of the copy read", &BackupChunk{
			Name: "hiqlite-20260101T000000Z-00000000000000000042-n1.hqb", Data: []byte("HIQLBKUP\x01abc"), Read: 4096, Size: 65536}},
		{"rpc_v1_backup_done", "client frame BackupDone: index 42, term 3, 1234567 bytes", &BackupDone{
			Name: "hiqlite-20260101T000000Z-00000000000000000042-n1.hqb", Index: 42, Term: 3, Size: 1234567}},
	}
}

// withoutErrors returns a copy of m without its errors, and the errors.
func withoutErrors(m Message) (Message, []error) {
	var errs []error
	strip := func(rs []replication.Result) []replication.Result {
		out := append([]replication.Result(nil), rs...)
		for i := range out {
			errs = append(errs, out[i].Err)
			out[i].Err = nil
		}
		return out
	}
	switch m := m.(type) {
	case *ExecResponse:
		c := *m
		c.Results = strip(m.Results)
		return &c, errs
	case *ResultResponse:
		c := *m
		c.Result = strip([]replication.Result{m.Result})[0]
		return &c, errs
	case *ExecBatchResponse:
		c := ExecBatchResponse{Outcomes: append([]ExecOutcome(nil), m.Outcomes...)}
		for i := range c.Outcomes {
			errs = append(errs, c.Outcomes[i].Err)
			c.Outcomes[i].Err = nil
			c.Outcomes[i].Results = strip(c.Outcomes[i].Results)
		}
		return &c, errs
	case *ClientResult:
		c := *m
		c.Result = strip([]replication.Result{m.Result})[0]
		return &c, errs
	case *ErrorResponse:
		return &ErrorResponse{}, []error{m.Err}
	}
	return m, nil
}

func TestGoldenMessages(t *testing.T) {
	for _, c := range goldenMessages(t) {
		t.Run(c.name, func(t *testing.T) {
			enc, err := AppendMessage(nil, c.m)
			if err != nil {
				t.Fatal(err)
			}
			b := golden.Bytes(t, c.name, c.comment, enc)
			if !bytes.Equal(enc, b) {
				t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
			}
			got, err := ReadMessage(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			gm, gerrs := withoutErrors(got)
			wm, werrs := withoutErrors(c.m)
			if !reflect.DeepEqual(gm, wm) {
				t.Errorf("decoded %+v\nwant %+v", gm, wm)
			}
			for i := range werrs {
				if werrs[i] == nil {
					if gerrs[i] != nil {
						t.Errorf("error %d: got %v, want nil", i, gerrs[i])
					}
					continue
				}
				checkSameError(t, gerrs[i], werrs[i])
			}
			again, err := AppendMessage(nil, got)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding: %x, %v\nwant %x", again, err, b)
			}
		})
	}
}
