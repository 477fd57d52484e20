package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/sqltext"
)

func cmdShell(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("shell", "--dsn DSN", stderr)
	dsn := fs.String("dsn", "", "the node to open: DATA_DIR[?param=value&...] (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsn == "" {
		return &usageError{errors.New("--dsn is required, for example: hiqlite shell --dsn /tmp/hiqlite")}
	}
	db, err := openNode(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return shell(ctx, db, stdin, stdout, stderr, isTerminal(stdin))
}

// openNode opens the node of dsn and waits until it is ready for writes
// (for a single node: until it has elected itself).
func openNode(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open(hiqlite.DriverName, dsn)
	if err != nil {
		return nil, err
	}
	n, err := hiqlite.NodeOf(ctx, db)
	if err == nil {
		err = n.WaitReady(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// isTerminal reports whether r is an interactive terminal, which gets
// prompts; a pipe or a file gets none.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

const shellHelp = `Statements end with ';' and may span lines. Dot commands, at the start of a line:
  .help     this help
  .tables   list the tables
  .status   this node's id, leader and applied index
  .quit     leave (also .exit, or end of input)
`

// shell reads SQL statements from in and runs them on one connection of db,
// so BEGIN ... COMMIT works across statements. Rows are printed to out as
// aligned columns, errors to errOut. With interactive, it prompts and keeps
// going after errors; otherwise it also keeps going, but returns an error
// naming how many statements failed.
func shell(ctx context.Context, db *sql.DB, in io.Reader, out, errOut io.Writer, interactive bool) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if interactive {
		fmt.Fprintf(out, "hiqlite shell. Statements end with ';'. Enter .help for help.\n")
	}
	r := bufio.NewReader(in)
	var pending string // text of a statement not ended yet
	failed := 0
	runText := func(st string) {
		if isBlankSQL(st) {
			return
		}
		if err := runStatement(ctx, conn, strings.TrimSpace(st), out); err != nil {
			fmt.Fprintf(errOut, "Error: %v\n", err)
			failed++
		}
	}
	for {
		if interactive {
			if strings.TrimSpace(pending) == "" {
				fmt.Fprint(out, "hiqlite> ")
			} else {
				fmt.Fprint(out, "    ...> ")
			}
		}
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		eof := err != nil
		if strings.TrimSpace(pending) == "" && strings.HasPrefix(strings.TrimSpace(line), ".") {
			pending = ""
			quit, derr := dotCommand(ctx, conn, strings.TrimSpace(line), out)
			if derr != nil {
				fmt.Fprintf(errOut, "Error: %v\n", derr)
				failed++
			}
			if quit {
				break
			}
		} else {
			var stmts []string
			stmts, pending = splitStatements(pending + line)
			for _, st := range stmts {
				runText(st)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if eof {
			if !isBlankSQL(pending) {
				// As the sqlite3 shell does, run a last statement
				// that lacks its ';'.
				runText(pending)
			}
			if interactive {
				fmt.Fprintln(out)
			}
			break
		}
	}
	if failed > 0 && !interactive {
		return fmt.Errorf("%d statement(s) failed", failed)
	}
	return nil
}

// dotCommand runs a shell command such as .tables; quit is true for .quit.
func dotCommand(ctx context.Context, conn *sql.Conn, cmd string, out io.Writer) (quit bool, err error) {
	name, _, _ := strings.Cut(cmd, " ")
	switch name {
	case ".quit", ".exit", ".q":
		return true, nil
	case ".help":
		fmt.Fprint(out, shellHelp)
		return false, nil
	case ".tables":
		rows, err := conn.QueryContext(ctx, `SELECT name FROM sqlite_schema
			WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_hiqlite\_%' ESCAPE '\'
			ORDER BY name`)
		if err != nil {
			return false, err
		}
		_, err = printRows(out, rows, "")
		return false, err
	case ".status":
		rows, err := conn.QueryContext(ctx, `SELECT hiqlite_node_id() AS node_id, hiqlite_leader_id() AS leader_id,
			hiqlite_is_leader() AS is_leader, hiqlite_applied_index() AS applied_index`)
		if err != nil {
			return false, err
		}
		_, err = printRows(out, rows, "")
		return false, err
	}
	return false, fmt.Errorf("unknown command %s; enter .help for the list", name)
}

// runStatement runs one statement. Statements that may return rows are
// queries, printed as a table; DML statements report the rows they changed;
// everything else prints nothing, as in the sqlite3 shell.
func runStatement(ctx context.Context, conn *sql.Conn, st string, out io.Writer) error {
	first, returning := leadingWord(st), hasWord(st, "RETURNING")
	switch {
	case returning, first == "SELECT", first == "VALUES", first == "WITH", first == "PRAGMA", first == "EXPLAIN":
		rows, err := conn.QueryContext(ctx, st)
		if err != nil {
			return err
		}
		_, err = printRows(out, rows, "")
		return err
	}
	res, err := conn.ExecContext(ctx, st)
	if err != nil {
		return err
	}
	switch first {
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			fmt.Fprintln(out, "(1 row affected)")
		} else {
			fmt.Fprintf(out, "(%d rows affected)\n", n)
		}
	}
	return nil
}

// splitStatements cuts the complete statements off the front of text, each
// with its ';', and returns them and the rest. A ';' ends a statement unless
// it is in a string, a quoted name, a comment or the body of a CREATE
// TRIGGER, which ends at "END;" (the rules of sqlite3_complete). It is the
// driver's own splitter, so the shell cuts a text where the driver would.
func splitStatements(text string) (stmts []string, rest string) {
	return sqltext.Split(text)
}

// isBlankSQL reports whether text holds no statement: only white space,
// comments and semicolons.
func isBlankSQL(text string) bool { return sqltext.IsBlank(text) }

// leadingWord is the statement's first keyword, upper-cased ("" if it does
// not start with one).
func leadingWord(st string) string {
	var first sqltext.Token
	sqltext.First(st, func(t sqltext.Token) {
		if first.Kind == sqltext.EOF {
			first = t
		}
	})
	if first.Kind != sqltext.Word {
		return ""
	}
	return sqltext.UpperASCII(first.Text)
}

// hasWord reports whether the keyword w (upper case) occurs in st outside
// strings, quoted names and comments.
func hasWord(st, w string) bool {
	lx := sqltext.NewLexer(st)
	for t := lx.Next(); t.Kind != sqltext.EOF; t = lx.Next() {
		if t.Is(w) {
			return true
		}
	}
	return false
}
