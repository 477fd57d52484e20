package replication

import (
	"fmt"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// Batches of commands. Raft pays for every log entry (its encoding on the
// wire, the log store's framing, a future, the state machine's dispatch),
// so the leader carries the autocommit writes that wait for it at the same
// moment in one entry of KindBatch. Each of them is applied exactly as it
// would be as an entry of its own at that index: its own savepoint, 'now',
// seed, LastInsertRowID, session record (a copy of a write already applied,
// in this batch or before, is answered from the record) and Response. The
// entry's Response carries theirs, in order, in Batch.
//
// What a command sees must not depend on whether it came alone or in a
// batch, so a batch holds only commands that never commit the open SQLite
// transaction before they run: all of one PRAGMA foreign_keys setting, and
// no VACUUM (apply.go commits the batch for either). A commit in the middle
// of an entry would record the entry as applied with part of it missing.
// UnmarshalCommand refuses a batch that breaks this rule, alike on every
// node, and the leader never builds one (CanBatch).

// MaxBatch bounds the commands of one KindBatch.
const MaxBatch = 256

// batchOverhead bounds the bytes a KindBatch adds to its commands: the
// version, kind and count, and a length prefix per command.
func batchOverhead(n int) int { return 2 + 10 + 10*n }

// CanBatch reports whether cmd may go in a KindBatch, and the batch key it
// must share with the other commands of its batch.
func CanBatch(cmd *Command) (key Flags, ok bool) {
	if cmd.Kind != KindExec || isVacuum(cmd) {
		return 0, false
	}
	return cmd.Flags & FlagForeignKeys, true
}

// BatchSize is the encoded size of a KindBatch of commands whose encodings
// take size bytes in all.
func BatchSize(n, size int) int { return size + batchOverhead(n) }

// MarshalBatch encodes a KindBatch of the commands encoded in cmds (by
// MarshalBinary), which must all pass CanBatch with one key.
func MarshalBatch(cmds [][]byte) []byte {
	size := 0
	for _, c := range cmds {
		size += len(c)
	}
	b := make([]byte, 0, BatchSize(len(cmds), size))
	b = append(b, commandVersion, byte(KindBatch))
	b = encoding.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		b = encoding.AppendBytes(b, c)
	}
	return b
}

func (c *Command) marshalBatch() ([]byte, error) {
	cmds := make([][]byte, len(c.Batch))
	for i, sub := range c.Batch {
		if sub.Kind != KindExec {
			return nil, fmt.Errorf("hiqlite: a batch carries exec commands only, not %v", sub.Kind)
		}
		var err error
		if cmds[i], err = sub.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	return MarshalBatch(cmds), nil
}

// unmarshalBatch decodes the rest of a KindBatch: its commands.
func unmarshalBatch(d *encoding.Decoder) (*Command, error) {
	n := d.Count(2) // a command takes at least 2 bytes
	if d.Err() == nil && (n == 0 || n > MaxBatch) {
		d.Fail("batch of %d commands", n)
	}
	c := &Command{Kind: KindBatch}
	if d.Err() == nil {
		c.Batch = make([]*Command, 0, n)
	}
	var key Flags
	for i := 0; i < n && d.Err() == nil; i++ {
		b := d.Bytes()
		if d.Err() != nil {
			break
		}
		if len(b) < 2 || CommandKind(b[1]) != KindExec {
			// Checked before decoding: a batch inside a batch inside
			// ... would recurse as deep as the entry is long.
			d.Fail("command %d of a batch is no exec command", i)
			break
		}
		sub, err := UnmarshalCommand(b)
		if err != nil {
			return nil, fmt.Errorf("command %d of a batch: %w", i, err)
		}
		k, ok := CanBatch(sub)
		if !ok || (i > 0 && k != key) {
			d.Fail("command %d of a batch: a %v that cannot share a batch", i, sub.Kind)
			break
		}
		key = k
		c.Batch = append(c.Batch, sub)
	}
	d.Done()
	if d.Err() != nil {
		return nil, d.Err()
	}
	return c, nil
}

// applyEntry applies the command of the entry at index: each command of a
// KindBatch in turn, or cmd alone. A returned error is a node fault.
func (sm *StateMachine) applyEntry(index, term uint64, cmd *Command) (*Response, error) {
	if cmd.Kind != KindBatch {
		return sm.applyOne(index, term, cmd)
	}
	resp := &Response{Index: index, Batch: make([]*Response, len(cmd.Batch))}
	for i, sub := range cmd.Batch {
		r, err := sm.applyOne(index, term, sub)
		if err != nil {
			return nil, fmt.Errorf("command %d of the batch: %w", i, err)
		}
		resp.Batch[i] = r
	}
	return resp, nil
}

// applyOne applies one command at index: alone with the leader's
// interactive transaction open on the writer, else in the open batch.
func (sm *StateMachine) applyOne(index, term uint64, cmd *Command) (*Response, error) {
	if sm.pending != nil {
		return sm.applyAlone(index, term, cmd)
	}
	return sm.applyBatched(index, term, cmd)
}
