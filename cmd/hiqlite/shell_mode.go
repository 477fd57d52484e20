package main

import (
	"bytes"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// outputModes are the shell's .mode values.
var outputModes = []string{"column", "table", "box", "list", "line", "csv", "json"}

func validMode(m string) bool { return slices.Contains(outputModes, m) }

// printMode prints rows in mode, with the column names when headers is
// on (line and json always name the columns). It reads rows to the end and
// closes them.
func printMode(w io.Writer, rows *sql.Rows, mode string, headers bool) error {
	var cells [][]string
	var raw [][]any // json and csv keep the values' types
	cols, err := eachRow(rows, func(vals []any) error {
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = formatValue(v)
		}
		cells = append(cells, row)
		if mode == "json" || mode == "csv" {
			raw = append(raw, slices.Clone(vals))
		}
		return nil
	})
	if err != nil || len(cols) == 0 {
		return err
	}
	switch mode {
	case "column":
		var b bytes.Buffer
		printTable(&b, "", cols, cells)
		out := b.String()
		if !headers {
			_, out, _ = strings.Cut(out, "\n")
			_, out, _ = strings.Cut(out, "\n")
		}
		_, err = io.WriteString(w, out)
	case "table":
		err = printBox(w, cols, cells, headers, boxASCII)
	case "box":
		err = printBox(w, cols, cells, headers, boxUnicode)
	case "list":
		if headers {
			fmt.Fprintln(w, strings.Join(cols, "|"))
		}
		for _, row := range cells {
			fmt.Fprintln(w, strings.Join(row, "|"))
		}
	case "line":
		width := 0
		for _, c := range cols {
			width = max(width, utf8.RuneCountInString(c))
		}
		for i, row := range cells {
			if i > 0 {
				fmt.Fprintln(w)
			}
			for j, c := range row {
				pad := strings.Repeat(" ", width-utf8.RuneCountInString(cols[j]))
				fmt.Fprintf(w, "%s%s = %s\n", pad, cols[j], c)
			}
		}
	case "csv":
		cw := csv.NewWriter(w)
		if headers {
			cw.Write(cols)
		}
		for i, row := range cells {
			for j, v := range raw[i] {
				if v == nil {
					row[j] = "" // NULL is an empty field
				}
			}
			cw.Write(row)
		}
		cw.Flush()
		err = cw.Error()
	case "json":
		err = printJSON(w, cols, raw)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	return err
}

// boxGlyphs draws a table: the corners and joints of the top, middle and
// bottom rules (left, joint, right), the rule and the column separator.
type boxGlyphs struct {
	top, mid, bottom [3]string
	rule, sep        string
}

var (
	boxASCII   = boxGlyphs{[3]string{"+", "+", "+"}, [3]string{"+", "+", "+"}, [3]string{"+", "+", "+"}, "-", "|"}
	boxUnicode = boxGlyphs{[3]string{"┌", "┬", "┐"}, [3]string{"├", "┼", "┤"}, [3]string{"└", "┴", "┘"}, "─", "│"}
)

// printBox prints cells framed by g, the header (when headers) in a box of
// its own.
func printBox(w io.Writer, cols []string, cells [][]string, headers bool, g boxGlyphs) error {
	width := make([]int, len(cols))
	for i, c := range cols {
		width[i] = utf8.RuneCountInString(c)
	}
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	rule := func(j [3]string) {
		parts := make([]string, len(width))
		for i, n := range width {
			parts[i] = strings.Repeat(g.rule, n+2)
		}
		fmt.Fprintln(w, j[0]+strings.Join(parts, j[1])+j[2])
	}
	line := func(row []string) {
		parts := make([]string, len(row))
		for i, c := range row {
			parts[i] = " " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " "
		}
		fmt.Fprintln(w, g.sep+strings.Join(parts, g.sep)+g.sep)
	}
	rule(g.top)
	if headers {
		line(cols)
		rule(g.mid)
	}
	for _, row := range cells {
		line(row)
	}
	rule(g.bottom)
	return nil
}

// printJSON prints rows as a JSON array of objects, one a line, the keys
// in column order. Numbers stay numbers, NULL is null, a blob is its X'..'
// literal.
func printJSON(w io.Writer, cols []string, rows [][]any) error {
	keys := make([]string, len(cols))
	for i, c := range cols {
		k, err := json.Marshal(c)
		if err != nil {
			return err
		}
		keys[i] = string(k)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "[]")
		return err
	}
	for r, row := range rows {
		var b strings.Builder
		if r == 0 {
			b.WriteString("[")
		}
		b.WriteString("{")
		for i, v := range row {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(keys[i] + ":" + shellJSONValue(v))
		}
		b.WriteString("}")
		if r == len(rows)-1 {
			b.WriteString("]")
		} else {
			b.WriteString(",")
		}
		if _, err := fmt.Fprintln(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

func shellJSONValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "null"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	b, err := json.Marshal(formatValue(v))
	if err != nil {
		return "null"
	}
	return string(b)
}
