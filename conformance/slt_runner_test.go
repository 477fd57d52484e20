package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSLTRunner checks the runner itself on a small script whose results
// are worked out by hand: a runner that passes everything proves nothing.
func TestSLTRunner(t *testing.T) {
	script := `# a comment
hash-threshold 4

statement ok
CREATE TABLE t(a INTEGER, b TEXT, c REAL)

statement ok
INSERT INTO t VALUES (4294967301, '', 0.0625), (-1, 'x y', NULL), (3, 'caf` + "\u00e9" + `', 2.5)

statement error
INSERT INTO nosuch VALUES (1)

skipif sqlite
statement ok
THIS IS NOT SQL

onlyif mysql
query I nosort
SELECT 'never run'
----
1

query ITR rowsort
SELECT a, b, c FROM t WHERE a < 10
----
-1
x y
NULL
3
caf@@
2.500

query I valuesort
SELECT a FROM t
----
-1
3
5

query T nosort
SELECT b FROM t ORDER BY a DESC
----
(empty)

query R nosort
SELECT c FROM t WHERE a > 10
----
0.063

query I nosort label-1
SELECT a FROM t ORDER BY a
----
5 values hashing to 0

query I nosort label-1
SELECT 1
----

halt

statement ok
THIS IS NOT SQL EITHER
`
	path := filepath.Join(t.TempDir(), "runner.test")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// The failures the script provokes are collected, not reported.
	ref := &sltEngine{name: "sqlite", db: openReference(t).db, f: newSLTFormatter(t)}
	counts, messages := runSLTCollect(t, path, ref)
	c := counts[0]
	// Records: 3 statements + 6 queries run, 2 skipped, halt stops the rest.
	if c.records != 9 || c.statements != 3 || c.queries != 6 || c.skipped != 2 {
		t.Errorf("counts: %s", c)
	}
	// 0.0625 prints as 0.063: SQLite's printf rounds half away from zero
	// where Go's %.3f would give 0.062 (so the runner asks SQLite).
	// Wrong on purpose: the nosort T query (only the first value listed),
	// the hashed count (3 values, not 5, and a made-up hash) and label-1,
	// whose second query gives other results than its first.
	if c.failed != 3 || c.passed != 6 {
		t.Errorf("counts: %s\n%s", c, strings.Join(messages, "\n"))
	}
	for _, want := range []string{"runner.test:40", "runner.test:50", "runner.test:55"} {
		if !strings.Contains(strings.Join(messages, "\n"), want+" ") {
			t.Errorf("no failure reported at %s:\n%s", want, strings.Join(messages, "\n"))
		}
	}
}

// TestSLTHash checks the MD5 of the reference runner on known values.
func TestSLTHash(t *testing.T) {
	// md5 of "1\n2\n3\n", as `printf '1\n2\n3\n' | md5sum` prints it.
	if got := hashValues([]string{"1", "2", "3"}); got != "c0710d6b4f15dfa88f600b0e6b624077" {
		t.Errorf("hash = %s", got)
	}
}
