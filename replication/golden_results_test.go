package replication

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/golden"
)

func TestGoldenSessionResults(t *testing.T) {
	sq := map[string]error{"unique": uniqueError(t)}
	in := []Result{
		{
			Columns:   []string{"id", "v"},
			DeclTypes: []string{"INTEGER", ""},
			Rows: [][]any{
				{int64(1), "a"}, {int64(-1 << 63), []byte{}}, {math.MaxInt64, []byte(nil)}, {nil, 2.5},
			},
			LastInsertID: 4,
			RowsAffected: 4,
		},
		{Err: sq["unique"]},
		{Err: &RefusedError{SQL: "DROP TABLE _hiqlite_sessions", Reason: "an internal table"}},
		{RowsAffected: -1},
	}
	in[0].Rows[2][0] = int64(math.MaxInt64)
	enc, err := marshalResults(in)
	if err != nil {
		t.Fatal(err)
	}
	const name = "sessionresults_v1"
	b := golden.Bytes(t, name, "Session results, version 1 (column results of _hiqlite_sessions, in the SQLite\n"+
		"database and its snapshots): a result with rows of every value type (nil blob\nkept), one with a SQLite UNIQUE error, one with a RefusedError, an empty one", enc)
	if !bytes.Equal(enc, b) {
		t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
	}
	got, err := unmarshalResults(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d results, want %d", len(got), len(in))
	}
	for i := range in {
		g, w := got[i], in[i]
		if w.Err != nil {
			if g.Err == nil || g.Err.Error() != w.Err.Error() {
				t.Errorf("result %d: error %v, want %v", i, g.Err, w.Err)
			}
			var ge, we *RefusedError
			if errors.As(g.Err, &ge) != errors.As(w.Err, &we) || ge != nil && *ge != *we {
				t.Errorf("result %d: RefusedError %v, want %v", i, ge, we)
			}
			var gs, ws *sqlite3.Error
			if errors.As(g.Err, &gs) != errors.As(w.Err, &ws) || gs != nil && gs.ExtendedCode() != ws.ExtendedCode() {
				t.Errorf("result %d: *sqlite3.Error %v, want %v", i, gs, ws)
			}
		} else if g.Err != nil {
			t.Errorf("result %d: error %v", i, g.Err)
		}
		g.Err, w.Err = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("result %d: %+v\nwant %+v", i, g, w)
		}
	}
	again, err := marshalResults(got)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("re-encoding: %x, %v\nwant %x", again, err, b)
	}
}
