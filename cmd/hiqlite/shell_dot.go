package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hiqlite/hiqlite"
)

const shellHelp = `Statements end with ';' and may span lines. Dot commands, at the start of a line:
  .help                     this help
  .tables                   list the tables and views
  .schema [TABLE]           the CREATE statements (of TABLE and its indexes and triggers)
  .nodes                    the cluster's members, as this node sees them (hiqlite_nodes)
  .status                   this node's id, leader and applied index
  .mode [MODE]              output mode: column (the default), table, box, list, line, csv, json
  .headers on|off           column names in column, table, box, list and csv output
  .timer on|off             print the time each statement took
  .consistency [local|linearizable]
                            the consistency of reads (without an argument: the current one)
  .read FILE                run the statements and commands of FILE (Ctrl-C stops it)
  .dump                     the schema and rows of the user tables as SQL that plain SQLite loads
  .quit                     leave (also .exit, Ctrl-D, or Ctrl-C twice at an empty prompt)
Ctrl-C stops the running statement. Backups are "hiqlite backup" and "hiqlite restore" (no .backup).
`

// userObjects is the SQL condition that keeps out SQLite's and hiqlite's
// internal schema objects.
const userObjects = `name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_hiqlite%' ESCAPE '\'
	AND tbl_name NOT LIKE 'sqlite\_%' ESCAPE '\' AND tbl_name NOT LIKE '\_hiqlite%' ESCAPE '\'`

// maxReadDepth bounds .read files that read each other.
const maxReadDepth = 16

// dotCommand runs a shell command such as .tables; quit is true for .quit.
func (s *shellSession) dotCommand(ctx context.Context, cmd string) (quit bool, err error) {
	fields := strings.Fields(cmd)
	name, args := fields[0], fields[1:]
	ctx, done := s.statementContext(ctx) // Ctrl-C stops a long .dump or .read
	defer done()
	wantArgs := func(min, max int, synopsis string) error {
		if len(args) < min || len(args) > max {
			return fmt.Errorf("usage: %s", synopsis)
		}
		return nil
	}
	switch name {
	case ".quit", ".exit", ".q":
		return true, nil
	case ".help":
		fmt.Fprint(s.out, shellHelp)
		return false, nil
	case ".tables":
		return false, s.query(ctx, `SELECT name FROM sqlite_schema
			WHERE type IN ('table', 'view') AND `+userObjects+` ORDER BY name`)
	case ".schema":
		if err := wantArgs(0, 1, ".schema [TABLE]"); err != nil {
			return false, err
		}
		return false, s.schema(ctx, args)
	case ".nodes":
		return false, s.query(ctx, `SELECT * FROM hiqlite_nodes ORDER BY node_id`)
	case ".status":
		return false, s.query(ctx, `SELECT hiqlite_node_id() AS node_id, hiqlite_leader_id() AS leader_id,
			hiqlite_is_leader() AS is_leader, hiqlite_applied_index() AS applied_index`)
	case ".mode":
		if err := wantArgs(0, 1, ".mode [column|table|box|list|line|csv|json]"); err != nil {
			return false, err
		}
		if len(args) == 0 {
			fmt.Fprintf(s.out, "current output mode: %s\n", s.mode)
			return false, nil
		}
		m := strings.ToLower(args[0])
		if !validMode(m) {
			return false, fmt.Errorf("unknown mode %q; want one of %s", args[0], strings.Join(outputModes, ", "))
		}
		s.mode = m
		return false, nil
	case ".headers", ".timer":
		if err := wantArgs(1, 1, name+" on|off"); err != nil {
			return false, err
		}
		on, err := onOff(args[0])
		if err != nil {
			return false, fmt.Errorf("%s: %w", name, err)
		}
		if name == ".headers" {
			s.headers = on
		} else {
			s.timer = on
		}
		return false, nil
	case ".consistency":
		if err := wantArgs(0, 1, ".consistency [local|linearizable]"); err != nil {
			return false, err
		}
		if len(args) == 0 {
			if s.consistency == nil {
				fmt.Fprintln(s.out, "the DSN's (_consistency, local unless set)")
			} else {
				fmt.Fprintln(s.out, *s.consistency)
			}
			return false, nil
		}
		c, err := hiqlite.ParseConsistency(args[0])
		if err != nil {
			return false, err
		}
		s.consistency = &c
		return false, nil
	case ".read":
		if err := wantArgs(1, 1, ".read FILE"); err != nil {
			return false, err
		}
		return s.read(ctx, args[0])
	case ".dump":
		if err := wantArgs(0, 0, ".dump"); err != nil {
			return false, err
		}
		return false, s.dump(ctx, s.out)
	}
	return false, fmt.Errorf("unknown command %s; enter .help for the list", name)
}

func onOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "yes", "1", "true":
		return true, nil
	case "off", "no", "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("want on or off, not %q", v)
}

// query runs q (with args) and prints its rows in the current mode.
func (s *shellSession) query(ctx context.Context, q string, args ...any) error {
	rows, err := s.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	return printMode(s.out, rows, s.mode, s.headers)
}

// schema prints the CREATE statements of the user's schema objects, or of
// those of one table.
func (s *shellSession) schema(ctx context.Context, args []string) error {
	q := `SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND ` + userObjects
	var qargs []any
	if len(args) == 1 {
		q += ` AND tbl_name = ? COLLATE NOCASE`
		qargs = append(qargs, args[0])
	}
	q += ` ORDER BY tbl_name, type = 'table' DESC, name`
	rows, err := s.conn.QueryContext(ctx, q, qargs...)
	if err != nil {
		return err
	}
	n := 0
	if _, err := eachRow(rows, func(vals []any) error {
		n++
		fmt.Fprintf(s.out, "%s;\n", formatValue(vals[0]))
		return nil
	}); err != nil {
		return err
	}
	if n == 0 && len(args) == 1 {
		return fmt.Errorf("no table named %q", args[0])
	}
	return nil
}

// read runs the lines of file as if typed, errors naming the file and line.
// A Ctrl-C stops the whole file.
func (s *shellSession) read(ctx context.Context, file string) (quit bool, err error) {
	if s.readDepth >= maxReadDepth {
		return false, fmt.Errorf(".read %s: files read each other more than %d deep", file, maxReadDepth)
	}
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	s.readDepth++
	defer func() { s.readDepth-- }()
	// A .quit in the file ends the file, not the shell.
	_, failed, err := s.run(ctx, newPlainSource(f, io.Discard, false), file, false)
	if err != nil {
		return false, fmt.Errorf(".read %s: %w", file, err)
	}
	if failed > 0 {
		return false, fmt.Errorf(".read %s: %d statement(s) failed", file, failed)
	}
	return false, nil
}

// quoteName quotes an SQL name with double quotes.
func quoteName(n string) string { return `"` + strings.ReplaceAll(n, `"`, `""`) + `"` }

// dump writes SQL that recreates the user's tables, rows, indexes, views
// and triggers in plain SQLite; hiqlite's internal tables are left out.
// SQLite's quote() writes each value, so every type comes back as it was.
func (s *shellSession) dump(ctx context.Context, w io.Writer) error {
	type object struct{ typ, name, sql string }
	rows, err := s.conn.QueryContext(ctx, `SELECT type, name, sql FROM sqlite_schema
		WHERE sql IS NOT NULL AND `+userObjects+`
		ORDER BY type = 'table' DESC, type = 'index' DESC, type = 'view' DESC, rowid`)
	if err != nil {
		return err
	}
	var objs []object
	if _, err := eachRow(rows, func(v []any) error {
		objs = append(objs, object{formatValue(v[0]), formatValue(v[1]), formatValue(v[2])})
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprint(w, "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	for _, o := range objs {
		fmt.Fprintf(w, "%s;\n", o.sql)
		if o.typ != "table" || strings.HasPrefix(strings.ToUpper(o.sql), "CREATE VIRTUAL") {
			continue
		}
		if err := s.dumpRows(ctx, w, o.name); err != nil {
			return err
		}
	}
	// AUTOINCREMENT counters, so new rows get the ids they would have got.
	var seq int
	if err := s.conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'`).Scan(&seq); err != nil {
		return err
	}
	if seq > 0 {
		rows, err := s.conn.QueryContext(ctx, `SELECT 'INSERT INTO sqlite_sequence VALUES(' || quote(name) || ',' || quote(seq) || ');'
			FROM sqlite_sequence WHERE name NOT LIKE '\_hiqlite%' ESCAPE '\'`)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "DELETE FROM sqlite_sequence;")
		if _, err := eachRow(rows, func(v []any) error { _, err := fmt.Fprintln(w, formatValue(v[0])); return err }); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "COMMIT;")
	return nil
}

// dumpRows writes an INSERT per row of table.
func (s *shellSession) dumpRows(ctx context.Context, w io.Writer, table string) error {
	rows, err := s.conn.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return err
	}
	var cols []string
	if _, err := eachRow(rows, func(v []any) error { cols = append(cols, formatValue(v[0])); return nil }); err != nil {
		return err
	}
	if len(cols) == 0 {
		return errors.New("table " + table + " has no columns")
	}
	names := make([]string, len(cols))
	vals := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteName(c)
		vals[i] = "quote(" + quoteName(c) + ")"
	}
	head := "INSERT INTO " + quoteName(table) + "(" + strings.Join(names, ",") + ") VALUES("
	rows, err = s.conn.QueryContext(ctx, `SELECT `+strings.Join(vals, ` || ',' || `)+` FROM `+quoteName(table))
	if err != nil {
		return err
	}
	_, err = eachRow(rows, func(v []any) error {
		_, err := fmt.Fprintf(w, "%s%s);\n", head, formatValue(v[0]))
		return err
	})
	return err
}
