package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/hiqlite/hiqlite/replication"
)

// resultsVersion starts an encoding of MarshalResults. The encoding is
// stored in the replicated database (the state machine keeps the results of
// each session's last write for retries), so it must stay readable.
const resultsVersion = 1

// MarshalResults encodes results as ExecResponse carries them, for the state
// machine to record. The encoding is deterministic: equal results give equal
// bytes on every node.
func MarshalResults(results []replication.Result) ([]byte, error) {
	b := []byte{resultsVersion}
	b = binary.AppendUvarint(b, uint64(len(results)))
	for i := range results {
		var err error
		if b, err = appendResult(b, &results[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// UnmarshalResults decodes what MarshalResults encoded. Blobs in the results
// alias b.
func UnmarshalResults(b []byte) ([]replication.Result, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != resultsVersion {
		return nil, fmt.Errorf("%w: unknown results version %d", ErrMalformed, v)
	}
	n := d.count(4) // a result takes at least 4 bytes
	var out []replication.Result
	if n > 0 {
		out = make([]replication.Result, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		d.result(&out[i])
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

// ResultCodec is the results encoding the state machine records with each
// session's last write (replication.StateMachine.SetResultCodec).
var ResultCodec = replication.ResultCodec{Marshal: MarshalResults, Unmarshal: UnmarshalResults}
