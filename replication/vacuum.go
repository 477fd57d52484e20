package replication

import (
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"
)

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
	res, err, fault := sm.vacuum(cmd.Stmts[0])
	if fault != nil {
		return nil, fault
	}
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

// vacuum runs st, a plain VACUUM: stmtErr is the statement's error, fault
// one of the node. The guard stays off: VACUUM copies every table,
// hiqlite's own included, through statements of its own that the guard
// would take for writes to them; it changes no row.
//
// VACUUM builds its copy in a temporary database, which temp_store=MEMORY
// (set for the notifications table, notify.go) would put in the writer's
// memory; the ncruces driver caps that at 256 MiB per connection, and a
// database of about 200 MiB ran it out (a panic, that would stop every
// node at the same entry, again at each restart). So VACUUM runs with
// temp_store=FILE, its copy in a temporary file. Changing temp_store drops
// the temporary tables, so the notifications table (empty between
// transactions) and its statements are made again afterwards.
func (sm *StateMachine) vacuum(st Statement) (res Result, stmtErr, fault error) {
	p := parseStatement(st.SQL)
	if err := checkReplicable(st.SQL, &p); err != nil {
		return res, err, nil
	}
	if err := sm.w.Exec(`PRAGMA temp_store = FILE`); err != nil {
		return res, nil, fmt.Errorf("hiqlite: temp_store for VACUUM: %w", err)
	}
	stmtErr = sm.vacuumStmt(st, &res)
	if err := sm.reinstallNotify(); err != nil {
		return res, stmtErr, fmt.Errorf("hiqlite: notifications table after VACUUM: %w", err)
	}
	return res, stmtErr, nil
}

// vacuumStmt prepares and runs st into res.
func (sm *StateMachine) vacuumStmt(st Statement, res *Result) error {
	stmt, _, err := sm.w.Prepare(st.SQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	return sm.execOne(stmt, st.Args, res)
}

// reinstallNotify makes the notifications table and its statements again,
// after a change of temp_store dropped the table.
func (sm *StateMachine) reinstallNotify() error {
	nt := &sm.nt
	for _, st := range []**sqlite3.Stmt{&nt.ins, &nt.read, &nt.clear, &nt.cut} {
		if *st != nil {
			(*st).Close()
			*st = nil
		}
	}
	return sm.installNotify()
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
