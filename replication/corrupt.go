package replication

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite/internal/durable"
	"github.com/ncruces/go-sqlite3"
)

// CorruptMarker is the suffix of the file, next to the database, that
// records that this node found its database damaged while it ran (a read or
// an apply failed with SQLITE_CORRUPT or SQLITE_NOTADB). The next open
// treats the database as corrupt even if PRAGMA quick_check, which does not
// decode every record, passes.
const CorruptMarker = "-corrupt"

// maxCheckProblems bounds the lines of PRAGMA quick_check kept in a
// corruptError.
const maxCheckProblems = 10

// corruptError is a database that failed PRAGMA quick_check. It matches
// sqlite3.CORRUPT with errors.Is.
type corruptError struct {
	Path     string
	Problems []string // the first lines quick_check reported
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("hiqlite: %s failed quick_check: %s", e.Path, strings.Join(e.Problems, "; "))
}

func (e *corruptError) Unwrap() error { return sqlite3.CORRUPT }

// IsCorrupt reports whether err says a database file is damaged:
// SQLITE_CORRUPT (any extended code but SQLITE_CORRUPT_VTAB, see
// isVTabCorrupt), SQLITE_NOTADB (a damaged header), or a failed
// quick_check.
func IsCorrupt(err error) bool {
	return err != nil && (errors.Is(err, sqlite3.CORRUPT) || errors.Is(err, sqlite3.NOTADB)) && !isVTabCorrupt(err)
}

// isVTabCorrupt reports whether err is SQLITE_CORRUPT_VTAB: a virtual
// table found its own content inconsistent, as FTS5 does for a 'delete'
// whose values are not those indexed (external content out of step with
// its index) and R*Tree for shadow tables written by hand. SQL put that
// content there, through the log, so every node holds the same and fails
// alike: it is the statement's error, never damage of this node's file
// (the b-trees under those tables report plain SQLITE_CORRUPT).
func isVTabCorrupt(err error) bool {
	return errors.Is(err, sqlite3.CORRUPT_VTAB)
}

// quickCheck runs PRAGMA quick_check on conn: every page of every b-tree
// and of the freelist is read once and its structure checked (cell
// bounds, key order, page ownership, NOT NULL), but index entries are not
// matched against their rows (that is integrity_check, several times
// slower). It returns a *corruptError when the check finds problems.
func quickCheck(conn *sqlite3.Conn, path string) error {
	return runCheck(conn, path, "quick_check")
}

// runCheck runs PRAGMA pragma (quick_check or integrity_check) on conn.
func runCheck(conn *sqlite3.Conn, path, pragma string) error {
	stmt, _, err := conn.Prepare(`PRAGMA ` + pragma + `(` + fmt.Sprint(maxCheckProblems) + `)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	var problems []string
	for stmt.Step() {
		if line := stmt.ColumnText(0); line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := stmt.Err(); err != nil {
		return fmt.Errorf("hiqlite: %s of %s: %w", pragma, path, err)
	}
	if len(problems) > 0 {
		return &corruptError{Path: path, Problems: problems}
	}
	return nil
}

// checkFile runs quickCheck on the database file at path, a snapshot's
// copy that nothing else has open. It opens it read-write, though it
// writes nothing: the copy is in WAL mode, and only a read-write
// connection, the last to close, deletes the -wal and -shm files its open
// created.
// init is the application's hook (Options.ConnInit): the schema may need
// its functions and collations.
func checkFile(path string, init ConnInit) error {
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READWRITE|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return err
	}
	if err := runConnInit(conn, init); err != nil {
		return errors.Join(err, conn.Close())
	}
	err = quickCheck(conn, path)
	return errors.Join(err, conn.Close())
}

// MarkedCorrupt returns what the marker left by a running node that found
// the database at path damaged says, and whether there is one.
func MarkedCorrupt(path string) (reason string, ok bool) {
	b, err := os.ReadFile(path + CorruptMarker)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// Corrupt stops the state machine when err, from a read of the database on
// this node (the local read pool), says the database is damaged: such a
// node must apply nothing more and be rebuilt. It returns err unchanged.
func (sm *StateMachine) Corrupt(err error) error {
	if IsCorrupt(err) {
		sm.stop(err)
	}
	return err
}

// corruptFault is the fault of a state machine that found its database
// damaged: it records the marker for the next open and says what heals it.
func (sm *StateMachine) corruptFault(err error) error {
	note := fmt.Sprintf("%s: %v\n", time.Now().UTC().Format(time.RFC3339), err)
	if sm.memory {
		// No next open: the database goes with the node.
		return fmt.Errorf("database corrupt: %w", err)
	}
	if werr := durable.WriteFile(sm.path+CorruptMarker, []byte(note), 0o600); werr != nil {
		err = fmt.Errorf("%w (and the marker for the next open failed: %v)", err, werr)
	}
	return fmt.Errorf("database corrupt; restart the node to rebuild it from a snapshot and the log: %w", err)
}
