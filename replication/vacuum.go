package replication

import "time"

// VACUUM cannot run inside a transaction, so it cannot join a batch. A
// command that is one plain VACUUM (isVacuum) commits the open batch,
// runs outside any transaction at its place in the log, then opens the
// next batch, which records the command (its session record and the
// applied index) like any other. Every node runs it at the same point of
// the log, between the same commits, on the same rows.
//
// VACUUM rebuilds every table and index by copying them in order: the
// rowids of a rowid table stay as they were (SQLite copies them whenever
// the table has no triggers or foreign keys that would change them, which
// a VACUUM copy never has) and the content is the same on every node, so
// the nodes keep identical rows and rowids. The file only shrinks once a
// checkpoint has copied the WAL back into it: vacuumCheckpoint runs one
// at once (readers that hold an older snapshot make it a partial one; the
// next checkpoint finishes it).
//
// A crash between the VACUUM and the commit of its record replays the
// command at the next start: a second VACUUM changes nothing.

// isVacuum reports whether cmd is a write of one plain VACUUM statement
// (VACUUM, VACUUM main; VACUUM INTO is refused by the classifier wherever it is).
func isVacuum(cmd *Command) bool {
	if cmd.Kind != KindExec || len(cmd.Stmts) != 1 {
		return false
	}
	sql := cmd.Stmts[0].SQL
	st := parseStatement(sql)
	return st.tok(0).Is("VACUUM") && !st.tok(1).Is("INTO") && !st.tok(2).Is("INTO") && IsBlank(sql[st.end:])
}

// runVacuum applies cmd, a plain VACUUM (isVacuum), at index: the batch
// that applyBatched opened for it holds nothing yet, and is left for the
// VACUUM, which runs with no transaction open. The command's records go
// into the next batch, opened here; in a replay of that batch the command
// is inert (only its records are redone).
func (sm *StateMachine) runVacuum(index uint64, cmd *Command) (*Response, error) {
	b := &sm.batch
	if err := sm.execCtl(`ROLLBACK`); err != nil {
		return nil, err
	}
	b.open = false
	sm.env.Reset(time.Unix(0, cmd.Time), cmd.Seed)
	sm.w.SetLastInsertRowID(0)
	sm.nt.index = index
	sm.guard.Migrations = cmd.Flags&FlagNotMigrate == 0
	res, err := sm.vacuum(cmd.Stmts[0])
	if isNodeFault(err) {
		return nil, err
	}
	res.Err = err
	if err == nil {
		if err := sm.vacuumCheckpoint(); err != nil {
			return nil, err
		}
	}
	resp := &Response{Index: index, Results: []Result{res}}
	if err := sm.openBatch(cmd.Flags&FlagForeignKeys != 0); err != nil {
		return nil, err
	}
	if err := sm.record(cmd, index, true, resp.Results); err != nil {
		return nil, err
	}
	b.cmds = append(b.cmds, batchedCmd{index: index, cmd: cmd, inert: true, applied: true, results: resp.Results})
	return resp, nil
}

// vacuum runs st, a plain VACUUM. The guard stays off: VACUUM copies every
// table, hiqlite's own included, through statements of its own that the
// guard would take for writes to them; it changes no row.
func (sm *StateMachine) vacuum(st Statement) (Result, error) {
	var res Result
	p := parseStatement(st.SQL)
	if err := checkReplicable(st.SQL, &p); err != nil {
		return res, err
	}
	stmt, _, err := sm.w.Prepare(st.SQL)
	if err != nil {
		return res, err
	}
	defer stmt.Close()
	return res, sm.execOne(stmt, st.Args, &res)
}

// vacuumCheckpoint copies the WAL back into the database file and
// truncates both, so that the space VACUUM freed leaves the disk. Readers
// holding an older snapshot keep their frames: the checkpoint then stops
// short (it does not wait for them), which is no error.
func (sm *StateMachine) vacuumCheckpoint() error {
	if sm.memory {
		return nil
	}
	return sm.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
}
