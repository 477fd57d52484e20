package replication

import (
	"reflect"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/uuidtest"
)

// The writer's UUIDs: the same for the same command on every writer,
// different for another seed; version 7 carries the command time and
// increases within a command.
func TestDeterministicUUID(t *testing.T) {
	t.Parallel()
	const q = `SELECT uuid4(), gen_random_uuid(), uuid(), uuid(4), uuid7(), uuid(7), uuid7()`
	a, b, other := detOpen(t, ":memory:", 7), detOpen(t, ":memory:", 7), detOpen(t, ":memory:", 8)
	ra, rb, ro := detRow(t, a.w, q), detRow(t, b.w, q), detRow(t, other.w, q)
	for i := range ra {
		if ra[i] != rb[i] {
			t.Errorf("column %d: %v on one writer, %v on another with the same command", i, ra[i], rb[i])
		}
		if ra[i] == ro[i] {
			t.Errorf("column %d: %v with two seeds", i, ra[i])
		}
	}
	seen := map[any]bool{}
	var last string
	for i, v := range ra {
		if seen[v] {
			t.Errorf("%v twice in one command", v)
		}
		seen[v] = true
		if i < 4 {
			uuidtest.Check(t, v.(string), 4)
			continue
		}
		u := uuidtest.Check(t, v.(string), 7)
		if ms := uuidtest.Millis(u); ms != detTime.UnixMilli() {
			t.Errorf("uuid7 %v has time %d, want the command's %d", v, ms, detTime.UnixMilli())
		}
		if v.(string) <= last {
			t.Errorf("uuid7 %v after %v: not increasing within the command", v, last)
		}
		last = v.(string)
	}

	// A new command restarts from its own seed and time.
	later := detTime.Add(time.Second)
	a.env.Reset(later, 7)
	again := detRow(t, a.w, q)
	if again[0] != ra[0] {
		t.Errorf("uuid4 after Reset to the same seed: %v, want %v", again[0], ra[0])
	}
	if ms := uuidtest.Millis(uuidtest.Check(t, again[4].(string), 7)); ms != later.UnixMilli() {
		t.Errorf("uuid7 after Reset: time %d, want %d", ms, later.UnixMilli())
	}

	// Many in one command stay increasing, with the version and variant.
	rows := detMustQuery(t, a.w, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT uuid7() FROM n`)
	for i := 1; i < len(rows); i++ {
		if rows[i][0].(string) <= rows[i-1][0].(string) {
			t.Fatalf("uuid7 #%d %v after %v", i, rows[i][0], rows[i-1][0])
		}
		uuidtest.Check(t, rows[i][0].(string), 7)
	}

	// Usable in DEFAULT clauses, refused where a deterministic function is
	// needed, and only versions 4 and 7.
	if err := a.w.Exec(`CREATE TABLE u(id TEXT PRIMARY KEY DEFAULT (uuid4()), t DEFAULT (uuid7()), n); INSERT INTO u(n) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := a.w.Exec(`CREATE TABLE g(x, y AS (uuid4()))`); err == nil {
		t.Error("uuid4() accepted in a generated column")
	}
	if _, err := detQuery(a.w, `SELECT uuid(5)`); err == nil {
		t.Error("uuid(5) accepted")
	}
	// Live mode (a read inside a write transaction) is plain random.
	a.env.SetLive(true)
	b.env.SetLive(true)
	a.env.Reset(detTime, 7)
	b.env.Reset(detTime, 7)
	if l1, l2 := detRow(t, a.w, `SELECT uuid4()`)[0], detRow(t, b.w, `SELECT uuid4()`)[0]; l1 == l2 {
		t.Errorf("live uuid4 %v on two writers", l1)
	}
}

// The UUIDs of a command are part of the replicated format: a node that
// replays an old log entry must make the ones the entry's first writer
// made, whatever version each runs. These must never change.
func TestDeterministicUUIDGolden(t *testing.T) {
	t.Parallel()
	n := detOpen(t, ":memory:", 42)
	got := detRow(t, n.w, `SELECT uuid4(), uuid7(), uuid7()`)
	want := []any{
		"7e5d6855-56f2-4495-b414-0e0f415d82c7",
		"01783148-ee87-7282-a081-b6844cbd90f2", // 0x01783148ee87: detTime in ms
		"01783148-ee87-7282-a081-b6851fe336be",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A read connection has the modules and random UUIDs.
func TestRegisterFeatures(t *testing.T) {
	t.Parallel()
	c := detPlain(t, ":memory:")
	if err := RegisterFeatures(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(`CREATE VIRTUAL TABLE f USING fts5(a); CREATE VIRTUAL TABLE r USING rtree(id, x0, x1); CREATE VIRTUAL TABLE g USING geopoly()`); err != nil {
		t.Fatal(err)
	}
	row := detRow(t, c, `SELECT uuid4(), uuid4(), uuid7()`)
	if row[0] == row[1] {
		t.Errorf("two uuid4() alike: %v", row[0])
	}
	uuidtest.Check(t, row[0].(string), 4)
	u := uuidtest.Check(t, row[2].(string), 7)
	if d := time.Since(time.UnixMilli(uuidtest.Millis(u))); d < 0 || d > time.Minute {
		t.Errorf("local uuid7 %v is %v off the clock", row[2], d)
	}
	if err := c.Exec(`SELECT uuid7()`); err != nil {
		t.Error(err)
	}
}
