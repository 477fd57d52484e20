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
	"sync"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/sqltext"
	"golang.org/x/term"
)

func cmdShell(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("shell", "--dsn DSN", stderr)
	dsn := fs.String("dsn", "", "the node to open: DATA_DIR[?param=value&...], or a running cluster to attach to:\nhiqlite://HOST:PORT[,HOST:PORT...]?_secret=... (required)")
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
	s, err := newShellSession(ctx, db, stdout, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	if f, ok := stdin.(*os.File); ok && f == os.Stdin {
		// The process's own input: SIGINT is the shell's (see main).
		if isTerminal(f) && term.IsTerminal(int(f.Fd())) {
			return interactiveShell(ctx, s, f)
		}
		return pipedShell(ctx, s, f)
	}
	return s.main(ctx, newPlainSource(stdin, stdout, isTerminal(stdin)), isTerminal(stdin))
}

// openNode opens the node of dsn and waits until it is ready for writes
// (for a single node: until it has elected itself). A remote DSN
// (hiqlite://...) opens a remote client instead, once a member accepted
// its session.
func openNode(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open(hiqlite.DriverName, dsn)
	if err != nil {
		return nil, err
	}
	if hiqlite.IsRemoteDSN(dsn) {
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
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

// shell reads SQL statements from in and runs them on one connection of db,
// so BEGIN ... COMMIT works across statements. Rows are printed to out (as
// aligned columns until .mode says otherwise), errors to errOut. With
// interactive, it prompts and keeps going after errors; otherwise it also
// keeps going, but returns an error naming how many statements failed.
func shell(ctx context.Context, db *sql.DB, in io.Reader, out, errOut io.Writer, interactive bool) error {
	s, err := newShellSession(ctx, db, out, errOut)
	if err != nil {
		return err
	}
	defer s.close()
	return s.main(ctx, newPlainSource(in, out, interactive), interactive)
}

// shellSession is the state of one shell: its connection and the settings
// the dot commands change.
type shellSession struct {
	conn        *sql.Conn
	out, errOut io.Writer
	mode        string // an output mode of outputModes
	headers     bool
	timer       bool
	consistency *hiqlite.Consistency // nil: the DSN's
	readDepth   int                  // nesting of .read

	mu         sync.Mutex
	cancelStmt context.CancelFunc // of the running statement, nil between statements
}

func newShellSession(ctx context.Context, db *sql.DB, out, errOut io.Writer) (*shellSession, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &shellSession{conn: conn, out: out, errOut: errOut, mode: "column", headers: true}, nil
}

func (s *shellSession) close() { s.conn.Close() }

// main runs the lines of src until .quit, the end of input or a Ctrl-C at
// an empty prompt that follows another.
func (s *shellSession) main(ctx context.Context, src lineSource, interactive bool) error {
	if interactive {
		fmt.Fprintf(s.out, "hiqlite shell. Statements end with ';'. Enter .help for help.\n")
	}
	_, failed, err := s.run(ctx, src, "", interactive)
	if err != nil {
		return err
	}
	if failed > 0 && !interactive {
		return fmt.Errorf("%d statement(s) failed", failed)
	}
	return nil
}

// errInterrupted is what a lineSource returns for a Ctrl-C at its prompt.
var errInterrupted = errors.New("interrupted")

// lineSource gives the shell its input a line at a time.
type lineSource interface {
	// readLine returns the next line without its end of line, and io.EOF
	// (maybe with a last line) at the end; errInterrupted for a Ctrl-C.
	readLine(prompt string) (string, error)
}

// plainSource reads lines from a reader, a pipe or a file: no editing, and
// prompts only when interactive.
type plainSource struct {
	r      *bufio.Reader
	out    io.Writer
	prompt bool
}

func newPlainSource(in io.Reader, out io.Writer, prompt bool) *plainSource {
	return &plainSource{r: bufio.NewReader(in), out: out, prompt: prompt}
}

func (p *plainSource) readLine(prompt string) (string, error) {
	if p.prompt {
		fmt.Fprint(p.out, prompt)
	}
	line, err := p.r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	return line, err
}

// run runs the lines of src: statements, which end with ';' and may span
// lines, and dot commands. file names src in error messages ("" for the
// shell's own input, whose errors name no line). It returns how many
// statements or commands failed; quit is true after .quit or an exit by
// Ctrl-C or Ctrl-D.
func (s *shellSession) run(ctx context.Context, src lineSource, file string, interactive bool) (quit bool, failed int, err error) {
	var pending string // text of a statement not ended yet
	pendingLine := 0   // the line pending starts on
	lineNo := 0
	interrupts := 0 // Ctrl-C in a row at an empty prompt
	report := func(line int, err error) {
		failed++
		if file != "" {
			fmt.Fprintf(s.errOut, "%s:%d: Error: %v\n", file, line, err)
		} else {
			fmt.Fprintf(s.errOut, "Error: %v\n", err)
		}
	}
	runText := func(st string, line int) {
		if isBlankSQL(st) {
			return
		}
		if err := s.statement(ctx, strings.TrimSpace(st)); err != nil {
			report(line, err)
		}
	}
	for {
		prompt := "hiqlite> "
		if strings.TrimSpace(pending) != "" {
			prompt = "    ...> "
		}
		line, rerr := src.readLine(prompt)
		if errors.Is(rerr, errInterrupted) {
			if strings.TrimSpace(pending) == "" && interrupts > 0 {
				return true, failed, nil
			}
			if strings.TrimSpace(pending) == "" {
				interrupts++
				fmt.Fprintln(s.errOut, "^C (Ctrl-C again or Ctrl-D to leave)")
			} else {
				fmt.Fprintln(s.errOut, "^C")
			}
			pending = ""
			continue
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return false, failed, rerr
		}
		eof := rerr != nil
		lineNo++
		if line != "" {
			interrupts = 0
		}
		if strings.TrimSpace(pending) == "" && strings.HasPrefix(strings.TrimSpace(line), ".") {
			pending = ""
			q, derr := s.dotCommand(ctx, strings.TrimSpace(line))
			if derr != nil {
				report(lineNo, derr)
			}
			if q {
				return true, failed, nil
			}
		} else {
			if strings.TrimSpace(pending) == "" {
				pending, pendingLine = "", lineNo
			}
			text := pending + line + "\n"
			var stmts []string
			stmts, pending = splitStatements(text)
			at := 0
			for _, st := range stmts {
				runText(st, pendingLine+strings.Count(text[:at], "\n")+startLine(st))
				at += len(st)
			}
			pendingLine += strings.Count(text[:at], "\n")
		}
		if ctx.Err() != nil {
			return false, failed, ctx.Err()
		}
		if eof {
			if !isBlankSQL(pending) {
				// As the sqlite3 shell does, run a last statement
				// that lacks its ';'.
				runText(pending, pendingLine+startLine(pending))
			}
			if interactive {
				fmt.Fprintln(s.out)
			}
			return false, failed, nil
		}
	}
}

// startLine is how many lines text runs over before its first character
// that is not white space.
func startLine(text string) int {
	return strings.Count(text[:len(text)-len(strings.TrimLeft(text, " \t\r\n"))], "\n")
}

// statementContext is the context of one statement or dot command: its
// reads use the consistency .consistency chose, and interrupt cancels it.
// Inside a .read, interrupt cancels the outermost one: the whole .read.
// done must be called when it ends.
func (s *shellSession) statementContext(ctx context.Context) (sctx context.Context, done func()) {
	sctx, cancel := context.WithCancel(ctx)
	if s.consistency != nil {
		sctx = hiqlite.WithConsistency(sctx, *s.consistency)
	}
	s.mu.Lock()
	outer := s.cancelStmt == nil
	if outer {
		s.cancelStmt = cancel
	}
	s.mu.Unlock()
	return sctx, func() {
		if outer {
			s.mu.Lock()
			s.cancelStmt = nil
			s.mu.Unlock()
		}
		cancel()
	}
}

// interrupt cancels the running statement, as Ctrl-C does, and reports
// whether one was running. The shell goes on with its next line.
func (s *shellSession) interrupt() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelStmt == nil {
		return false
	}
	s.cancelStmt()
	return true
}

// statement runs one statement with its own context, timed by .timer.
func (s *shellSession) statement(ctx context.Context, st string) error {
	sctx, done := s.statementContext(ctx)
	defer done()
	start := time.Now()
	err := runStatement(sctx, s.conn, st, s.out, s.mode, s.headers)
	if s.timer {
		fmt.Fprintf(s.out, "Run Time: real %.3fs\n", time.Since(start).Seconds())
	}
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}

// runStatement runs one statement. Statements that may return rows are
// queries, printed in mode; DML statements report the rows they changed;
// everything else prints nothing, as in the sqlite3 shell.
func runStatement(ctx context.Context, conn *sql.Conn, st string, out io.Writer, mode string, headers bool) error {
	first, returning := leadingWord(st), hasWord(st, "RETURNING")
	switch {
	case returning, first == "SELECT", first == "VALUES", first == "WITH", first == "PRAGMA", first == "EXPLAIN":
		rows, err := conn.QueryContext(ctx, st)
		if err != nil {
			return err
		}
		return printMode(out, rows, mode, headers)
	}
	res, err := conn.ExecContext(ctx, st)
	if err != nil {
		return err
	}
	switch first {
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		if mode != "column" && mode != "table" && mode != "box" {
			return nil // keep csv, json and list output parseable
		}
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
