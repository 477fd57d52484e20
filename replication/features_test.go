package replication

import "testing"

// A read connection has the modules.
func TestRegisterFeatures(t *testing.T) {
	t.Parallel()
	c := detPlain(t, ":memory:")
	if err := RegisterFeatures(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(`CREATE VIRTUAL TABLE f USING fts5(a); CREATE VIRTUAL TABLE r USING rtree(id, x0, x1); CREATE VIRTUAL TABLE g USING geopoly()`); err != nil {
		t.Fatal(err)
	}
}
