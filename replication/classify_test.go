package replication

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/ncruces/go-sqlite3"
)

// classifyCase is one statement of the classification table.
type classifyCase struct {
	sql  string
	want Class
	// refused is a part of the reason a refused statement gets, naming the statement or
	// the pragma; empty when the statement is accepted.
	refused string
	// byReadOnly: only sqlite3_stmt_readonly tells, so ClassifySQL says Write.
	byReadOnly bool
	// textOnly: SQLite cannot prepare it; only ClassifySQL is checked.
	textOnly bool
}

var (
	classRead  = Class{Kind: Read}
	classWrite = Class{Kind: Write}
)

func pragmaClass(k Kind, name string) Class { return Class{Kind: k, Pragma: name} }

var classifyCases = []classifyCase{
	// Reads, decided by sqlite3_stmt_readonly.
	{sql: "SELECT * FROM t", want: classRead, byReadOnly: true},
	{sql: "select a from t where b = ?", want: classRead, byReadOnly: true},
	{sql: "WITH x AS (SELECT 1) SELECT * FROM x", want: classRead, byReadOnly: true},
	{sql: "VALUES (1), (2)", want: classRead, byReadOnly: true},
	{sql: "  -- leading comment\n  SELECT 1", want: classRead, byReadOnly: true},
	{sql: "/* BEGIN */ select 'COMMIT' -- END", want: classRead, byReadOnly: true},
	{sql: ";; SELECT 1", want: classRead, byReadOnly: true},
	{sql: "SELECT 1; ATTACH 'x.db' AS x", want: classRead, byReadOnly: true},
	{sql: "SELECT * FROM temp.sqlite_master", want: classRead, byReadOnly: true},
	{sql: "SELECT * FROM pragma_table_info('t')", want: classRead, byReadOnly: true},
	{sql: "SELECT 'load_extension(x)', a AS load_extension FROM load_extension", want: classRead, byReadOnly: true},
	{sql: "SELECT 1\x00; ATTACH 'x.db' AS x", want: classRead, byReadOnly: true},
	{sql: "SELECT 'hiqlite_notify(x)', a AS hiqlite_notify FROM t", want: classRead, byReadOnly: true},

	// A call to hiqlite_notify is a write: only the writer raises it.
	{sql: "SELECT hiqlite_notify('ch', 'payload')", want: classWrite, textOnly: true},
	{sql: "select x from t where HIQLITE_NOTIFY ('ch', b) is null", want: classWrite, textOnly: true},

	// EXPLAIN of anything is a read.
	{sql: "EXPLAIN INSERT INTO t(b) VALUES (1)", want: classRead},
	{sql: "EXPLAIN QUERY PLAN SELECT * FROM t", want: classRead},
	{sql: "explain query plan with x as (select 1) insert into t(b) select * from x", want: classRead},
	{sql: "EXPLAIN BEGIN", want: classRead},
	{sql: "EXPLAIN ATTACH 'x.db' AS x", want: classRead},
	{sql: "EXPLAIN PRAGMA busy_timeout = 5", want: classRead},
	{sql: "explain select load_extension('x')", want: classRead},

	// Writes.
	{sql: "INSERT INTO t(b) VALUES ('x')", want: classWrite},
	{sql: "insert into t(b) values ('x') returning a", want: classWrite},
	{sql: "UPDATE t SET b = 'y' WHERE a = 1", want: classWrite},
	{sql: "DELETE FROM t", want: classWrite},
	{sql: "REPLACE INTO t(a, b) VALUES (1, 'z')", want: classWrite},
	{sql: "INSERT INTO t(a, b) VALUES (1, 'x') ON CONFLICT(a) DO UPDATE SET b = excluded.b", want: classWrite},
	{sql: "WITH x(v) AS (VALUES ('y')) INSERT INTO t(b) SELECT v FROM x", want: classWrite},
	{sql: "with x as (select 1) delete from t where a in x", want: classWrite},
	{sql: "  \n\t INSERT INTO t(b) VALUES (1) -- trailing", want: classWrite},
	{sql: "CREATE TABLE v(a DEFAULT CURRENT_TIMESTAMP)", want: classWrite},
	{sql: "CREATE TABLE IF NOT EXISTS t(a)", want: classWrite},
	{sql: "CREATE TABLE main.v(a)", want: classWrite},
	{sql: "CREATE UNIQUE INDEX IF NOT EXISTS main.tb ON t(b)", want: classWrite},
	{sql: "CREATE VIEW tv AS SELECT * FROM t", want: classWrite},
	{sql: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u(x) VALUES (new.a); UPDATE u SET x = CASE WHEN x THEN 1 END; END; SELECT load_extension('x')", want: classWrite},
	{sql: "CREATE VIRTUAL TABLE vt USING fts9(a)", want: classWrite},
	{sql: "CREATE TABLE IF NOT EXISTS load_extension(a)", want: classWrite},
	{sql: "INSERT INTO load_extension(a) VALUES (1)", want: classWrite},
	{sql: "DROP TABLE u", want: classWrite},
	{sql: "DROP TABLE IF EXISTS nope", want: classWrite},
	{sql: "DROP INDEX ux", want: classWrite},
	{sql: "ALTER TABLE t ADD COLUMN c", want: classWrite},
	{sql: "ALTER TABLE t RENAME TO t2", want: classWrite},
	{sql: "ANALYZE", want: classWrite},
	{sql: "analyze t", want: classWrite},
	{sql: "REINDEX", want: classWrite}, // sqlite3_stmt_readonly is true
	{sql: "REINDEX t", want: classWrite},
	{sql: "VACUUM", want: classWrite},
	{sql: "VACUUM main", want: classWrite},

	// Transaction control.
	{sql: "BEGIN", want: Class{Kind: Begin}},
	{sql: "begin transaction", want: Class{Kind: Begin}},
	{sql: "BEGIN DEFERRED", want: Class{Kind: Begin, BeginMode: "deferred"}},
	{sql: "/* x */ begin immediate", want: Class{Kind: Begin, BeginMode: "immediate"}},
	{sql: "Begin Exclusive Transaction", want: Class{Kind: Begin, BeginMode: "exclusive"}},
	{sql: "BEGIN IMMEDIATE TRANSACTION tx1", want: Class{Kind: Begin, BeginMode: "immediate"}},
	{sql: "BEGIN; INSERT INTO t(b) VALUES (1); COMMIT", want: Class{Kind: Begin}},
	{sql: "COMMIT", want: Class{Kind: Commit}},
	{sql: "  -- c\n commit", want: Class{Kind: Commit}},
	{sql: "COMMIT TRANSACTION", want: Class{Kind: Commit}},
	{sql: "END", want: Class{Kind: Commit}},
	{sql: "end transaction;", want: Class{Kind: Commit}},
	{sql: "COMMIT /* unterminated", want: Class{Kind: Commit}},
	{sql: "ROLLBACK", want: Class{Kind: Rollback}},
	{sql: "rollback transaction", want: Class{Kind: Rollback}},
	{sql: "ROLLBACK TO a", want: Class{Kind: RollbackTo}},
	{sql: "rollback transaction to savepoint a", want: Class{Kind: RollbackTo}},
	{sql: "ROLLBACK TRANSACTION tx1 TO SAVEPOINT a", want: Class{Kind: RollbackTo}},
	{sql: `ROLLBACK TO "to"`, want: Class{Kind: RollbackTo}},
	{sql: "SAVEPOINT a", want: Class{Kind: Savepoint}},
	{sql: `savepoint "my point"`, want: Class{Kind: Savepoint}},
	{sql: "RELEASE a", want: Class{Kind: Release}},
	{sql: "release savepoint a", want: Class{Kind: Release}},
	{sql: "SAVEPOINT hiqlite_cmd", want: Class{Kind: Savepoint}},
	{sql: "SAVEPOINT _hiqlit", want: Class{Kind: Savepoint}},

	// PRAGMA queries.
	{sql: "PRAGMA journal_mode", want: pragmaClass(Read, "journal_mode")}, // not read-only to SQLite
	{sql: "PRAGMA main.journal_mode;", want: pragmaClass(Read, "journal_mode")},
	{sql: "pragma table_info(t)", want: pragmaClass(Read, "table_info")},
	{sql: "PRAGMA table_info = t", want: pragmaClass(Read, "table_info")},
	{sql: "PRAGMA main.table_xinfo('t')", want: pragmaClass(Read, "table_xinfo")},
	{sql: "PRAGMA index_list('t')", want: pragmaClass(Read, "index_list")},
	{sql: "PRAGMA index_info(ux)", want: pragmaClass(Read, "index_info")},
	{sql: "PRAGMA index_xinfo(ux)", want: pragmaClass(Read, "index_xinfo")},
	{sql: "PRAGMA foreign_key_list(u)", want: pragmaClass(Read, "foreign_key_list")},
	{sql: "PRAGMA foreign_key_check", want: pragmaClass(Read, "foreign_key_check")},
	{sql: "PRAGMA foreign_key_check(u)", want: pragmaClass(Read, "foreign_key_check")},
	{sql: "PRAGMA integrity_check", want: pragmaClass(Read, "integrity_check")},
	{sql: "PRAGMA integrity_check(10)", want: pragmaClass(Read, "integrity_check")},
	{sql: "PRAGMA quick_check", want: pragmaClass(Read, "quick_check")},
	{sql: "PRAGMA table_list", want: pragmaClass(Read, "table_list")},
	{sql: "PRAGMA pragma_list", want: pragmaClass(Read, "pragma_list")},
	{sql: "PRAGMA function_list", want: pragmaClass(Read, "function_list")},
	{sql: "PRAGMA compile_options", want: pragmaClass(Read, "compile_options")},
	{sql: "PRAGMA data_version", want: pragmaClass(Read, "data_version")},
	{sql: "PRAGMA user_version", want: pragmaClass(Read, "user_version")},
	{sql: "PRAGMA foreign_keys", want: pragmaClass(Read, "foreign_keys")},
	{sql: "PRAGMA synchronous", want: pragmaClass(Read, "synchronous")},
	{sql: "PRAGMA wal_autocheckpoint", want: pragmaClass(Read, "wal_autocheckpoint")},
	{sql: "PRAGMA 'page_size'", want: pragmaClass(Read, "page_size")},
	{sql: "PRAGMA [Cache_Size]", want: pragmaClass(Read, "cache_size")},

	// PRAGMA settings of this connection's reads.
	{sql: "PRAGMA busy_timeout = 5000", want: pragmaClass(Local, "busy_timeout")},
	{sql: "pragma busy_timeout(100)", want: pragmaClass(Local, "busy_timeout")},
	{sql: "PRAGMA cache_size = -4000", want: pragmaClass(Local, "cache_size")},
	{sql: "PRAGMA main.cache_size=100", want: pragmaClass(Local, "cache_size")},
	{sql: "PRAGMA temp.cache_size = 10", want: pragmaClass(Local, "cache_size")},
	{sql: "PRAGMA analysis_limit = 400", want: pragmaClass(Local, "analysis_limit")},
	{sql: "PRAGMA automatic_index = off", want: pragmaClass(Local, "automatic_index")},
	{sql: "PRAGMA read_uncommitted = 1", want: pragmaClass(Local, "read_uncommitted")},
	{sql: "PRAGMA shrink_memory", want: pragmaClass(Local, "shrink_memory")},

	// PRAGMA foreign_keys, the session setting.
	{sql: "PRAGMA foreign_keys = ON", want: Class{Kind: Session, Pragma: "foreign_keys", On: true}},
	{sql: "pragma foreign_keys=off", want: Class{Kind: Session, Pragma: "foreign_keys"}},
	{sql: "PRAGMA foreign_keys = 1", want: Class{Kind: Session, Pragma: "foreign_keys", On: true}},
	{sql: "PRAGMA foreign_keys=0", want: Class{Kind: Session, Pragma: "foreign_keys"}},
	{sql: "PRAGMA foreign_keys = 'yes'", want: Class{Kind: Session, Pragma: "foreign_keys", On: true}},
	{sql: "PRAGMA foreign_keys(false)", want: Class{Kind: Session, Pragma: "foreign_keys"}},
	{sql: `PRAGMA main."foreign_keys" = TRUE`, want: Class{Kind: Session, Pragma: "foreign_keys", On: true}},
	{sql: "PRAGMA FOREIGN_KEYS = no", want: Class{Kind: Session, Pragma: "foreign_keys"}},
	{sql: "PRAGMA foreign_keys = +1", want: Class{Kind: Session, Pragma: "foreign_keys", On: true}},
	{sql: "PRAGMA foreign_keys = 2", refused: `PRAGMA foreign_keys needs ON or OFF (or TRUE/FALSE, YES/NO, 1/0), not "2"`},
	{sql: "PRAGMA foreign_keys = banana", refused: `PRAGMA foreign_keys needs ON or OFF`},
	{sql: "PRAGMA foreign_keys = -1", refused: `PRAGMA foreign_keys needs ON or OFF`},

	// PRAGMAs that change the database file.
	{sql: "PRAGMA user_version = 3", want: pragmaClass(Write, "user_version")},
	{sql: "PRAGMA main.user_version = 3", want: pragmaClass(Write, "user_version")},
	{sql: "PRAGMA application_id = 42", want: pragmaClass(Write, "application_id")},
	{sql: "PRAGMA optimize", want: pragmaClass(Write, "optimize")}, // sqlite3_stmt_readonly is true
	{sql: "PRAGMA optimize(0x10002)", want: pragmaClass(Write, "optimize")},
	{sql: "PRAGMA incremental_vacuum", want: pragmaClass(Write, "incremental_vacuum")},
	{sql: "PRAGMA incremental_vacuum(10)", want: pragmaClass(Write, "incremental_vacuum")},

	// Refused PRAGMAs. The values are harmless to the test connection, since SQLite
	// applies most of them when it prepares the statement.
	{sql: "PRAGMA journal_mode = DELETE", refused: "PRAGMA journal_mode cannot be changed: the state machine owns the journal"},
	{sql: "PRAGMA journal_mode = memory", refused: "PRAGMA journal_mode cannot be changed"},
	{sql: "PRAGMA journal_mode(wal)", want: pragmaClass(Local, "journal_mode")},
	{sql: "pragma main.Journal_Mode = 'wal'", want: pragmaClass(Local, "journal_mode")},
	{sql: "PRAGMA synchronous = FULL", want: pragmaClass(Local, "synchronous")},
	{sql: "PRAGMA fullfsync = 1", refused: "PRAGMA fullfsync cannot be changed: the state machine owns durability"},
	{sql: "PRAGMA locking_mode = NORMAL", refused: "PRAGMA locking_mode cannot be changed"},
	{sql: "PRAGMA wal_checkpoint", refused: "PRAGMA wal_checkpoint is not allowed"},
	{sql: "PRAGMA wal_checkpoint(TRUNCATE)", refused: "PRAGMA wal_checkpoint is not allowed"},
	{sql: "PRAGMA main.wal_checkpoint", refused: "PRAGMA wal_checkpoint is not allowed"},
	{sql: "PRAGMA wal_autocheckpoint = 1000", refused: "PRAGMA wal_autocheckpoint cannot be changed"},
	{sql: "PRAGMA journal_size_limit = -1", refused: "PRAGMA journal_size_limit cannot be changed"},
	{sql: "PRAGMA query_only = 0", refused: "PRAGMA query_only cannot be changed"},
	{sql: "PRAGMA writable_schema = 0", refused: "PRAGMA writable_schema cannot be changed"},
	{sql: "PRAGMA schema_version = 5", refused: "PRAGMA schema_version cannot be changed"},
	{sql: "PRAGMA mmap_size = 0", want: pragmaClass(Local, "mmap_size")},
	{sql: "PRAGMA temp_store = DEFAULT", want: pragmaClass(Local, "temp_store")},
	{sql: "PRAGMA temp_store_directory = ''", refused: "PRAGMA temp_store_directory cannot be changed"},
	{sql: "PRAGMA data_store_directory = ''", refused: "PRAGMA data_store_directory cannot be changed"},
	{sql: "PRAGMA auto_vacuum = NONE", refused: "PRAGMA auto_vacuum cannot be changed"},
	{sql: "PRAGMA page_size = 4096", refused: "PRAGMA page_size cannot be changed"},
	{sql: "PRAGMA secure_delete = FAST", refused: "PRAGMA secure_delete cannot be changed"},
	{sql: "PRAGMA max_page_count = 1000000", refused: "PRAGMA max_page_count cannot be changed"},
	{sql: "PRAGMA encoding = 'UTF-8'", refused: "PRAGMA encoding cannot be changed"},
	{sql: "PRAGMA recursive_triggers = 1", refused: "PRAGMA recursive_triggers cannot be changed"},
	{sql: "PRAGMA case_sensitive_like = 0", refused: "PRAGMA case_sensitive_like cannot be changed"},
	{sql: "PRAGMA ignore_check_constraints = 0", refused: "PRAGMA ignore_check_constraints cannot be changed"},
	{sql: "PRAGMA legacy_alter_table = 0", refused: "PRAGMA legacy_alter_table cannot be changed"},
	{sql: "PRAGMA reverse_unordered_selects = 0", refused: "PRAGMA reverse_unordered_selects cannot be changed"},
	{sql: "PRAGMA defer_foreign_keys = 1", refused: "PRAGMA defer_foreign_keys cannot be changed"},
	{sql: "PRAGMA cell_size_check = 0", refused: "PRAGMA cell_size_check cannot be changed"},
	{sql: "PRAGMA trusted_schema = 1", refused: "PRAGMA trusted_schema cannot be changed"},
	{sql: "PRAGMA hard_heap_limit = 0", refused: "PRAGMA hard_heap_limit cannot be changed: it is a process-wide setting"},
	{sql: "PRAGMA soft_heap_limit = 0", refused: "PRAGMA soft_heap_limit cannot be changed"},
	{sql: "PRAGMA threads = 0", refused: "PRAGMA threads cannot be changed"},
	{sql: "PRAGMA cache_spill = 1", refused: "PRAGMA cache_spill cannot be changed"},
	{sql: "PRAGMA fullfsync = 0", refused: "PRAGMA fullfsync cannot be changed"},
	{sql: "PRAGMA checkpoint_fullfsync = 0", refused: "PRAGMA checkpoint_fullfsync cannot be changed"},
	{sql: "PRAGMA checksum_verification = 1", refused: "PRAGMA checksum_verification cannot be changed"},
	{sql: "PRAGMA count_changes = 0", refused: "PRAGMA count_changes cannot be changed"},
	{sql: "PRAGMA empty_result_callbacks = 0", refused: "PRAGMA empty_result_callbacks cannot be changed"},
	{sql: "PRAGMA full_column_names = 0", refused: "PRAGMA full_column_names cannot be changed"},
	{sql: "PRAGMA short_column_names = 1", refused: "PRAGMA short_column_names cannot be changed"},
	{sql: "PRAGMA key = 'secret'", refused: "PRAGMA key is not allowed: encryption keys"},
	{sql: "PRAGMA key", refused: "PRAGMA key is not allowed"},
	{sql: "PRAGMA rekey = 'secret'", refused: "PRAGMA rekey is not allowed"},
	{sql: "PRAGMA hexkey = '00'", refused: "PRAGMA hexkey is not allowed"},
	{sql: "PRAGMA hexrekey = '00'", refused: "PRAGMA hexrekey is not allowed"},
	{sql: "PRAGMA textkey = 'secret'", refused: "PRAGMA textkey is not allowed"},
	{sql: "PRAGMA textrekey = 'secret'", refused: "PRAGMA textrekey is not allowed"},
	{sql: "PRAGMA foo", refused: "PRAGMA foo is not supported by hiqlite"},
	{sql: "PRAGMA foreign_key = on", refused: "PRAGMA foreign_key is not supported by hiqlite"},
	{sql: "PRAGMA temp.user_version = 1", refused: "PRAGMA temp.user_version is not supported"},
	{sql: "EXPLAIN PRAGMA journal_mode = DELETE", refused: "PRAGMA journal_mode cannot be changed"},
	{sql: "explain query plan pragma case_sensitive_like = 0", refused: "PRAGMA case_sensitive_like cannot be changed"},

	// Other refusals.
	{sql: "SAVEPOINT _hiqlite_cmd", refused: "savepoint names starting with _hiqlite are reserved"},
	{sql: `savepoint "_HIQLITE_x"`, refused: "savepoint names starting with _hiqlite are reserved"},
	{sql: "RELEASE _hiqlite_cmd", refused: "savepoint names starting with _hiqlite are reserved"},
	{sql: "release savepoint [_hiqlite_cmd]", refused: "savepoint names starting with _hiqlite are reserved"},
	{sql: "ROLLBACK TO _hiqlite_cmd", refused: "savepoint names starting with _hiqlite are reserved"},
	{sql: "ROLLBACK TRANSACTION t TO SAVEPOINT '_hiqlite_cmd'", refused: "savepoint names starting with _hiqlite are reserved"},
	{sql: "ATTACH DATABASE 'other.db' AS other", refused: "ATTACH is not supported"},
	{sql: "attach ':memory:' as m", refused: "ATTACH is not supported"},
	{sql: "DETACH other", refused: "DETACH is not supported"},
	{sql: "/* c */ detach database other", refused: "DETACH is not supported"},
	{sql: "VACUUM INTO 'copy.db'", refused: "VACUUM INTO is not supported"},
	{sql: "VACUUM main INTO 'copy.db'", refused: "VACUUM INTO is not supported"},
	{sql: `vacuum "main" into 'copy.db'`, refused: "VACUUM INTO is not supported"},
	{sql: "CREATE TEMP TABLE tt(a)", refused: "CREATE TEMP TABLE is not supported"},
	{sql: "create temporary table tt(a)", refused: "CREATE TEMPORARY TABLE is not supported"},
	{sql: "CREATE TEMP TABLE tt AS SELECT * FROM t", refused: "CREATE TEMP TABLE is not supported"},
	{sql: "CREATE TEMP VIEW tv AS SELECT 1", refused: "CREATE TEMP VIEW is not supported"},
	{sql: "CREATE TEMPORARY TRIGGER ttr AFTER INSERT ON t BEGIN SELECT 1; END", refused: "CREATE TEMPORARY TRIGGER is not supported"},
	{sql: "CREATE TABLE temp.tt(a)", refused: "CREATE TABLE temp.tt is not supported"},
	{sql: `CREATE TABLE IF NOT EXISTS "TEMP".tt(a)`, refused: "CREATE TABLE temp.tt is not supported"},
	{sql: "create view [temp].tv as select 1", refused: "CREATE VIEW temp.tv is not supported"},
	{sql: "CREATE TRIGGER temp.ttr AFTER INSERT ON t BEGIN SELECT 1; END", refused: "CREATE TRIGGER temp.ttr is not supported"},
	{sql: "CREATE VIRTUAL TABLE temp.vt USING fts9(a)", refused: "CREATE VIRTUAL TABLE temp.vt is not supported"},
	{sql: "CREATE INDEX temp.ix ON t(b)", refused: "CREATE INDEX temp.ix is not supported", textOnly: true},
	{sql: "SELECT load_extension('ext.so')", refused: "load_extension cannot be called"},
	{sql: "select LOAD_EXTENSION('ext.so', 'entry')", refused: "load_extension cannot be called"},
	{sql: `SELECT "load_extension"('x')`, refused: "load_extension cannot be called"},
	{sql: "INSERT INTO t(b) SELECT load_extension('x')", refused: "load_extension cannot be called"},
	{sql: "WITH x AS (SELECT load_extension /* c */ ('x')) SELECT * FROM x", refused: "load_extension cannot be called"},
	{sql: "select 1 from t join u on load_extension('x')", refused: "load_extension cannot be called"},
	{sql: "CREATE VIEW lv AS SELECT load_extension('x')", refused: "load_extension cannot be called"},
	{sql: "CREATE TRIGGER tl AFTER INSERT ON t BEGIN SELECT 1; SELECT load_extension('x'); END", refused: "load_extension cannot be called"},

	// Text that SQLite does not prepare.
	{sql: "", want: classWrite, textOnly: true},
	{sql: " -- only a comment", want: classWrite, textOnly: true},
	{sql: ";", want: classWrite, textOnly: true},
	{sql: "\x00ATTACH 'x.db' AS x", want: classWrite, textOnly: true},
	{sql: "PRAGMA", refused: "PRAGMA without a name", textOnly: true},
	{sql: "not sql at all", want: classWrite, textOnly: true},
	{sql: "SELECT 'unterminated", want: classWrite, textOnly: true},
}

// classifySchema is the schema the table's statements are prepared against.
const classifySchema = `
	PRAGMA journal_mode = wal;
	CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT UNIQUE);
	CREATE TABLE u(x, y REFERENCES t(a));
	CREATE INDEX ux ON u(x);
	CREATE TABLE load_extension(a);`

// openClassifyConn opens a connection to the database at path, creating the schema when
// create is set.
func openClassifyConn(t testing.TB, path string, create bool) *sqlite3.Conn {
	t.Helper()
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if create {
		if err := c.Exec(classifySchema); err != nil {
			t.Fatal(err)
		}
	}
	// The build has no load_extension (SQLITE_OMIT_LOAD_EXTENSION); an application
	// function of that name is what the refusal keeps off the writer.
	err = c.CreateFunction("load_extension", -1, 0, func(ctx sqlite3.Context, arg ...sqlite3.Value) {})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClassify(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "classify.db")
	openClassifyConn(t, path, true)

	for _, tc := range classifyCases {
		t.Run(fmt.Sprintf("%q", tc.sql), func(t *testing.T) {
			t.Parallel()
			sqlWant := tc.want
			if tc.byReadOnly {
				sqlWant = classWrite
			}
			got, err := ClassifySQL(tc.sql)
			checkClass(t, "ClassifySQL", tc, got, err, sqlWant)

			// Each subtest prepares on its own connection: SQLite applies most pragma
			// settings at prepare time.
			c := openClassifyConn(t, path, false)
			stmt, _, err := c.Prepare(tc.sql)
			if tc.textOnly {
				if err == nil && stmt != nil {
					t.Fatalf("prepared, want a prepare error for a text-only case")
				}
				return
			}
			if err != nil || stmt == nil {
				t.Fatalf("Prepare: %v (stmt %v)", err, stmt)
			}
			defer stmt.Close()
			got, err = Classify(stmt)
			checkClass(t, "Classify", tc, got, err, tc.want)
		})
	}
}

func checkClass(t *testing.T, fn string, tc classifyCase, got Class, err error, want Class) {
	t.Helper()
	if tc.refused == "" {
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		if got != want {
			t.Fatalf("%s = %+v, want %+v", fn, got, want)
		}
		return
	}
	if !errors.Is(err, nodeerr.ErrRefused) {
		t.Fatalf("%s = %+v, %v; want a refusal", fn, got, err)
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("%s: %T is not a *RefusedError", fn, err)
	}
	if got != (Class{}) {
		t.Errorf("%s: refused with class %+v, want the zero Class", fn, got)
	}
	if !strings.Contains(re.Reason, tc.refused) {
		t.Errorf("%s reason %q, want it to contain %q", fn, re.Reason, tc.refused)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, `hiqlite: refused "`) || !strings.Contains(msg, tc.refused) {
		t.Errorf("%s message %q, want it to name %q", fn, msg, tc.refused)
	}
	if re.SQL == "" || !strings.Contains(tc.sql, re.SQL) {
		t.Errorf("%s: RefusedError.SQL %q is not the statement of %q", fn, re.SQL, tc.sql)
	}
}

// TestPragmaTable checks that the table decides every pragma SQLite knows, and that a
// reason goes with every refusal and only with a refusal.
func TestPragmaTable(t *testing.T) {
	t.Parallel()
	c := openClassifyConn(t, ":memory:", false)
	stmt, _, err := c.Prepare("SELECT name FROM pragma_pragma_list")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	n := 0
	for stmt.Step() {
		n++
		if name := stmt.ColumnText(0); !hasPragma(name) {
			t.Errorf("PRAGMA %s is missing from the pragma table", name)
		}
	}
	if err := stmt.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 60 {
		t.Fatalf("pragma_list has %d pragmas, want the full list", n)
	}
	for name, r := range pragmas {
		_, only := pragmaOnly[name]
		if refused := r.get == kindRefused || r.set == kindRefused || only; refused != (r.why != "") {
			t.Errorf("PRAGMA %s: %+v: want a reason exactly for a refusal", name, r)
		}
		if r.get == kindRefused && r.set != kindRefused {
			t.Errorf("PRAGMA %s: query refused but setting allowed", name)
		}
		if name != lowerASCII(name) {
			t.Errorf("PRAGMA %s: names in the table are lower case", name)
		}
	}
}

func hasPragma(name string) bool {
	_, ok := pragmas[name]
	return ok
}

func TestRefusedError(t *testing.T) {
	t.Parallel()
	long := "INSERT INTO t(b)\n\tVALUES " + strings.Repeat("('é'), ", 40) + "('x')"
	err := fmt.Errorf("exec: %w", &RefusedError{SQL: long, Reason: "because"})
	if !errors.Is(err, nodeerr.ErrRefused) {
		t.Fatal("errors.Is(wrapped, ErrRefused) = false")
	}
	var re *RefusedError
	if !errors.As(err, &re) || re.SQL != long {
		t.Fatalf("errors.As: %+v", re)
	}
	msg := re.Error()
	quoted := strings.TrimSuffix(strings.TrimPrefix(msg, `hiqlite: refused "`), `": because`)
	if quoted == msg || strings.ContainsAny(quoted, "\n\t") || !strings.HasPrefix(quoted, "INSERT INTO t(b) VALUES ('é')") || !strings.HasSuffix(quoted, "...") {
		t.Fatalf("message %q", msg)
	}
	if s := shorten(long, 80); len(s) > 80 || !strings.HasSuffix(s, "...") || !strings.HasPrefix(s, "INSERT") {
		t.Fatalf("shorten = %q (%d bytes)", s, len(s))
	}
	for n := 10; n < 40; n++ {
		if s := shorten(strings.Repeat("é", 30), n); len(s) > n || strings.ContainsRune(s, '\uFFFD') {
			t.Fatalf("shorten(%d) = %q cuts a rune", n, s)
		}
	}
	if got := (&RefusedError{SQL: "ATTACH 'x' AS y", Reason: "r"}).Error(); got != `hiqlite: refused "ATTACH 'x' AS y": r` {
		t.Fatalf("Error() = %q", got)
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	want := map[Kind]string{
		Read: "read", Write: "write", Begin: "begin", Commit: "commit", Rollback: "rollback",
		Savepoint: "savepoint", Release: "release", RollbackTo: "rollback to", Local: "local",
		Session: "session", Session + 1: "Kind(10)",
	}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), k.String(), s)
		}
	}
}

// FuzzClassifySQL checks that ClassifySQL never panics and returns well-formed results,
// and, for text SQLite prepares, that Classify agrees with it and with SQLite: what
// keywords decide as transaction control or a connection setting, SQLite reports
// read-only too. Refused text is never prepared, as the driver must not prepare it.
func FuzzClassifySQL(f *testing.F) {
	for _, tc := range classifyCases {
		f.Add(tc.sql)
	}
	var mu sync.Mutex // the connection is not safe for concurrent use
	c := openClassifyConn(f, filepath.Join(f.TempDir(), "fuzz.db"), true)

	f.Fuzz(func(t *testing.T, sql string) {
		cls, err := ClassifySQL(sql)
		if err != nil {
			var re *RefusedError
			if !errors.Is(err, nodeerr.ErrRefused) || !errors.As(err, &re) || re.Reason == "" || err.Error() == "" {
				t.Fatalf("ClassifySQL(%q): bad refusal %#v", sql, err)
			}
			if cls != (Class{}) {
				t.Fatalf("ClassifySQL(%q): refused with class %+v", sql, cls)
			}
			return
		}
		checkWellFormed(t, sql, cls)

		mu.Lock()
		defer mu.Unlock()
		stmt, _, err := c.Prepare(sql)
		if err != nil || stmt == nil {
			return
		}
		defer stmt.Close()
		got, err := Classify(stmt)
		if err != nil {
			t.Fatalf("Classify(%q) refused what ClassifySQL accepted: %v", sql, err)
		}
		if got != cls && (cls.Kind != Write || got.Kind != Read) {
			t.Fatalf("Classify(%q) = %+v, ClassifySQL = %+v", sql, got, cls)
		}
		switch got.Kind {
		case Begin, Commit, Rollback, Savepoint, Release, RollbackTo, Local, Session:
			// BEGIN IMMEDIATE and EXCLUSIVE take the write lock: SQLite says they write.
			// journal_mode = wal asks for what the database already is.
			if !stmt.ReadOnly() && (got.Kind != Begin || got.BeginMode == "deferred" || got.BeginMode == "") && got.Pragma != "journal_mode" {
				t.Fatalf("Classify(%q) = %v, but SQLite says it writes", sql, got.Kind)
			}
		}
	})
}

func checkWellFormed(t *testing.T, sql string, c Class) {
	t.Helper()
	if c.Kind > Session {
		t.Fatalf("ClassifySQL(%q): kind %v", sql, c.Kind)
	}
	if c.Kind != Begin && c.BeginMode != "" {
		t.Fatalf("ClassifySQL(%q) = %+v: BeginMode goes with Begin only", sql, c)
	}
	switch c.BeginMode {
	case "", "deferred", "immediate", "exclusive":
	default:
		t.Fatalf("ClassifySQL(%q): BeginMode %q", sql, c.BeginMode)
	}
	if c.On && c.Kind != Session {
		t.Fatalf("ClassifySQL(%q) = %+v: On goes with Session only", sql, c)
	}
	if (c.Kind == Local || c.Kind == Session) && c.Pragma == "" {
		t.Fatalf("ClassifySQL(%q) = %+v: no pragma name", sql, c)
	}
}
