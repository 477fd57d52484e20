package main

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// printRows prints rows as an aligned table (header, rule, a line per
// row, then the row count), each line prefixed by indent. It reads rows to
// the end and closes them.
func printRows(w io.Writer, rows *sql.Rows, indent string) (n int, err error) {
	var cells [][]string
	cols, err := eachRow(rows, func(vals []any) error {
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = formatValue(v)
		}
		cells = append(cells, row)
		return nil
	})
	if err != nil || len(cols) == 0 {
		return 0, err
	}
	printTable(w, indent, cols, cells)
	return len(cells), nil
}

// eachRow calls f with the values of each row of rows (the slice is reused
// between calls), reads rows to the end and closes them, and returns the
// column names.
func eachRow(rows *sql.Rows, f func(vals []any) error) (cols []string, err error) {
	defer rows.Close()
	if cols, err = rows.Columns(); err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		if err := f(vals); err != nil {
			return nil, err
		}
	}
	return cols, rows.Err()
}

// printTable prints a header and rows of cells as aligned columns, then the
// number of rows.
func printTable(w io.Writer, indent string, header []string, cells [][]string) {
	printAligned(w, indent, "", header, cells)
	if len(cells) == 1 {
		fmt.Fprintf(w, "%s(1 row)\n", indent)
	} else {
		fmt.Fprintf(w, "%s(%d rows)\n", indent, len(cells))
	}
}

// printAligned prints a header, a rule and rows as columns, each line
// prefixed by indent. align has a letter per column: 'r' aligns it right
// (numbers); a missing letter or any other aligns it left.
func printAligned(w io.Writer, indent, align string, header []string, cells [][]string) {
	width := make([]int, len(header))
	for _, row := range append([][]string{header}, cells...) {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(row []string) {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			switch {
			case i < len(align) && align[i] == 'r':
				b.WriteString(pad + c)
			case i < len(row)-1:
				b.WriteString(c + pad)
			default:
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(header)
	rule := make([]string, len(header))
	for i := range rule {
		rule[i] = strings.Repeat("-", width[i])
	}
	line(rule)
	for _, row := range cells {
		line(row)
	}
}

// formatValue writes a value the way the sqlite3 shell would: NULL, numbers
// as SQLite prints them, blobs as X'..' literals.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return "X'" + strings.ToUpper(hex.EncodeToString(v)) + "'"
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0" // 1.0, not 1: it is a REAL
		}
		return s
	case bool:
		if v {
			return "1"
		}
		return "0"
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
