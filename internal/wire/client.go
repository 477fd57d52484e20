package wire

import (
	"time"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/replication"
)

// The frames of a remote client's session (nodeport.StreamClient). The
// client sends ClientHello first, then ClientRequests, each answered by one
// ClientResult or ErrorResponse; while a request runs, it may send one
// ClientCancel, which gets no answer of its own (the request's answer
// follows, usually an error matching context.Canceled).

// ClientOp is what a ClientRequest asks for. The numbers are protocol.
type ClientOp uint8

const (
	OpExec      ClientOp = 1 // run SQL for its result
	OpQuery     ClientOp = 2 // run SQL for its rows: the first batch
	OpNext      ClientOp = 3 // the next batch of the open rows
	OpCloseRows ClientOp = 4 // close the open rows
	OpBegin     ClientOp = 5 // begin a transaction (ReadOnly)
	OpCommit    ClientOp = 6
	OpRollback  ClientOp = 7
	OpPing      ClientOp = 8
	OpOutcome   ClientOp = 9  // was the write sent with Seq (of this session) applied?
	OpExt       ClientOp = 10 // an extension call: SQL names it, Args carry its arguments
	OpPrepare   ClientOp = 11 // prepare SQL: its NumInput, or its error
)

// ClientHello opens a session: the identity the client's writes carry
// (Node, Session; each request gives the sequence number), chosen by the
// client so that it can ask another member about a write after its member
// died. Answered by OK.
type ClientHello struct {
	Node    string
	Session uint64
}

func (*ClientHello) Type() Type { return TypeClientHello }

func (m *ClientHello) appendBody(b []byte) ([]byte, error) {
	b = encoding.AppendString(b, m.Node)
	return encoding.AppendUvarint(b, m.Session), nil
}

func (m *ClientHello) decodeBody(d decoder) {
	m.Node = d.String()
	m.Session = d.Uvarint()
}

// ClientRequest is one call of a remote client's connection. Seq is the
// sequence number of the write it may issue (the client's, growing);
// Consistency the read consistency (0 local, 1 linearizable); Timeout what
// is left of the caller's deadline (0: none).
type ClientRequest struct {
	Op          ClientOp
	Seq         uint64
	Stmt        replication.Statement
	Consistency uint8
	Timeout     time.Duration
	ReadOnly    bool
}

func (*ClientRequest) Type() Type { return TypeClientRequest }

func (m *ClientRequest) appendBody(b []byte) ([]byte, error) {
	b = append(b, byte(m.Op))
	b = encoding.AppendUvarint(b, m.Seq)
	b, err := appendStatement(b, &m.Stmt)
	if err != nil {
		return nil, err
	}
	b = append(b, m.Consistency)
	b = appendDuration(b, m.Timeout)
	return encoding.AppendBool(b, m.ReadOnly), nil
}

func (m *ClientRequest) decodeBody(d decoder) {
	m.Op = ClientOp(d.Byte())
	m.Seq = d.Uvarint()
	d.statement(&m.Stmt)
	m.Consistency = d.Byte()
	m.Timeout = d.duration()
	m.ReadOnly = d.Bool()
}

// ClientResult answers a ClientRequest: a statement's result, or a batch of
// rows (Columns and DeclTypes with the first; More: another batch follows
// on OpNext). InTx says whether the session has a transaction open after
// the request; TxSeq is the sequence number of its write transaction's
// origin (0: it has not written), which a client whose COMMIT is
// interrupted asks about with OpOutcome; Applied answers OpOutcome.
// Nullable comes with the first batch: per column, 0 unknown, 1 nullable,
// 2 not null. NumInput answers OpPrepare (-1: not known). A batch whose
// Result.Err is set ends the rows with that error, after its rows.
type ClientResult struct {
	Result   replication.Result
	More     bool
	InTx     bool
	TxSeq    uint64
	Applied  bool
	Nullable []byte
	NumInput int64
}

func (*ClientResult) Type() Type { return TypeClientResult }

func (m *ClientResult) appendBody(b []byte) ([]byte, error) {
	b, err := appendResult(b, &m.Result)
	if err != nil {
		return nil, err
	}
	b = encoding.AppendBool(b, m.More)
	b = encoding.AppendBool(b, m.InTx)
	b = encoding.AppendUvarint(b, m.TxSeq)
	b = encoding.AppendBool(b, m.Applied)
	b = encoding.AppendBytes(b, m.Nullable)
	return encoding.AppendVarint(b, m.NumInput), nil
}

func (m *ClientResult) decodeBody(d decoder) {
	d.result(&m.Result)
	m.More = d.Bool()
	m.InTx = d.Bool()
	m.TxSeq = d.Uvarint()
	m.Applied = d.Bool()
	if n := d.Bytes(); len(n) > 0 {
		m.Nullable = n
	}
	m.NumInput = d.Varint()
}

// ClientCancel cancels the request in flight, if any. It has no answer.
type ClientCancel struct{}

func (*ClientCancel) Type() Type                          { return TypeClientCancel }
func (*ClientCancel) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*ClientCancel) decodeBody(decoder)                  {}
