package replication

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/sqltext"
)

// Kind says where a prepared statement runs.
type Kind uint8

const (
	// Read runs on a local read connection: sqlite3_stmt_readonly is true and the
	// statement is none of the kinds below, or it is an EXPLAIN, or the query form of a
	// PRAGMA that only reports.
	Read Kind = iota
	// Write is replicated through Raft and runs on the state machine's writer.
	Write
	// Begin is BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE] [TRANSACTION [name]].
	Begin
	// Commit is COMMIT or END [TRANSACTION].
	Commit
	// Rollback is ROLLBACK [TRANSACTION] without TO.
	Rollback
	// Savepoint is SAVEPOINT name.
	Savepoint
	// Release is RELEASE [SAVEPOINT] name.
	Release
	// RollbackTo is ROLLBACK [TRANSACTION] TO [SAVEPOINT] name.
	RollbackTo
	// Local is a PRAGMA that only changes how this connection reads (busy_timeout,
	// cache_size, ...): it runs on the reader and is not replicated.
	Local
	// Session is PRAGMA foreign_keys = value: a per-session setting that every later
	// write of the session carries.
	Session
)

var kindNames = [...]string{
	Read:       "read",
	Write:      "write",
	Begin:      "begin",
	Commit:     "commit",
	Rollback:   "rollback",
	Savepoint:  "savepoint",
	Release:    "release",
	RollbackTo: "rollback to",
	Local:      "local",
	Session:    "session",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Class is the classification of one statement.
type Class struct {
	Kind Kind
	// BeginMode is set for Begin to the mode written: "deferred",
	// "immediate" or "exclusive"; it is "" for a plain BEGIN, whose mode
	// the connection chooses (the _txlock DSN parameter).
	BeginMode string
	// Pragma is the pragma's name in lower case, without its schema, for every PRAGMA
	// statement whatever its Kind (so a Read of "foreign_keys" is the query form of a
	// Session setting); empty for other statements.
	Pragma string
	// On is the value a Session PRAGMA foreign_keys sets.
	On bool
}

// RefusedError is a statement hiqlite will not run, because it would break replication,
// make nodes diverge, or reach state that is not this session's. errors.Is(err,
// ErrRefused) matches it.
type RefusedError struct {
	SQL    string // the refused statement as written (the first statement of the text)
	Reason string // why, naming the statement or the pragma
}

func (e *RefusedError) Error() string {
	return "hiqlite: refused " + strconv.Quote(shorten(e.SQL, 80)) + ": " + e.Reason
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return nodeerr.ErrRefused }

// shorten collapses runs of whitespace to one space and cuts s to at most n bytes, on
// a rune boundary, marking a cut with "...".
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Classify classifies a statement prepared on a read connection or on the writer.
//
// It reads the first statement of stmt.SQL() (ncruces keeps the whole prepared text,
// tail included) by its leading keywords; only a statement the keywords leave open
// (SELECT, VALUES, WITH, ...) is decided by stmt.ReadOnly() (sqlite3_stmt_readonly),
// which is also true for BEGIN, COMMIT, SAVEPOINT, RELEASE, ATTACH, REINDEX and most
// PRAGMAs. The result is always ClassifySQL(stmt.SQL()), except that where ClassifySQL
// says Write, Classify says Read when SQLite reports the statement read-only.
//
// SQLite applies most PRAGMA settings while it prepares the statement, not when it runs
// it (checked on v0.37.0 for busy_timeout, cache_size, foreign_keys, case_sensitive_like,
// locking_mode, query_only, synchronous, mmap_size, temp_store, secure_delete; also under
// EXPLAIN), and a VFS sees its pragmas at prepare time too. So when Classify refuses such
// a pragma, the connection that prepared it has already changed. Callers that must keep a
// shared connection intact call ClassifySQL on the text first: it refuses everything
// Classify refuses and decides every PRAGMA, so only text it reports as Write needs a
// prepare to tell a read from a write.
//
// stmt must not be nil. Classify only reads the statement; it may be called on any
// goroutine that may use stmt's connection.
func Classify(stmt *sqlite3.Stmt) (Class, error) {
	st := parseStatement(stmt.SQL())
	c, decided, err := st.classify()
	if err != nil {
		return Class{}, err
	}
	if !decided {
		c = Class{Kind: Write}
		if stmt.ReadOnly() {
			c.Kind = Read
		}
	}
	return c, nil
}

// ClassifySQL classifies the first statement of sql by its leading keywords only,
// without preparing it: for text that cannot be prepared on a read connection, and as a
// check before a prepare (see Classify). The state machine also uses it as a second line
// of defence before it executes replicated text.
//
// It recognises transaction control, every PRAGMA (by the table in this file), EXPLAIN
// (Read) and the refusals, and returns Write for anything else, including SELECT: without
// a prepare it cannot tell that a statement does not write, and Write means "run it on
// the writer", which is right for every statement. Text without a statement (empty, or
// only comments and semicolons) is Write too.
//
// Only the first statement is read, as SQLite's prepare would (a CREATE TRIGGER body
// included). A caller running a multi-statement text classifies each statement as it
// prepares it, from the tail.
func ClassifySQL(sql string) (Class, error) {
	st := parseStatement(sql)
	c, _, err := st.classifySQL()
	return c, err
}

// classifySQL is ClassifySQL of the statement st; decided is as classify says.
func (st *parsedStmt) classifySQL() (c Class, decided bool, err error) {
	if name := st.renamedTo(); isInternal(name) {
		return Class{}, false, &InternalObjectError{Name: name}
	}
	c, decided, err = st.classify()
	if err != nil {
		return Class{}, false, err
	}
	if !decided {
		c = Class{Kind: Write}
	}
	return c, decided, nil
}

// classify decides st by its leading keywords. decided is false when only
// sqlite3_stmt_readonly can tell a read from a write.
//
// Decisions beyond the transaction control of section 7:
//   - EXPLAIN and EXPLAIN QUERY PLAN of anything are Read: they never run the statement.
//     EXPLAIN PRAGMA is refused where the PRAGMA is, because SQLite applies the setting
//     at prepare time, EXPLAIN or not.
//   - A call to load_extension(...) anywhere in the statement is refused: extensions are
//     registered by the application on every node. The build has no load_extension (it
//     is compiled with SQLITE_OMIT_LOAD_EXTENSION), so only an application function of
//     that name can be called; refusing the call keeps it off the writer anyway. A name
//     after TABLE, VIEW, INTO, EXISTS, REFERENCES, USING, WITH, RECURSIVE or "." is an
//     object, not a call; any other load_extension followed by "(" is taken for a call.
//   - ATTACH and DETACH are refused: a node holds exactly one database, the replicated
//     one, and the writer is shared by every session.
//   - VACUUM INTO is refused (replicated, it would write its file on every node); plain VACUUM is Write.
//   - CREATE TEMP/TEMPORARY ... and CREATE ... temp.name are refused: the single writer
//     is shared by all sessions, so a temp object cannot keep its per-connection meaning.
//   - A statement that calls hiqlite_notify(...) is Write, even a SELECT: the function
//     raises a notification on the writer only (on a read connection it fails).
//   - INSERT, UPDATE, DELETE, REPLACE, CREATE (VIRTUAL TABLE too: its module must be
//     registered on every node's writer and must not read node-local files), DROP, ALTER,
//     ANALYZE, REINDEX and VACUUM are Write by keyword: sqlite3_stmt_readonly is true for
//     REINDEX, and may be true for a DDL statement that a stale local schema makes a
//     no-op (DROP TABLE IF EXISTS), which the leader may still have to run. REINDEX of a
//     collation needs that collation on every node.
func (st *parsedStmt) classify() (c Class, decided bool, err error) {
	t0 := st.tok(0)
	if t0.Is("EXPLAIN") {
		i := 1
		if st.tok(1).Is("QUERY") && st.tok(2).Is("PLAN") {
			i = 3
		}
		if st.tok(i).Is("PRAGMA") {
			if _, err := st.pragma(i); err != nil {
				return Class{}, false, err
			}
		}
		return Class{Kind: Read}, true, nil
	}
	if st.loadExtension {
		return Class{}, false, st.refuse("load_extension cannot be called: extensions are registered on every node by the application, never loaded by SQL")
	}
	if t0.Kind != sqltext.Word {
		return Class{}, false, nil
	}
	switch upperASCII(t0.Text) {
	case "BEGIN":
		c = Class{Kind: Begin}
		if t := st.tok(1); t.Is("DEFERRED") || t.Is("IMMEDIATE") || t.Is("EXCLUSIVE") {
			c.BeginMode = lowerASCII(t.Text)
		}
		return c, true, nil
	case "COMMIT", "END":
		return Class{Kind: Commit}, true, nil
	case "ROLLBACK":
		// ROLLBACK [TRANSACTION [name]] [TO [SAVEPOINT] name]; TO is reserved, so it is
		// never the transaction's name.
		i := 1
		if st.tok(i).Is("TRANSACTION") {
			i++
			if t := st.tok(i); t.Kind != sqltext.EOF && !t.Is("TO") {
				i++
			}
		}
		if st.tok(i).Is("TO") {
			if st.tok(i + 1).Is("SAVEPOINT") {
				i++
			}
			return Class{Kind: RollbackTo}, true, st.checkSavepoint(i + 1)
		}
		return Class{Kind: Rollback}, true, nil
	case "SAVEPOINT":
		return Class{Kind: Savepoint}, true, st.checkSavepoint(1)
	case "RELEASE":
		i := 1
		if st.tok(i).Is("SAVEPOINT") {
			i++
		}
		return Class{Kind: Release}, true, st.checkSavepoint(i)
	case "ATTACH", "DETACH":
		return Class{}, false, st.refuse(upperASCII(t0.Text) + " is not supported: a node holds exactly one database, the replicated one, and its writer is shared by every session")
	case "VACUUM":
		// VACUUM [schema] [INTO file]; INTO is reserved, so it is never the schema.
		if st.tok(1).Is("INTO") || st.tok(2).Is("INTO") {
			return Class{}, false, st.refuse("VACUUM INTO is not supported: every node would write the file it names; use hiqlite backup (Node.Backup, POST /backup)")
		}
		return Class{Kind: Write}, true, nil
	case "CREATE":
		if err := st.checkCreate(); err != nil {
			return Class{}, false, err
		}
		return Class{Kind: Write}, true, nil
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "DROP", "ALTER", "ANALYZE", "REINDEX":
		return Class{Kind: Write}, true, nil
	case "PRAGMA":
		c, err := st.pragma(0)
		if err != nil {
			return Class{}, false, err
		}
		return c, true, nil
	}
	if st.notify {
		// SELECT hiqlite_notify(...) reads nothing but must reach the
		// writer, where the function raises the notification.
		return Class{Kind: Write}, true, nil
	}
	return Class{}, false, nil
}

// checkCreate refuses temporary objects:
// CREATE [TEMP|TEMPORARY] [UNIQUE|VIRTUAL] TABLE|VIEW|TRIGGER|INDEX [IF NOT EXISTS] [schema.]name.
func (st *parsedStmt) checkCreate() error {
	const why = " is not supported: the single writer is shared by all sessions, so temporary objects cannot keep their per-connection meaning"
	if t := st.tok(1); t.Is("TEMP") || t.Is("TEMPORARY") {
		return st.refuse("CREATE " + upperASCII(t.Text) + " " + upperASCII(st.tok(2).Text) + why)
	}
	i, what := 1, "CREATE "
	if t := st.tok(i); t.Is("UNIQUE") || t.Is("VIRTUAL") {
		what += upperASCII(t.Text) + " "
		i++
	}
	object := st.tok(i)
	if !object.Is("TABLE") && !object.Is("VIEW") && !object.Is("TRIGGER") && !object.Is("INDEX") {
		return nil
	}
	what += upperASCII(object.Text)
	i++
	if st.tok(i).Is("IF") && st.tok(i+1).Is("NOT") && st.tok(i+2).Is("EXISTS") {
		i += 3
	}
	if name, ok := st.tok(i).Name(); ok && st.tok(i+1).IsPunct('.') && equalFold(name, "temp") {
		obj, _ := st.tok(i + 2).Name()
		return st.refuse(what + " temp." + obj + why)
	}
	return nil
}

// pragma classifies the PRAGMA whose keyword is token i:
// PRAGMA [schema.]name [= value | (value)], value being [+|-]token.
func (st *parsedStmt) pragma(i int) (Class, error) {
	name, _ := st.tok(i + 1).Name()
	schema := ""
	j := i + 2
	if st.tok(j).IsPunct('.') {
		schema = name
		name, _ = st.tok(j + 1).Name()
		j += 2
	}
	if name == "" {
		return Class{}, st.refuse("PRAGMA without a name is not supported")
	}
	name = lowerASCII(name)
	set, value := false, ""
	if t := st.tok(j); t.IsPunct('=') || t.IsPunct('(') {
		set = true
		value = st.pragmaValue(j + 1)
	}

	rule, known := pragmas[name]
	if !known {
		return Class{}, st.refuse("PRAGMA " + name + " is not supported by hiqlite")
	}
	kind := rule.get
	if set {
		kind = rule.set
		if only, ok := pragmaOnly[name]; ok && !equalFold(value, only) {
			return Class{}, st.refuse("PRAGMA " + name + " cannot be changed: " + rule.why + " (asking for " + only + ", which it is, is accepted)")
		}
	}
	switch {
	case kind == kindRefused && rule.get == kindRefused:
		return Class{}, st.refuse("PRAGMA " + name + " is not allowed: " + rule.why)
	case kind == kindRefused:
		return Class{}, st.refuse("PRAGMA " + name + " cannot be changed: " + rule.why)
	case kind == Write && equalFold(schema, "temp"):
		return Class{}, st.refuse("PRAGMA temp." + name + " is not supported: the temp schema belongs to the writer that every session shares")
	}
	c := Class{Kind: kind, Pragma: name}
	if kind == Session {
		on, ok := parseBool(value)
		if !ok {
			return Class{}, st.refuse("PRAGMA " + name + " needs ON or OFF (or TRUE/FALSE, YES/NO, 1/0), not " + strconv.Quote(value))
		}
		c.On = on
	}
	return c, nil
}

// pragmaValue reads the value that starts at token i: an optional sign, then a keyword,
// name, string or number. As in SQLite, a "+" is dropped and a "-" kept. It returns ""
// when there is none.
func (st *parsedStmt) pragmaValue(i int) string {
	sign := ""
	switch t := st.tok(i); {
	case t.IsPunct('+'):
		i++
	case t.IsPunct('-'):
		sign = "-"
		i++
	}
	t := st.tok(i)
	if v, ok := t.Name(); ok {
		return sign + v
	}
	if t.Kind == sqltext.Number {
		return sign + t.Text
	}
	return sign
}

// parseBool accepts the booleans SQLite accepts for a flag pragma, less its oddities
// (SQLite reads any other word as false, "2" as true and "0x1" as 0).
func parseBool(v string) (on, ok bool) {
	switch lowerASCII(v) {
	case "on", "true", "yes", "1":
		return true, true
	case "off", "false", "no", "0":
		return false, true
	}
	return false, false
}

// reservedSavepoint starts the names of the savepoints the state machine
// wraps around each command; user SQL that named one could release or roll
// back the state machine's own work.
const reservedSavepoint = "_hiqlite"

// checkSavepoint refuses a savepoint statement whose name, token i, is
// reserved for hiqlite (SQLite compares savepoint names case-insensitively).
func (st *parsedStmt) checkSavepoint(i int) error {
	name, ok := st.tok(i).Name()
	if ok && len(name) >= len(reservedSavepoint) && equalFold(name[:len(reservedSavepoint)], reservedSavepoint) {
		return st.refuse("savepoint names starting with " + reservedSavepoint + " are reserved for hiqlite's state machine")
	}
	return nil
}

func (st *parsedStmt) refuse(reason string) error {
	return &RefusedError{SQL: st.sql, Reason: reason}
}

// kindRefused marks a refused form in the pragma table; it is never a Class's Kind.
const kindRefused Kind = 0xff

// pragmaRule says what hiqlite does with one PRAGMA. get is the Kind of the query form
// (PRAGMA x), set the Kind of the forms that pass a value (PRAGMA x = v, PRAGMA x(v)). A
// form marked kindRefused is refused, giving why.
type pragmaRule struct {
	get, set Kind
	why      string
}

const (
	whyJournal  = "the state machine owns the journal and its checkpoints"
	whyDurable  = "the state machine owns durability"
	whyWriter   = "it would change the writer that every session shares, on this node only"
	whyFormat   = "the database file format is fixed when hiqlite creates the database"
	whySchema   = "direct edits of the schema are not replicated safely"
	whyProcess  = "it is a process-wide setting, owned by hiqlite"
	whyKey      = "encryption keys are configured through hiqlite, never in SQL text, which is replicated and logged"
	whyVFS      = "the VFS is configured by hiqlite"
	whyOutdated = "it is deprecated and not supported by hiqlite"
)

// pragmaOnly holds the one value the set form of a pragma accepts, where asking for it
// asks for what hiqlite already guarantees; any other value is refused.
var pragmaOnly = map[string]string{"journal_mode": "wal"}

// pragmas is the table of every PRAGMA hiqlite runs (all of SQLite 3.54's pragma_list,
// and the pragmas of ncruces VFSes). A pragma missing from it is refused in every form,
// rather than silently applied to one connection: an unknown pragma is a no-op in SQLite,
// or reaches the VFS, and a typo should be an error.
//
// Local settings run on the reader that prepares them and do not reach the writer, so
// they cannot make nodes diverge (and analysis_limit does not limit a replicated ANALYZE
// or optimize). cache_spill is refused with the other tuning of the writer's pager: a
// reader never spills. PRAGMA optimize is Write although SQLite reports it read-only; it
// runs ANALYZE, which the replicated log must carry.
var pragmas = map[string]pragmaRule{
	// Queries in every form: a value, where SQLite takes one, only says what to report.
	"collation_list":    {Read, Read, ""},
	"compile_options":   {Read, Read, ""},
	"data_version":      {Read, Read, ""},
	"database_list":     {Read, Read, ""},
	"foreign_key_check": {Read, Read, ""},
	"foreign_key_list":  {Read, Read, ""},
	"freelist_count":    {Read, Read, ""},
	"function_list":     {Read, Read, ""},
	"index_info":        {Read, Read, ""},
	"index_list":        {Read, Read, ""},
	"index_xinfo":       {Read, Read, ""},
	"integrity_check":   {Read, Read, ""},
	"module_list":       {Read, Read, ""},
	"page_count":        {Read, Read, ""},
	"pragma_list":       {Read, Read, ""},
	"quick_check":       {Read, Read, ""},
	"table_info":        {Read, Read, ""},
	"table_list":        {Read, Read, ""},
	"table_xinfo":       {Read, Read, ""},

	// Settings of how this connection reads: run on the reader, not replicated.
	"analysis_limit":   {Read, Local, ""},
	"automatic_index":  {Read, Local, ""},
	"busy_timeout":     {Read, Local, ""},
	"cache_size":       {Read, Local, ""},
	"mmap_size":        {Read, Local, ""},
	"temp_store":       {Read, Local, ""},
	"read_uncommitted": {Read, Local, ""},  // no effect without shared cache
	"shrink_memory":    {Local, Local, ""}, // an action on this connection

	// The session setting every later write of the session carries.
	"foreign_keys": {Read, Session, ""},

	// Changes of the database file: replicated.
	"application_id":     {Read, Write, ""},
	"user_version":       {Read, Write, ""},
	"incremental_vacuum": {Write, Write, ""},
	"optimize":           {Write, Write, ""},

	// Refused in every form.
	"wal_checkpoint": {kindRefused, kindRefused, whyJournal},
	"key":            {kindRefused, kindRefused, whyKey},
	"rekey":          {kindRefused, kindRefused, whyKey},
	"hexkey":         {kindRefused, kindRefused, whyKey},
	"hexrekey":       {kindRefused, kindRefused, whyKey},
	"textkey":        {kindRefused, kindRefused, whyKey},
	"textrekey":      {kindRefused, kindRefused, whyKey},

	// What hiqlite already guarantees: asking for it runs on the reader, which answers what
	// is true of the database (wal, or what an in-memory node's database reports).
	// synchronous only changes the reader's setting: durability comes from Raft, which
	// fsyncs each entry on a majority of the nodes before the write is answered.
	"journal_mode": {Read, Local, whyJournal}, // only = WAL: see pragmaOnly
	"synchronous":  {Read, Local, ""},

	// Queries that may be read, settings that are refused.
	"journal_size_limit": {Read, kindRefused, whyJournal},
	"wal_autocheckpoint": {Read, kindRefused, whyJournal},

	"fullfsync":            {Read, kindRefused, whyDurable},
	"checkpoint_fullfsync": {Read, kindRefused, whyDurable},

	"locking_mode":              {Read, kindRefused, whyWriter},
	"cache_spill":               {Read, kindRefused, whyWriter},
	"secure_delete":             {Read, kindRefused, whyWriter},
	"max_page_count":            {Read, kindRefused, whyWriter},
	"query_only":                {Read, kindRefused, whyWriter},
	"recursive_triggers":        {Read, kindRefused, whyWriter},
	"case_sensitive_like":       {Read, kindRefused, whyWriter},
	"ignore_check_constraints":  {Read, kindRefused, whyWriter},
	"legacy_alter_table":        {Read, kindRefused, whyWriter},
	"reverse_unordered_selects": {Read, kindRefused, whyWriter},
	"defer_foreign_keys":        {Read, kindRefused, whyWriter},
	"cell_size_check":           {Read, kindRefused, whyWriter},
	"trusted_schema":            {Read, kindRefused, whyWriter},

	"auto_vacuum": {Read, kindRefused, whyFormat},
	"page_size":   {Read, kindRefused, whyFormat},
	"encoding":    {Read, kindRefused, whyFormat},

	"writable_schema": {Read, kindRefused, whySchema},
	"schema_version":  {Read, kindRefused, whySchema},

	"temp_store_directory": {Read, kindRefused, whyProcess},
	"data_store_directory": {Read, kindRefused, whyProcess},
	"soft_heap_limit":      {Read, kindRefused, whyProcess},
	"hard_heap_limit":      {Read, kindRefused, whyProcess},
	"threads":              {Read, kindRefused, whyProcess},

	"checksum_verification": {Read, kindRefused, whyVFS},

	"count_changes":          {Read, kindRefused, whyOutdated},
	"empty_result_callbacks": {Read, kindRefused, whyOutdated},
	"full_column_names":      {Read, kindRefused, whyOutdated},
	"short_column_names":     {Read, kindRefused, whyOutdated},
}
