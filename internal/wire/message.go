package wire

import (
	"fmt"
	"time"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/replication"
)

// Type is a frame's type byte. The numbers are protocol: never reuse one.
type Type uint8

const (
	TypeExecRequest       Type = 1
	TypeExecResponse      Type = 2
	TypeTxBeginRequest    Type = 3
	TypeOK                Type = 4
	TypeTxExecRequest     Type = 5
	TypeResultResponse    Type = 6
	TypeTxCommitRequest   Type = 7
	TypeCommitResponse    Type = 8
	TypeTxRollbackRequest Type = 9
	TypeReadIndexRequest  Type = 10
	TypeReadIndexResponse Type = 11
	TypeOutcomeRequest    Type = 12
	TypeOutcomeResponse   Type = 13
	TypeErrorResponse     Type = 14
	TypeCacheRequest      Type = 15
	TypeCacheResponse     Type = 16
	TypeClientHello       Type = 17
	TypeClientRequest     Type = 18
	TypeClientResult      Type = 19
	TypeClientCancel      Type = 20
	TypeClientBackup      Type = 21
	TypeBackupChunk       Type = 22
	TypeBackupDone        Type = 23
	TypeExecBatchRequest  Type = 24
	TypeExecBatchResponse Type = 25
)

var typeNames = [...]string{
	TypeExecRequest:       "ExecRequest",
	TypeExecResponse:      "ExecResponse",
	TypeTxBeginRequest:    "TxBeginRequest",
	TypeOK:                "OK",
	TypeTxExecRequest:     "TxExecRequest",
	TypeResultResponse:    "ResultResponse",
	TypeTxCommitRequest:   "TxCommitRequest",
	TypeCommitResponse:    "CommitResponse",
	TypeTxRollbackRequest: "TxRollbackRequest",
	TypeReadIndexRequest:  "ReadIndexRequest",
	TypeReadIndexResponse: "ReadIndexResponse",
	TypeOutcomeRequest:    "OutcomeRequest",
	TypeOutcomeResponse:   "OutcomeResponse",
	TypeErrorResponse:     "ErrorResponse",
	TypeCacheRequest:      "CacheRequest",
	TypeCacheResponse:     "CacheResponse",
	TypeClientHello:       "ClientHello",
	TypeClientRequest:     "ClientRequest",
	TypeClientResult:      "ClientResult",
	TypeClientCancel:      "ClientCancel",
	TypeClientBackup:      "ClientBackup",
	TypeBackupChunk:       "BackupChunk",
	TypeBackupDone:        "BackupDone",
	TypeExecBatchRequest:  "ExecBatchRequest",
	TypeExecBatchResponse: "ExecBatchResponse",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// newMessage returns a zero message of type t, or nil if t is unknown.
func newMessage(t Type) Message {
	switch t {
	case TypeExecRequest:
		return &ExecRequest{}
	case TypeExecResponse:
		return &ExecResponse{}
	case TypeTxBeginRequest:
		return &TxBeginRequest{}
	case TypeOK:
		return &OK{}
	case TypeTxExecRequest:
		return &TxExecRequest{}
	case TypeResultResponse:
		return &ResultResponse{}
	case TypeTxCommitRequest:
		return &TxCommitRequest{}
	case TypeCommitResponse:
		return &CommitResponse{}
	case TypeTxRollbackRequest:
		return &TxRollbackRequest{}
	case TypeReadIndexRequest:
		return &ReadIndexRequest{}
	case TypeReadIndexResponse:
		return &ReadIndexResponse{}
	case TypeOutcomeRequest:
		return &OutcomeRequest{}
	case TypeOutcomeResponse:
		return &OutcomeResponse{}
	case TypeErrorResponse:
		return &ErrorResponse{}
	case TypeCacheRequest:
		return &CacheRequest{}
	case TypeCacheResponse:
		return &CacheResponse{}
	case TypeClientHello:
		return &ClientHello{}
	case TypeClientRequest:
		return &ClientRequest{}
	case TypeClientResult:
		return &ClientResult{}
	case TypeClientCancel:
		return &ClientCancel{}
	case TypeClientBackup:
		return &ClientBackup{}
	case TypeBackupChunk:
		return &BackupChunk{}
	case TypeBackupDone:
		return &BackupDone{}
	case TypeExecBatchRequest:
		return &ExecBatchRequest{}
	case TypeExecBatchResponse:
		return &ExecBatchResponse{}
	}
	return nil
}

// Message is one request or response of the forwarding RPC. The messages of
// this package, as pointers, are the only implementations. ReadMessage
// returns them as pointers too.
//
// A session is a sequence of request/response pairs: every request gets
// exactly one response, its own type or an ErrorResponse.
type Message interface {
	Type() Type
	appendBody(b []byte) ([]byte, error)
	decodeBody(d decoder)
}

var (
	_ Message = (*ExecRequest)(nil)
	_ Message = (*ExecResponse)(nil)
	_ Message = (*TxBeginRequest)(nil)
	_ Message = (*OK)(nil)
	_ Message = (*TxExecRequest)(nil)
	_ Message = (*ResultResponse)(nil)
	_ Message = (*TxCommitRequest)(nil)
	_ Message = (*CommitResponse)(nil)
	_ Message = (*TxRollbackRequest)(nil)
	_ Message = (*ReadIndexRequest)(nil)
	_ Message = (*ReadIndexResponse)(nil)
	_ Message = (*OutcomeRequest)(nil)
	_ Message = (*OutcomeResponse)(nil)
	_ Message = (*ErrorResponse)(nil)
	_ Message = (*CacheRequest)(nil)
	_ Message = (*CacheResponse)(nil)
	_ Message = (*ClientHello)(nil)
	_ Message = (*ClientRequest)(nil)
	_ Message = (*ClientResult)(nil)
	_ Message = (*ClientCancel)(nil)
	_ Message = (*ClientBackup)(nil)
	_ Message = (*BackupChunk)(nil)
	_ Message = (*BackupDone)(nil)
	_ Message = (*ExecBatchRequest)(nil)
	_ Message = (*ExecBatchResponse)(nil)
)

// ExecRequest is a write outside a transaction: the statements run in order
// as one command. Answered by ExecResponse.
type ExecRequest struct {
	Origin replication.Origin
	Flags  replication.Flags
	Busy   time.Duration // how long to wait for the writer; 0: do not wait
	Stmts  []replication.Statement
}

func (*ExecRequest) Type() Type { return TypeExecRequest }

func (m *ExecRequest) appendBody(b []byte) ([]byte, error) {
	b = appendOrigin(b, m.Origin)
	b = encoding.AppendUvarint(b, uint64(m.Flags))
	b = appendDuration(b, m.Busy)
	b = encoding.AppendUvarint(b, uint64(len(m.Stmts)))
	for i := range m.Stmts {
		var err error
		if b, err = appendStatement(b, &m.Stmts[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (m *ExecRequest) decodeBody(d decoder) {
	m.Origin = d.origin()
	m.Flags = d.flags()
	m.Busy = d.duration()
	n := d.Count(3) // SQL length, failed flag, argument count
	if n > 0 {
		m.Stmts = make([]replication.Statement, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		d.statement(&m.Stmts[i])
	}
}

// ExecResponse answers ExecRequest: the Raft index of the command and one
// result per statement.
type ExecResponse struct {
	Index   uint64
	Results []replication.Result
}

func (*ExecResponse) Type() Type { return TypeExecResponse }

func (m *ExecResponse) appendBody(b []byte) ([]byte, error) {
	b = encoding.AppendUvarint(b, m.Index)
	b = encoding.AppendUvarint(b, uint64(len(m.Results)))
	for i := range m.Results {
		var err error
		if b, err = appendResult(b, &m.Results[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (m *ExecResponse) decodeBody(d decoder) {
	m.Index = d.Uvarint()
	n := d.Count(6) // the smallest result takes 6 bytes
	if n > 0 {
		m.Results = make([]replication.Result, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		d.result(&m.Results[i])
	}
}

// MaxExecBatch bounds the writes of an ExecBatchRequest.
const MaxExecBatch = 256

// ExecBatchRequest carries autocommit writes that were waiting together on
// one node: the leader runs each as if it had come alone in an
// ExecRequest, at the same time, and answers with one ExecBatchResponse.
// It saves the system calls of a request and a response per write.
type ExecBatchRequest struct {
	Reqs []ExecRequest
}

func (*ExecBatchRequest) Type() Type { return TypeExecBatchRequest }

func (m *ExecBatchRequest) appendBody(b []byte) ([]byte, error) {
	if len(m.Reqs) > MaxExecBatch {
		return nil, fmt.Errorf("hiqlite: wire: a batch of %d writes exceeds the limit of %d", len(m.Reqs), MaxExecBatch)
	}
	b = encoding.AppendUvarint(b, uint64(len(m.Reqs)))
	for i := range m.Reqs {
		var err error
		if b, err = m.Reqs[i].appendBody(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (m *ExecBatchRequest) decodeBody(d decoder) {
	n := d.Count(4) // origin node, session and seq, flags (busy and count follow)
	if n > MaxExecBatch {
		d.Fail("a batch of %d writes exceeds the limit of %d", n, MaxExecBatch)
		return
	}
	if n > 0 {
		m.Reqs = make([]ExecRequest, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		m.Reqs[i].decodeBody(d)
	}
}

// ExecBatchResponse answers ExecBatchRequest: one outcome per write, in the
// request's order. An outcome's Err is what an ErrorResponse would have
// carried for that write alone.
type ExecBatchResponse struct {
	Outcomes []ExecOutcome
}

// ExecOutcome is one write's answer in an ExecBatchResponse: Err, or the
// ExecResponse's fields.
type ExecOutcome struct {
	Err     error
	Index   uint64
	Results []replication.Result
}

func (*ExecBatchResponse) Type() Type { return TypeExecBatchResponse }

func (m *ExecBatchResponse) appendBody(b []byte) ([]byte, error) {
	if len(m.Outcomes) > MaxExecBatch {
		return nil, fmt.Errorf("hiqlite: wire: a batch of %d outcomes exceeds the limit of %d", len(m.Outcomes), MaxExecBatch)
	}
	b = encoding.AppendUvarint(b, uint64(len(m.Outcomes)))
	for i := range m.Outcomes {
		o := &m.Outcomes[i]
		if b = appendError(b, o.Err); o.Err != nil {
			continue
		}
		var err error
		if b, err = (&ExecResponse{Index: o.Index, Results: o.Results}).appendBody(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (m *ExecBatchResponse) decodeBody(d decoder) {
	n := d.Count(2) // an error's presence byte, then an error's text or an index
	if n > MaxExecBatch {
		d.Fail("a batch of %d outcomes exceeds the limit of %d", n, MaxExecBatch)
		return
	}
	if n > 0 {
		m.Outcomes = make([]ExecOutcome, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		o := &m.Outcomes[i]
		if o.Err = d.error(); o.Err != nil || d.Err() != nil {
			continue
		}
		var r ExecResponse
		r.decodeBody(d)
		o.Index, o.Results = r.Index, r.Results
	}
}

// TxBeginRequest opens a write transaction on the session. SnapIndex, when
// SnapValid, is the applied index of the snapshot the transaction has read
// so far: the leader refuses the transaction if anything committed since.
// Answered by OK.
type TxBeginRequest struct {
	Origin    replication.Origin
	Flags     replication.Flags
	Busy      time.Duration // how long to wait for the writer
	Idle      time.Duration // roll back after this long without a statement
	SnapIndex uint64
	SnapValid bool
}

func (*TxBeginRequest) Type() Type { return TypeTxBeginRequest }

func (m *TxBeginRequest) appendBody(b []byte) ([]byte, error) {
	b = appendOrigin(b, m.Origin)
	b = encoding.AppendUvarint(b, uint64(m.Flags))
	b = appendDuration(b, m.Busy)
	b = appendDuration(b, m.Idle)
	b = encoding.AppendUvarint(b, m.SnapIndex)
	return encoding.AppendBool(b, m.SnapValid), nil
}

func (m *TxBeginRequest) decodeBody(d decoder) {
	m.Origin = d.origin()
	m.Flags = d.flags()
	m.Busy = d.duration()
	m.Idle = d.duration()
	m.SnapIndex = d.Uvarint()
	m.SnapValid = d.Bool()
}

// OK answers TxBeginRequest and TxRollbackRequest.
type OK struct{}

func (*OK) Type() Type                          { return TypeOK }
func (*OK) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*OK) decodeBody(decoder)                  {}

// TxExecRequest runs one statement in the session's transaction. Answered
// by ResultResponse.
type TxExecRequest struct {
	Stmt     replication.Statement
	ReadOnly bool // the statement only reads (classified by the sender)
}

func (*TxExecRequest) Type() Type { return TypeTxExecRequest }

func (m *TxExecRequest) appendBody(b []byte) ([]byte, error) {
	b, err := appendStatement(b, &m.Stmt)
	if err != nil {
		return nil, err
	}
	return encoding.AppendBool(b, m.ReadOnly), nil
}

func (m *TxExecRequest) decodeBody(d decoder) {
	d.statement(&m.Stmt)
	m.ReadOnly = d.Bool()
}

// ResultResponse answers TxExecRequest. A failed statement is a Result with
// Err set (the transaction goes on, as in SQLite); an ErrorResponse means the
// request itself failed.
type ResultResponse struct {
	Result replication.Result
}

func (*ResultResponse) Type() Type { return TypeResultResponse }

func (m *ResultResponse) appendBody(b []byte) ([]byte, error) {
	return appendResult(b, &m.Result)
}

func (m *ResultResponse) decodeBody(d decoder) { d.result(&m.Result) }

// TxCommitRequest commits the session's transaction. Answered by
// CommitResponse.
type TxCommitRequest struct{}

func (*TxCommitRequest) Type() Type                          { return TypeTxCommitRequest }
func (*TxCommitRequest) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*TxCommitRequest) decodeBody(decoder)                  {}

// CommitResponse answers TxCommitRequest with the Raft index of the
// committed transaction.
type CommitResponse struct {
	Index uint64
}

func (*CommitResponse) Type() Type { return TypeCommitResponse }

func (m *CommitResponse) appendBody(b []byte) ([]byte, error) {
	return encoding.AppendUvarint(b, m.Index), nil
}

func (m *CommitResponse) decodeBody(d decoder) { m.Index = d.Uvarint() }

// TxRollbackRequest rolls back the session's transaction. Answered by OK.
type TxRollbackRequest struct{}

func (*TxRollbackRequest) Type() Type                          { return TypeTxRollbackRequest }
func (*TxRollbackRequest) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*TxRollbackRequest) decodeBody(decoder)                  {}

// ReadIndexRequest asks the leader for a read index. Answered by
// ReadIndexResponse.
type ReadIndexRequest struct{}

func (*ReadIndexRequest) Type() Type                          { return TypeReadIndexRequest }
func (*ReadIndexRequest) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*ReadIndexRequest) decodeBody(decoder)                  {}

// ReadIndexResponse answers ReadIndexRequest: the index the asking node must
// have applied before a linearizable read.
type ReadIndexResponse struct {
	Index uint64
}

func (*ReadIndexResponse) Type() Type { return TypeReadIndexResponse }

func (m *ReadIndexResponse) appendBody(b []byte) ([]byte, error) {
	return encoding.AppendUvarint(b, m.Index), nil
}

func (m *ReadIndexResponse) decodeBody(d decoder) { m.Index = d.Uvarint() }

// OutcomeRequest asks whether the command sent with Origin was applied (an
// interrupted write or COMMIT). Answered by OutcomeResponse.
type OutcomeRequest struct {
	Origin replication.Origin
}

func (*OutcomeRequest) Type() Type { return TypeOutcomeRequest }

func (m *OutcomeRequest) appendBody(b []byte) ([]byte, error) {
	return appendOrigin(b, m.Origin), nil
}

func (m *OutcomeRequest) decodeBody(d decoder) { m.Origin = d.origin() }

// OutcomeResponse answers OutcomeRequest: whether the command was applied,
// and at which Raft index.
type OutcomeResponse struct {
	Applied bool
	Index   uint64
}

func (*OutcomeResponse) Type() Type { return TypeOutcomeResponse }

func (m *OutcomeResponse) appendBody(b []byte) ([]byte, error) {
	b = encoding.AppendBool(b, m.Applied)
	return encoding.AppendUvarint(b, m.Index), nil
}

func (m *OutcomeResponse) decodeBody(d decoder) {
	m.Applied = d.Bool()
	m.Index = d.Uvarint()
}

// ErrorResponse answers any request that failed as a whole. Err is rebuilt
// on the receiver so that errors.Is and errors.As match as on the sender
// (see the error parts in errors.go).
type ErrorResponse struct {
	Err error
}

func (*ErrorResponse) Type() Type { return TypeErrorResponse }

func (m *ErrorResponse) appendBody(b []byte) ([]byte, error) {
	return appendError(b, m.Err), nil
}

func (m *ErrorResponse) decodeBody(d decoder) { m.Err = d.error() }
