package conformance

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
)

// The serialisability test: sessions on every node of a 3-node cluster run
// random interactive transactions at once; the transactions that committed
// are then run again, one after the other in the order they committed, on
// plain SQLite, which must return what every statement returned on hiqlite
// and end with the same tables.
const (
	serialPerNode  = 4  // sessions on each node
	serialTxs      = 50 // transactions each session begins
	serialAccounts = 8
	serialSeed     = 0x5e71a1
	// serialStop ends the starting of new transactions (they are counted
	// and compared, however many ran); serialBound ends the test's
	// statements and fails it: neither is a threshold on speed.
	serialStop  = 3 * time.Minute
	serialBound = 6 * time.Minute
)

// serialSchema is the tables the transactions work on, on both sides.
const serialSchema = `
CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0), note TEXT);
CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER NOT NULL, tag TEXT) WITHOUT ROWID;
CREATE TABLE uniq(id INTEGER PRIMARY KEY, u INTEGER UNIQUE, owner TEXT);
CREATE TABLE log(id INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL UNIQUE, seq INTEGER NOT NULL);
CREATE TABLE seq(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT INTO seq VALUES (1, 0);
WITH RECURSIVE a(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM a WHERE i < 8)
INSERT INTO acct(id, bal) SELECT i, 100 FROM a;`

// step is one statement of a transaction and what it returned.
type step struct {
	query  bool // run with Query (it returns rows), else with Exec
	sorted bool // its rows come in no defined order (RETURNING of several rows)
	sql    string
	args   []any
	got    string // the rendered rows, rows affected or error codes
}

// txRecord is one transaction as its session saw it.
type txRecord struct {
	tag      string // n<node>s<session>t<transaction>, also written to log
	node     int
	seq      int64 // the commit order: seq.n as this transaction set it
	steps    []step
	attempts int
	outcome  string // "commit", or why it did not
}

// txq runs a transaction's statements: a *sql.Tx, or a *sql.Conn between
// BEGIN and COMMIT.
type txq interface {
	execer
	queryer
}

var (
	// errAppRollback: the transaction decided to roll back.
	errAppRollback = errors.New("the transaction chose to roll back")
	// errSQLiteRollback: INSERT OR ROLLBACK ended the transaction.
	errSQLiteRollback = errors.New("SQLite rolled the transaction back")
)

// TestSerialisable runs serialPerNode sessions on each node of a 3-node
// cluster, each beginning serialTxs seeded random transactions that read,
// then write what depends on what they read (UPDATE ... RETURNING, upserts,
// INSERT OR IGNORE, DELETE, constraint errors, savepoints rolled back or
// released, INSERT OR ROLLBACK), and some roll back. Half the sessions use
// hiqlite.RetryTx with deferred transactions (retried on
// SQLITE_BUSY_SNAPSHOT), half a sql.Conn with BEGIN IMMEDIATE ... COMMIT.
// Every transaction increments seq.n, which gives the order of commits.
// Then plain SQLite runs the committed transactions again in that order on
// one connection: every statement must return the same, and the four
// databases must end with the same tables. The commit numbers must be
// 1..N without a gap, and log must hold exactly the committed
// transactions: none lost, none that rolled back.
func TestSerialisable(t *testing.T) {
	e := openClusterWith(t, 3, true, "_busy=60s")
	ref := openReference(t)
	for _, db := range []*sql.DB{e.db, ref.db} {
		if _, err := db.Exec(serialSchema); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), serialBound)
	defer cancel()
	stop := make(chan struct{})
	timer := time.AfterFunc(serialStop, func() { close(stop) })
	defer timer.Stop()

	var (
		mu   sync.Mutex
		recs []*txRecord
		wg   sync.WaitGroup
	)
	for n, db := range e.nodes {
		for s := range serialPerNode {
			wg.Go(func() {
				sess := &session{t: t, ctx: ctx, db: db, node: n, id: s, immediate: s%2 == 1}
				defer sess.close()
				for i := range serialTxs {
					select {
					case <-stop:
						return
					default:
					}
					rec := sess.run(i)
					if rec == nil {
						return
					}
					mu.Lock()
					recs = append(recs, rec)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// The commit order: 1..N, one each.
	var committed []*txRecord
	outcomes := map[string]int{}
	attempts := 0
	for _, r := range recs {
		outcomes[r.outcome]++
		attempts += r.attempts
		if r.outcome == "commit" {
			committed = append(committed, r)
		}
	}
	slices.SortFunc(committed, func(a, b *txRecord) int { return int(a.seq - b.seq) })
	for i, r := range committed {
		if r.seq != int64(i+1) {
			t.Fatalf("commit %d of %d (%s) read seq %d: the commit numbers are not 1..N", i+1, len(committed), r.tag, r.seq)
		}
	}

	// Plain SQLite, one connection, the committed transactions in order.
	conn, err := ref.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	compared, diffs := 0, 0
	for _, r := range committed {
		if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
			t.Fatal(err)
		}
		for i, s := range r.steps {
			want := runStep(ctx, conn, s)
			compared++
			if want != s.got {
				t.Errorf("commit %d (%s) step %d %s %v:\n  hiqlite: %s\n  sqlite:  %s", r.seq, r.tag, i+1, short(s.sql), s.args, s.got, want)
				if diffs++; diffs == 10 {
					t.FailNow()
				}
			}
		}
		if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
			t.Fatalf("plain SQLite: commit %d (%s): %v", r.seq, r.tag, err)
		}
	}

	// Exactly the committed transactions are in log.
	var tags []string
	rows, err := e.db.QueryContext(ctx, `SELECT tag FROM log ORDER BY tag`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag); err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range committed {
		want = append(want, r.tag)
	}
	slices.Sort(want)
	if !slices.Equal(tags, want) {
		t.Errorf("log holds %d transactions, %d committed:\n  log:       %v\n  committed: %v", len(tags), len(want), tags, want)
	}

	// Every node's tables equal plain SQLite's.
	e.caughtUp(t)
	wantDump := dumpApp(t, ref.db)
	for i, db := range e.nodes {
		if got := dumpApp(t, db); !bytes.Equal(got, wantDump) {
			t.Errorf("%s's tables differ from plain SQLite's:\n--- %s\n%s\n--- sqlite\n%s", e.handles[i].ID(), e.handles[i].ID(), clip(got), clip(wantDump))
		}
	}
	t.Logf("%d sessions on 3 nodes: %d transactions (%d attempts), outcomes %v; %d statements of %d committed transactions compared with plain SQLite, %d tables' dumps (%d bytes) equal on 3 nodes",
		3*serialPerNode, len(recs), attempts, outcomes, compared, len(committed), bytes.Count(wantDump, []byte("\n== ")), len(wantDump))
}

// session is one goroutine's connection to one node.
type session struct {
	t         *testing.T
	ctx       context.Context
	db        *sql.DB
	node, id  int
	immediate bool // BEGIN IMMEDIATE on a sql.Conn, else RetryTx (deferred)
	conn      *sql.Conn
}

// run runs transaction i and returns its record; nil when the test failed.
func (s *session) run(i int) *txRecord {
	rec := &txRecord{tag: fmt.Sprintf("n%ds%dt%02d", s.node+1, s.id, i), node: s.node}
	seed := uint64(s.node*1000 + s.id*100 + i)
	body := func(q txq) error {
		rec.steps, rec.seq = nil, 0
		rec.attempts++
		rng := rand.New(rand.NewPCG(serialSeed, seed))
		return txBody(s.ctx, q, rng, rec)
	}
	var err error
	if s.immediate {
		err = s.runImmediate(body)
	} else {
		err = hiqlite.RetryTx(s.ctx, s.db, nil, func(tx *sql.Tx) error { return body(tx) })
	}
	switch {
	case err == nil:
		rec.outcome = "commit"
	case errors.Is(err, errAppRollback):
		rec.outcome = "rollback"
	case errors.Is(err, errSQLiteRollback):
		rec.outcome = "or-rollback"
	default:
		s.t.Errorf("%s (attempt %d): %v", rec.tag, rec.attempts, err)
		return nil
	}
	return rec
}

func (s *session) close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

// runImmediate runs body between BEGIN IMMEDIATE and COMMIT on the
// session's connection, beginning again while BEGIN meets SQLITE_BUSY.
func (s *session) runImmediate(body func(txq) error) error {
	if s.conn == nil {
		c, err := s.db.Conn(s.ctx)
		if err != nil {
			return err
		}
		s.conn = c
	}
	for attempt := 1; ; attempt++ {
		_, err := s.conn.ExecContext(s.ctx, `BEGIN IMMEDIATE`)
		if errors.Is(err, sqlite3.BUSY) && attempt < 20 {
			continue
		}
		if err != nil {
			return fmt.Errorf("BEGIN IMMEDIATE: %w", err)
		}
		if err := body(s.conn); err != nil {
			_, rerr := s.conn.ExecContext(s.ctx, `ROLLBACK`)
			if rerr != nil && !errors.Is(err, errSQLiteRollback) {
				return fmt.Errorf("%w; ROLLBACK: %w", err, rerr)
			}
			return err
		}
		if _, err := s.conn.ExecContext(s.ctx, `COMMIT`); err != nil {
			return fmt.Errorf("COMMIT: %w", err)
		}
		return nil
	}
}

// txBody runs one random transaction on q, drawing from rng, and records
// its statements in rec. A statement's error ends it, except a
// constraint error where one is expected.
func txBody(ctx context.Context, q txq, rng *rand.Rand, rec *txRecord) error {
	run := func(s step, tolerate sqlite3.ErrorCode) ([][]any, error) {
		rows, got, err := doStep(ctx, q, s, tolerate)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", short(s.sql), err)
		}
		s.got = got
		rec.steps = append(rec.steps, s)
		return rows, nil
	}
	acct := func() int64 { return 1 + rng.Int64N(serialAccounts) }
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(12)) }

	ops := 2 + rng.IntN(5)
	seqAt := rng.IntN(ops + 1)
	for i := 0; i <= ops; i++ {
		if i == seqAt {
			rows, err := run(step{query: true, sql: `UPDATE seq SET n = n + 1 WHERE id = 1 RETURNING n`}, 0)
			if err != nil {
				return err
			}
			rec.seq = rows[0][0].(int64)
			if _, err := run(step{query: true, sql: `INSERT INTO log(tag, seq) VALUES (?, ?) RETURNING id, seq`, args: []any{rec.tag, rec.seq}}, 0); err != nil {
				return err
			}
		}
		if i == ops {
			break
		}
		var err error
		switch op := rng.IntN(11); op {
		case 0: // read some accounts
			a := acct()
			_, err = run(step{query: true, sql: `SELECT id, bal, note FROM acct WHERE id BETWEEN ? AND ? ORDER BY id`, args: []any{a, a + 2}}, 0)
		case 1: // transfer: read a balance, write what it read less the amount
			a, b, amt := acct(), acct(), 1+rng.Int64N(60)
			var rows [][]any
			rows, err = run(step{query: true, sql: `SELECT bal FROM acct WHERE id = ?`, args: []any{a}}, 0)
			if err == nil && rows[0][0].(int64) >= amt {
				if _, err = run(step{sql: `UPDATE acct SET bal = ? WHERE id = ?`, args: []any{rows[0][0].(int64) - amt, a}}, 0); err == nil {
					_, err = run(step{query: true, sql: `UPDATE acct SET bal = bal + ? WHERE id = ? RETURNING id, bal`, args: []any{amt, b}}, 0)
				}
			}
		case 2: // upsert
			_, err = run(step{query: true, sql: `INSERT INTO kv(k, v, tag) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET v = v + excluded.v, tag = excluded.tag RETURNING k, v, tag`,
				args: []any{key(), rng.Int64N(100), rec.tag}}, 0)
		case 3: // read a key, then write from what was read
			k := key()
			var rows [][]any
			rows, err = run(step{query: true, sql: `SELECT v FROM kv WHERE k = ?`, args: []any{k}}, 0)
			if err == nil && len(rows) == 1 {
				_, err = run(step{sql: `UPDATE kv SET v = ?, tag = ? WHERE k = ?`, args: []any{rows[0][0].(int64)*3%1000 + 1, rec.tag, k}}, 0)
			} else if err == nil {
				_, err = run(step{sql: `INSERT OR IGNORE INTO kv(k, v, tag) VALUES (?, 1, ?)`, args: []any{k, rec.tag}}, 0)
			}
		case 4:
			_, err = run(step{sql: `INSERT OR IGNORE INTO uniq(u, owner) VALUES (?, ?)`, args: []any{rng.Int64N(40), rec.tag}}, 0)
		case 5: // may break UNIQUE: the statement fails, the transaction goes on
			_, err = run(step{sql: `INSERT INTO uniq(u, owner) VALUES (?, ?)`, args: []any{rng.Int64N(40), rec.tag}}, sqlite3.CONSTRAINT)
		case 6:
			if rng.IntN(2) == 0 {
				_, err = run(step{query: true, sql: `DELETE FROM kv WHERE k = ? RETURNING k, v`, args: []any{key()}}, 0)
			} else {
				_, err = run(step{sql: `DELETE FROM uniq WHERE u % 7 = ?`, args: []any{rng.Int64N(7)}}, 0)
			}
		case 7:
			if _, err = run(step{query: true, sql: `SELECT count(*), sum(v), group_concat(k || '=' || v, ',') FROM (SELECT k, v FROM kv ORDER BY k)`}, 0); err == nil {
				_, err = run(step{query: true, sql: `SELECT count(*), total(u), max(id) FROM uniq`}, 0)
			}
		case 8: // several rows returned in no defined order
			_, err = run(step{query: true, sorted: true, sql: `UPDATE acct SET note = ? WHERE bal > ? RETURNING id, bal, note`, args: []any{rec.tag, 80 + rng.Int64N(60)}}, 0)
		case 9: // a savepoint, rolled back to or released
			if _, err = run(step{sql: `SAVEPOINT sp`}, 0); err != nil {
				break
			}
			if _, err = run(step{query: true, sql: `INSERT INTO kv(k, v, tag) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v RETURNING k, v`,
				args: []any{key(), 500 + rng.Int64N(100), rec.tag}}, 0); err != nil {
				break
			}
			if _, err = run(step{sql: `INSERT OR IGNORE INTO uniq(u, owner) VALUES (?, ?)`, args: []any{40 + rng.Int64N(10), rec.tag}}, 0); err != nil {
				break
			}
			if rng.IntN(2) == 0 {
				if _, err = run(step{sql: `ROLLBACK TO sp`}, 0); err != nil {
					break
				}
			}
			_, err = run(step{sql: `RELEASE sp`}, 0)
		case 10: // now and then, INSERT OR ROLLBACK of a value taken
			if rng.IntN(4) != 0 {
				_, err = run(step{query: true, sql: `SELECT u, owner FROM uniq ORDER BY u LIMIT 3`}, 0)
				break
			}
			var rows [][]any
			rows, err = run(step{query: true, sql: `SELECT u FROM uniq ORDER BY u LIMIT 1`}, 0)
			if err == nil && len(rows) == 1 {
				_, err = doExec(ctx, q, `INSERT OR ROLLBACK INTO uniq(u, owner) VALUES (?, ?)`, rows[0][0], rec.tag)
				switch {
				case errors.Is(err, sqlite3.BUSY):
					return err // the first write of a deferred transaction, which RetryTx begins again
				case !errors.Is(err, sqlite3.CONSTRAINT):
					return fmt.Errorf("INSERT OR ROLLBACK of a taken value: %v, want a constraint error", err)
				}
				return fmt.Errorf("%w: %w", errSQLiteRollback, err)
			}
		}
		if err != nil {
			return err
		}
	}
	if rng.IntN(8) == 0 {
		return errAppRollback
	}
	return nil
}

func doExec(ctx context.Context, q txq, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, query, args...)
}

// doStep runs s on q and renders what it returned. An error of the code
// tolerate is rendered (the statement failed, the transaction goes on);
// any other is returned.
func doStep(ctx context.Context, q txq, s step, tolerate sqlite3.ErrorCode) ([][]any, string, error) {
	rows, got, err := stepResult(ctx, q, s)
	if err != nil {
		if tolerate != 0 && errors.Is(err, tolerate) {
			return nil, "error " + codeText(err), nil
		}
		return nil, "", err
	}
	return rows, got, nil
}

// runStep runs s on plain SQLite and renders what it returned, as
// doStep does.
func runStep(ctx context.Context, q txq, s step) string {
	_, got, err := stepResult(ctx, q, s)
	if err != nil {
		return "error " + codeText(err)
	}
	return got
}

// stepResult runs s on q and returns its rows and their rendering.
func stepResult(ctx context.Context, q txq, s step) ([][]any, string, error) {
	if !s.query {
		res, err := q.ExecContext(ctx, s.sql, s.args...)
		if err != nil {
			return nil, "", err
		}
		switch firstKeyword(s.sql) {
		case "INSERT", "UPDATE", "DELETE":
			n, err := res.RowsAffected()
			return nil, fmt.Sprintf("rows=%d", n), err
		}
		return nil, "ok", nil
	}
	rows, err := q.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, "", err
	}
	var all [][]any
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, "", err
		}
		var b bytes.Buffer
		for _, v := range vals {
			writeValue(&b, v)
		}
		all = append(all, vals)
		lines = append(lines, b.String())
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if s.sorted {
		slices.Sort(lines)
	}
	return all, fmt.Sprintf("%q", cols) + " " + strings.Join(lines, " | "), nil
}
