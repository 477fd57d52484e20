package replication

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// TestTextMatchesClassify checks that what the driver carries from its one reading of a
// text says what ClassifySQL and Classify say of it.
func TestTextMatchesClassify(t *testing.T) {
	t.Parallel()
	c := openClassifyConn(t, filepath.Join(t.TempDir(), "text.db"), true)
	for _, tc := range classifyCases {
		t.Run(fmt.Sprintf("%q", tc.sql), func(t *testing.T) {
			for name, read := range map[string]func(string) (Text, error){"ReadText": ReadText, "ClassifyText": ClassifyText} {
				sql := tc.sql
				if body, ok, _ := TransactionBody(sql); ok && name == "ReadText" {
					sql = body // ReadText classifies what runs
				}
				want, wantErr := ClassifySQL(sql)
				txt, err := read(tc.sql)
				if !sameError(err, wantErr) || err == nil && txt.Class() != want {
					t.Fatalf("%s = %+v, %v; ClassifySQL of %q says %+v, %v", name, txt.Class(), err, sql, want, wantErr)
				}
				if err == nil && txt.SQL != sql {
					t.Errorf("%s: SQL %q, want %q", name, txt.SQL, sql)
				}
				if err != nil || tc.textOnly || sql != tc.sql {
					continue
				}
				stmt, _, err := c.Prepare(sql)
				if err != nil || stmt == nil {
					t.Fatalf("Prepare: %v (stmt %v)", err, stmt)
				}
				got := txt.Prepared(stmt)
				cls, err := Classify(stmt)
				stmt.Close()
				if err != nil || got != cls {
					t.Errorf("%s: Prepared = %+v; Classify says %+v, %v", name, got, cls, err)
				}
			}
		})
	}
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error() && errors.Is(a, nodeerr.ErrRefused) == errors.Is(b, nodeerr.ErrRefused)
}

func TestReadText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql     string
		body    string
		atomic  bool
		class   Class
		keyword bool // WriteByKeyword
		refused bool
	}{
		{sql: "INSERT INTO t VALUES(1)", body: "INSERT INTO t VALUES(1)", class: classWrite, keyword: true},
		{sql: "/* c */ ;; replace into t values(1)", body: "/* c */ ;; replace into t values(1)", class: classWrite, keyword: true},
		{sql: "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", body: "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", class: classWrite},
		{sql: "SELECT 1", body: "SELECT 1", class: classWrite},
		{sql: "VACUUM", body: "VACUUM", class: classWrite, keyword: true},
		{sql: "PRAGMA user_version = 2", body: "PRAGMA user_version = 2", class: pragmaClass(Write, "user_version")},
		{sql: "SELECT hiqlite_notify('c', 'p')", body: "SELECT hiqlite_notify('c', 'p')", class: classWrite},
		{sql: "BEGIN", body: "BEGIN", class: Class{Kind: Begin}},
		{sql: "BEGIN; COMMIT;", body: "; ", atomic: true, class: classWrite},
		{sql: "BEGIN; CREATE TABLE t(x); INSERT INTO t VALUES(1); COMMIT;", body: "; CREATE TABLE t(x); INSERT INTO t VALUES(1); ", atomic: true, class: classWrite, keyword: true},
		{sql: "BEGIN; PRAGMA foreign_keys = on; COMMIT", body: "; PRAGMA foreign_keys = on; ", atomic: true, class: Class{Kind: Session, Pragma: "foreign_keys", On: true}},
		{sql: "BEGIN; ATTACH 'x' AS x; COMMIT", atomic: true, refused: true},
		{sql: "BEGIN; INSERT INTO t VALUES(1)", refused: true},
		{sql: "ATTACH 'x' AS x", refused: true},
	}
	for _, tt := range tests {
		txt, err := ReadText(tt.sql)
		if tt.refused != errors.Is(err, nodeerr.ErrRefused) || err != nil && !tt.refused {
			t.Errorf("ReadText(%q): %v, want refused %v", tt.sql, err, tt.refused)
		}
		if txt.Atomic != tt.atomic {
			t.Errorf("ReadText(%q): atomic %v, want %v", tt.sql, txt.Atomic, tt.atomic)
		}
		if err != nil {
			continue
		}
		if txt.SQL != tt.body || txt.Class() != tt.class || txt.WriteByKeyword() != tt.keyword {
			t.Errorf("ReadText(%q) = %q, %+v, write by keyword %v; want %q, %+v, %v", tt.sql, txt.SQL, txt.Class(), txt.WriteByKeyword(), tt.body, tt.class, tt.keyword)
		}
		if want, _ := ClassifySQL(tt.body); txt.Class() != want {
			t.Errorf("ReadText(%q): class %+v, ClassifySQL of its body says %+v", tt.sql, txt.Class(), want)
		}
	}
}
