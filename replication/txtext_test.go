package replication

import (
	"errors"
	"testing"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

func TestTransactionBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sql, body string
		ok        bool
		refused   bool
	}{
		{sql: "INSERT INTO t VALUES(1)"},
		{sql: "BEGIN"},
		{sql: "BEGIN;"},
		{sql: "BEGIN; -- nothing\n"},
		{sql: "BEGIN; COMMIT;", ok: true, body: "; "},
		{sql: "BEGIN; CREATE TABLE t(x); INSERT INTO t VALUES(1); COMMIT;", ok: true, body: "; CREATE TABLE t(x); INSERT INTO t VALUES(1); "},
		{sql: "begin immediate transaction; INSERT INTO t VALUES(';COMMIT'); end transaction", ok: true, body: "; INSERT INTO t VALUES(';COMMIT'); "},
		{sql: "BEGIN EXCLUSIVE;CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END;COMMIT", ok: true, body: ";CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END;"},
		{sql: "BEGIN; INSERT INTO t VALUES(1); /* COMMIT; */", refused: true},
		{sql: "BEGIN; INSERT INTO t VALUES(1)", refused: true},
		{sql: "BEGIN; INSERT INTO t VALUES(1); ROLLBACK", refused: true},
		{sql: "BEGIN; INSERT INTO t VALUES(1); COMMIT; BEGIN; COMMIT", refused: true},
		{sql: "BEGIN; BEGIN; COMMIT", refused: true},
		{sql: "BEGIN; ROLLBACK; INSERT INTO t VALUES(1); COMMIT", refused: true},
	} {
		body, ok, err := TransactionBody(tc.sql)
		if tc.refused != errors.Is(err, nodeerr.ErrRefused) || (err != nil && !tc.refused) {
			t.Errorf("%q: err = %v, want refused %v", tc.sql, err, tc.refused)
		}
		if ok != tc.ok || body != tc.body {
			t.Errorf("%q: body %q, %v; want %q, %v", tc.sql, body, ok, tc.body, tc.ok)
		}
	}
}
