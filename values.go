package hiqlite

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// Values cross the driver in the types SQLite stores (nil, int64, float64,
// string, []byte). bool is stored as 0/1 and time.Time as RFC 3339 text with
// nanoseconds, as github.com/ncruces/go-sqlite3/driver stores them, so a file
// written through either driver reads the same through the other.

// checkValue accepts the types toArg converts; anything else is left to
// database/sql's default conversion (driver.Valuer, other integer kinds).
func checkValue(v any) error {
	switch v.(type) {
	case nil, int64, float64, bool, string, []byte, time.Time:
		return nil
	}
	return driver.ErrSkip
}

func toArgs(nargs []driver.NamedValue) ([]replication.Arg, error) {
	if len(nargs) == 0 {
		return nil, nil
	}
	args := make([]replication.Arg, len(nargs))
	for i, nv := range nargs {
		a := replication.Arg{Name: nv.Name, Ordinal: nv.Ordinal}
		switch v := nv.Value.(type) {
		case nil, int64, float64, string:
			a.Value = v
		case []byte:
			if v == nil {
				a.Value = nil
			} else {
				a.Value = v
			}
		case bool:
			if v {
				a.Value = int64(1)
			} else {
				a.Value = int64(0)
			}
		case time.Time:
			a.Value = v.Format(time.RFC3339Nano)
		default:
			return nil, fmt.Errorf("hiqlite: unsupported argument %d of type %T", nv.Ordinal, nv.Value)
		}
		args[i] = a
	}
	return args, nil
}

// scanKind is what a column's declared type says about its values.
type scanKind uint8

const (
	kindAny scanKind = iota
	kindInt
	kindReal
	kindText
	kindBlob
	kindBool
	kindTime
)

// kindOf maps a declared type: the exact STRICT names, plus BOOLEAN and the
// date/time names, which decide how values decode.
func kindOf(decl string) scanKind {
	switch strings.ToUpper(strings.TrimSpace(decl)) {
	case "INT", "INTEGER":
		return kindInt
	case "REAL":
		return kindReal
	case "TEXT":
		return kindText
	case "BLOB":
		return kindBlob
	case "BOOLEAN":
		return kindBool
	case "DATE", "TIME", "DATETIME", "TIMESTAMP":
		return kindTime
	}
	return kindAny
}

// decode turns a stored value into what database/sql gets: time.Time for
// text that a time.Time was stored as (exact RFC 3339 round trip), for any
// time value SQLite understands in a DATE/TIME/DATETIME/TIMESTAMP column;
// bool for 0/1 in a BOOLEAN column; else the value itself.
func decode(k scanKind, v any) driver.Value {
	if s, ok := v.(string); ok && k != kindText {
		if t, ok := storedTime(s); ok {
			return t
		}
	}
	switch k {
	case kindTime:
		switch v.(type) {
		case string, int64, float64:
			if t, err := sqlite3.TimeFormatAuto.Decode(v); err == nil {
				return t
			}
		}
	case kindBool:
		switch v {
		case int64(0):
			return false
		case int64(1):
			return true
		}
	}
	return v
}

// storedTime recognises text in the exact form toArg writes time.Time in.
func storedTime(s string) (time.Time, bool) {
	const shortest = len("2006-01-02T15:04:05Z")
	if len(s) < shortest || len(s) > len(time.RFC3339Nano) || s[4] != '-' || s[10] != 'T' || s[13] != ':' {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Format(time.RFC3339Nano) != s {
		return time.Time{}, false
	}
	return t, true
}

var (
	typeInt64   = reflect.TypeFor[int64]()
	typeFloat64 = reflect.TypeFor[float64]()
	typeString  = reflect.TypeFor[string]()
	typeBytes   = reflect.TypeFor[[]byte]()
	typeBool    = reflect.TypeFor[bool]()
	typeTime    = reflect.TypeFor[time.Time]()
	typeAny     = reflect.TypeFor[any]()
)

// scanType is the Go type for a column of kind k holding v (nil before the
// first row): the declared kind when it can hold v, else v's own type.
func scanType(k scanKind, v any, haveRow bool) reflect.Type {
	if haveRow && v != nil {
		d := decode(k, v)
		switch d.(type) {
		case time.Time:
			return typeTime
		case bool:
			return typeBool
		case int64:
			return typeInt64
		case float64:
			return typeFloat64
		case string:
			return typeString
		case []byte:
			return typeBytes
		}
	}
	switch k {
	case kindInt:
		return typeInt64
	case kindReal:
		return typeFloat64
	case kindText:
		return typeString
	case kindBlob:
		return typeBytes
	case kindBool:
		return typeBool
	case kindTime:
		return typeTime
	}
	return typeAny
}

// databaseTypeName is the declared type in upper case without its size
// arguments: "VARCHAR(20)" gives "VARCHAR".
func databaseTypeName(decl string) string {
	decl = strings.ToUpper(strings.TrimSpace(decl))
	if i := strings.IndexByte(decl, '('); i >= 0 && strings.HasSuffix(decl, ")") {
		decl = strings.TrimSpace(decl[:i])
	}
	return decl
}
