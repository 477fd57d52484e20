package replication

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Group commit. Raft hands the state machine committed entries in batches;
// the commands of one batch are applied in one SQLite transaction, each
// inside a savepoint of its own, and the batch commits once with the index
// of its last entry. One failing statement fails only its command, as
// before; what changes is the cost: one commit (WAL frames, locks) per batch
// instead of per command.
//
// Every node may batch differently (batches follow timing), so nothing a
// command sees may depend on the batch it is in:
//
//   - 'now', random() and LastInsertRowID are reset per command;
//   - PRAGMA foreign_keys cannot change inside a transaction, so a command
//     with the other setting commits the batch and starts a new one;
//   - a statement can roll back the whole transaction (ON CONFLICT
//     ROLLBACK, RAISE(ROLLBACK)), taking the batch's earlier commands with
//     it. The batch is then replayed up to that command (deterministic, so
//     with the same outcome), and the command keeps only its session record,
//     as if it had run alone;
//   - the leader's interactive transaction is resolved (committed or
//     aborted) by the first command after it, alone, before a batch opens.

// cmdSavepoint wraps each command of a batch.
const cmdSavepoint = `_hiqlite_cmd`

// batch is the SQLite transaction of the ApplyBatch call in progress.
type batch struct {
	open  bool
	index uint64 // last command in it; 0: none yet
	term  uint64
	seen  uint64 // last entry in it, command or not
	cmds  []batchedCmd
	out   []any // the responses of the ApplyBatch call
	outs  []int // positions in out of the responses that wait for the commit
	// replaying: the batch is being replayed after a rollback; a second
	// rollback means the replay diverged.
	replaying bool
}

// batchedCmd is a command applied in the open batch, kept for a replay.
type batchedCmd struct {
	index uint64
	cmd   *Command
	// inert: a statement of the command rolled the transaction back; the
	// command left only its session record (applied, results).
	inert   bool
	applied bool
	results []Result
}

// Apply applies one committed Raft log entry. It implements raft.FSM; raft
// calls ApplyBatch instead, on its FSM goroutine.
func (sm *StateMachine) Apply(l *raft.Log) any {
	return sm.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: it applies the command entries of
// a batch of committed entries in order, in one SQLite transaction, and
// notes the index of the others (raft passes configuration changes), so that
// WaitApplied sees them too. Responses are final once it returns: the batch
// committed, or every response in it carries the fault that stopped the
// state machine. Called on raft's FSM goroutine only.
func (sm *StateMachine) ApplyBatch(logs []*raft.Log) []any {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	out := make([]any, len(logs))
	sm.batch = batch{out: out}
	var size uint64
	for i, l := range logs {
		size += uint64(len(l.Data))
		switch {
		case l.Type == raft.LogCommand:
			out[i] = sm.applyLog(l, i)
		case sm.Fault() == nil && l.Index > sm.seen.Load():
			sm.noteSeen(l.Index)
		}
	}
	if sm.Fault() == nil {
		if err := sm.commitBatch(); err != nil {
			if sm.interrupted(err) {
				// As in applyLog: the batch is applied again at the
				// next start; its writes were not this node's to fail.
				err = fmt.Errorf("%w: %w", ErrInterrupted, err)
			}
			sm.failBatch(err)
		}
	}
	sm.batch = batch{}
	sm.broadcast()
	sm.countLog(len(logs), size)
	return out
}

// LogFull signals (it holds one signal) once the entries applied since the
// last snapshot add up to Options.LogLimit bytes or more. Its reader should
// check LogBytes, which a stored snapshot and Restore lower, before acting
// on it. Without a LogLimit it is nil.
func (sm *StateMachine) LogFull() <-chan struct{} { return sm.logFull }

// LogBytes is the size and number of the log entries applied that no
// stored snapshot covers yet: since the point the last successfully
// persisted snapshot was pinned at, the last Restore, or the open.
func (sm *StateMachine) LogBytes() (size, entries uint64) {
	return sm.logBytes.Load(), sm.logEntries.Load()
}

func (sm *StateMachine) countLog(entries int, size uint64) {
	sm.logEntries.Add(uint64(entries))
	if n := sm.logBytes.Add(size); sm.logLimit > 0 && n >= sm.logLimit {
		select {
		case sm.logFull <- struct{}{}:
		default:
		}
	}
}

func (sm *StateMachine) applyLog(l *raft.Log, pos int) *Response {
	if err := sm.Fault(); err != nil {
		return &Response{Index: l.Index, Err: err}
	}
	if l.Index <= sm.applied.Load() {
		// Already in the database: raft replays the log after its last
		// snapshot on start, and the database may be ahead of that.
		return &Response{Index: l.Index}
	}
	cmd, err := UnmarshalCommand(l.Data)
	if err != nil {
		return &Response{Index: l.Index, Err: sm.failBatch(fmt.Errorf("entry %d: %w", l.Index, err))}
	}
	resp, err := sm.applyEntry(l.Index, l.Term, cmd)
	if err != nil {
		if sm.interrupted(err) {
			// Not this command's error, nor a fault of the node: the batch
			// rolls back and the entry is applied again at the next start.
			err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		return &Response{Index: l.Index, Err: sm.failBatch(fmt.Errorf("entry %d: %w", l.Index, err))}
	}
	if sm.batch.open && sm.batch.index == l.Index {
		sm.batch.outs = append(sm.batch.outs, pos) // final once the batch commits
	}
	return resp
}

// failBatch stops the state machine after a fault: the open batch is rolled
// back and every response waiting for its commit carries the error. The
// entries are not lost: they are in the Raft log, to be applied after a
// restart.
func (sm *StateMachine) failBatch(cause error) error {
	sm.abortPending()
	if !sm.w.GetAutocommit() {
		_ = sm.w.Exec(`ROLLBACK`)
	}
	err := sm.stop(cause)
	for _, pos := range sm.batch.outs {
		if r, ok := sm.batch.out[pos].(*Response); ok {
			sm.batch.out[pos] = &Response{Index: r.Index, Err: err}
		}
	}
	sm.batch.outs = nil
	sm.batch.open = false
	sm.batch.cmds = nil
	return err
}

// noteSeen records that the entry at index (not a command) was applied: in
// the open batch, or in one it opens. Inside the leader's open write
// transaction it only counts in memory: the record would share that
// transaction's fate, and losing it costs no more than a needless snapshot
// restore at the next start.
func (sm *StateMachine) noteSeen(index uint64) {
	if sm.pending != nil {
		sm.seen.Store(index)
		return
	}
	if err := sm.openBatch(sm.fkOn); err != nil {
		sm.failBatch(fmt.Errorf("entry %d: %w", index, err))
		return
	}
	sm.batch.seen = index
}

// openBatch makes sure a batch is open with PRAGMA foreign_keys set to fk,
// committing the open one first if its setting differs.
func (sm *StateMachine) openBatch(fk bool) error {
	b := &sm.batch
	if b.open && fk == sm.fkOn {
		return nil
	}
	if b.open {
		if err := sm.commitBatch(); err != nil {
			return err
		}
	}
	if err := sm.setForeignKeys(fk); err != nil {
		return err
	}
	if err := sm.execCtl(`BEGIN IMMEDIATE`); err != nil {
		return err
	}
	b.open = true
	return nil
}

// commitBatch records the batch's indexes and commits it, then publishes
// them. An error is a node fault.
func (sm *StateMachine) commitBatch() error {
	b := &sm.batch
	if !b.open {
		return nil
	}
	seen := max(b.seen, b.index, sm.seen.Load())
	var err error
	if b.index > 0 {
		err = bindAll(sm.setMeta, int64(b.index), int64(b.term), int64(seen))
		if err == nil {
			err = sm.setMeta.Exec()
		}
		sm.setMeta.Reset()
	} else {
		err = bindAll(sm.setSeen, int64(seen))
		if err == nil {
			err = sm.setSeen.Exec()
		}
		sm.setSeen.Reset()
	}
	if err == nil {
		err = sm.commitTx(0)
	}
	if err != nil {
		return fmt.Errorf("commit entries up to %d: %w", seen, err)
	}
	if b.index > 0 {
		sm.applied.Store(b.index)
	}
	sm.seen.Store(seen)
	*b = batch{out: b.out}
	return nil
}

// applyBatched applies cmd at index in the open batch, opening one if
// needed. A returned error is a node fault; SQL errors are results.
func (sm *StateMachine) applyBatched(index, term uint64, cmd *Command) (*Response, error) {
	b := &sm.batch
	vacuum := isVacuum(cmd)
	if vacuum {
		// VACUUM runs outside any transaction (vacuum.go): what the
		// batch holds commits first.
		if err := sm.commitBatch(); err != nil {
			return nil, err
		}
	}
	if err := sm.openBatch(cmd.Flags&FlagForeignKeys != 0); err != nil {
		return nil, err
	}
	b.index, b.term, b.seen = index, term, index
	if tracked(cmd) {
		rec, err := sm.lookupSession(cmd.Origin)
		if err != nil {
			return nil, err
		}
		if rec.found && cmd.Origin.Seq <= rec.seq {
			return sm.duplicate(cmd, index, rec)
		}
	}
	if vacuum {
		return sm.runVacuum(index, cmd)
	}
	resp, err := sm.run(index, cmd)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// run applies cmd inside a savepoint of the open batch and records it in
// the batch's list. It replays the batch when a statement rolls the whole
// transaction back.
func (sm *StateMachine) run(index uint64, cmd *Command) (*Response, error) {
	if err := sm.execCtl(`SAVEPOINT ` + cmdSavepoint); err != nil {
		return nil, err
	}
	sm.env.Reset(time.Unix(0, cmd.Time), cmd.Seed)
	sm.w.SetLastInsertRowID(0)
	sm.nt.index = index
	resp := &Response{Index: index}
	applied, rolledBack := true, false
	sm.guard.Migrations = cmd.Flags&FlagNotMigrate == 0
	switch cmd.Kind {
	case KindExec:
		for _, st := range cmd.Stmts {
			res, err := sm.execText(st)
			if isNodeFault(err) {
				return nil, err
			}
			res.Err = err
			resp.Results = append(resp.Results, res)
			if sm.w.GetAutocommit() {
				rolledBack = true
				break
			}
			if err != nil {
				break
			}
		}
	case KindTx:
		for i, st := range cmd.Stmts {
			_, err := sm.execText(st)
			if isNodeFault(err) {
				return nil, err
			}
			var internal *InternalObjectError
			if err != nil && !st.Failed && errors.As(err, &internal) {
				// An older version let the leader change an internal
				// object: the transaction fails here as a whole, as the
				// command's error, alike on every node of this version.
				if err := sm.execCtl(`ROLLBACK TO ` + cmdSavepoint); err != nil {
					return nil, err
				}
				resp.Err = fmt.Errorf("transaction statement %d: %w", i, err)
				resp.NotApplied = true
				applied = false
				break
			}
			if (err != nil) != st.Failed || sm.w.GetAutocommit() {
				return nil, fmt.Errorf("transaction replay diverged at statement %d (%.60q): leader failed=%v, here err=%v", i, st.SQL, st.Failed, err)
			}
		}
	case KindFence:
		applied = false
		resp.NotApplied = true
	}
	bc := batchedCmd{index: index, cmd: cmd, applied: applied, results: resp.Results}
	if rolledBack {
		if err := sm.replayBatch(); err != nil {
			return nil, err
		}
		bc.inert = true
		if err := sm.recordOnly(bc); err != nil {
			return nil, err
		}
	} else {
		// The records go after the RELEASE: written inside the savepoint,
		// the page of the session table would be copied to the savepoint's
		// journal for every command.
		if err := sm.execCtl(`RELEASE ` + cmdSavepoint); err != nil {
			return nil, err
		}
		if err := sm.record(cmd, index, applied, resp.Results); err != nil {
			return nil, err
		}
	}
	sm.batch.cmds = append(sm.batch.cmds, bc)
	return resp, nil
}

// record writes cmd's session record (if tracked) and prunes expired ones,
// in the open transaction.
func (sm *StateMachine) record(cmd *Command, index uint64, applied bool, results []Result) error {
	if tracked(cmd) {
		if err := sm.recordSession(cmd, index, applied, results); err != nil {
			return err
		}
	}
	return sm.pruneSessions(index, cmd.Time)
}

// recordOnly redoes what an inert command left: its records.
func (sm *StateMachine) recordOnly(bc batchedCmd) error {
	return sm.record(bc.cmd, bc.index, bc.applied, bc.results)
}

// replayBatch reopens the transaction a statement rolled back and applies
// the batch's earlier commands again. They are deterministic, so they reach
// the state they had; a second rollback while replaying is a divergence.
func (sm *StateMachine) replayBatch() error {
	b := &sm.batch
	if b.replaying {
		return fmt.Errorf("a command rolled back the transaction while the batch was replayed")
	}
	if err := sm.execCtl(`BEGIN IMMEDIATE`); err != nil {
		return err
	}
	cmds := b.cmds
	b.cmds = nil
	b.replaying = true
	defer func() { b.replaying = false }()
	for _, bc := range cmds {
		if bc.inert {
			if err := sm.recordOnly(bc); err != nil {
				return err
			}
			b.cmds = append(b.cmds, bc)
			continue
		}
		if _, err := sm.run(bc.index, bc.cmd); err != nil {
			return err
		}
	}
	return nil
}

// applyAlone applies cmd in a transaction of its own, with the leader's
// interactive transaction open on the writer: cmd commits it (it is that
// transaction's COMMIT) or aborts it first. No batch is open here.
func (sm *StateMachine) applyAlone(index, term uint64, cmd *Command) (*Response, error) {
	var rec sessionRecord
	if tracked(cmd) {
		var err error
		if rec, err = sm.lookupSession(cmd.Origin); err != nil {
			return nil, err
		}
	}
	dup := rec.found && cmd.Origin.Seq <= rec.seq
	if p := sm.pending; !dup && cmd.Kind == KindTx && p.origin == cmd.Origin {
		// The leader already ran this transaction on the writer.
		sm.endPending()
		if err := sm.record(cmd, index, true, nil); err != nil {
			return nil, err
		}
		if err := sm.commitMeta(index, term); err != nil {
			return nil, err
		}
		sm.applied.Store(index)
		sm.seen.Store(max(index, sm.seen.Load()))
		return &Response{Index: index}, nil
	}
	// Another entry won: the open transaction cannot commit. The command
	// then starts the batch like any other.
	sm.abortPending()
	return sm.applyBatched(index, term, cmd)
}

// bindAll binds args to stmt's parameters 1, 2, ...
func bindAll(stmt interface{ BindInt64(int, int64) error }, args ...int64) error {
	for i, a := range args {
		if err := stmt.BindInt64(i+1, a); err != nil {
			return err
		}
	}
	return nil
}
