package wire

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/hiqlite/hiqlite/internal/golden"
	"github.com/hiqlite/hiqlite/replication"
)

func TestGoldenSessionResults(t *testing.T) {
	sq := sqliteErrs(t)
	in := []replication.Result{
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
		{Err: &replication.RefusedError{SQL: "DROP TABLE _hiqlite_sessions", Reason: "an internal table"}},
		{RowsAffected: -1},
	}
	in[0].Rows[2][0] = int64(math.MaxInt64)
	enc, err := MarshalResults(in)
	if err != nil {
		t.Fatal(err)
	}
	const name = "sessionresults_v1"
	b := golden.Bytes(t, name, "Session results, version 1 (column results of _hiqlite_sessions, in the SQLite\n"+
		"database and its snapshots): a result with rows of every value type (nil blob\nkept), one with a SQLite UNIQUE error, one with a RefusedError, an empty one", enc)
	if !bytes.Equal(enc, b) {
		t.Errorf("encoding changed:\n got %x\nwant %x", enc, b)
	}
	got, err := UnmarshalResults(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d results, want %d", len(got), len(in))
	}
	for i := range in {
		g, w := got[i], in[i]
		if w.Err != nil {
			checkSameError(t, g.Err, w.Err)
		} else if g.Err != nil {
			t.Errorf("result %d: error %v", i, g.Err)
		}
		g.Err, w.Err = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("result %d: %+v\nwant %+v", i, g, w)
		}
	}
	again, err := MarshalResults(got)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("re-encoding: %x, %v\nwant %x", again, err, b)
	}
}
