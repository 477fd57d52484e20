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

	"github.com/ncruces/go-sqlite3"
)

// What the transactions of TestSerialisable run, and how a statement's
// result is recorded and compared.

// txBody runs one random transaction on q, drawing from rng, and records
// its statements in rec. A statement's error ends it, except a
// constraint error where one is expected.
func txBody(ctx context.Context, q txq, rng *rand.Rand, rec *txRecord) error {
	run := func(s step, tolerate sqlite3.ErrorCode) ([][]any, error) {
		return rec.record(ctx, q, s, tolerate)
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
		switch op := rng.IntN(13); op {
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
		case 11: // a note, indexed by FTS5 through triggers; searched in the transaction
			words := make([]string, 3+rng.IntN(5))
			for j := range words {
				words[j] = serialWords[rng.IntN(len(serialWords))]
			}
			if rng.IntN(3) == 0 {
				_, err = run(step{query: true, sql: `UPDATE note SET body = ? WHERE id = (SELECT max(id) FROM note) RETURNING id`, args: []any{strings.Join(words, " ")}}, 0)
			} else {
				_, err = run(step{query: true, sql: `INSERT INTO note(body, tag) VALUES (?, ?) RETURNING id`, args: []any{strings.Join(words, " "), rec.tag}}, 0)
			}
			if err == nil {
				_, err = run(step{query: true, sql: `SELECT rowid, bm25(note_fts), highlight(note_fts, 0, '[', ']') FROM note_fts WHERE note_fts MATCH ? ORDER BY rank, rowid LIMIT 4`, args: []any{words[0] + " OR " + words[1]}}, 0)
			}
		case 12: // a search, then a delete of what it found
			var rows [][]any
			rows, err = run(step{query: true, sql: `SELECT rowid, snippet(note_fts, 0, '<', '>', '…', 3) FROM note_fts WHERE note_fts MATCH ? ORDER BY rank, rowid LIMIT 3`, args: []any{serialWords[rng.IntN(len(serialWords))]}}, 0)
			if err == nil && len(rows) > 0 && rng.IntN(2) == 0 {
				_, err = run(step{sql: `DELETE FROM note WHERE id = ?`, args: []any{rows[0][0]}}, 0)
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

// serialWords are what notes are made of.
var serialWords = []string{"raft", "leader", "log", "gossip", "sqlite", "wal", "snapshot", "commit", "follower", "vote"}

// record runs s on q, adds it with its result to r, and returns its rows.
func (r *txRecord) record(ctx context.Context, q txq, s step, tolerate sqlite3.ErrorCode) ([][]any, error) {
	rows, got, err := doStep(ctx, q, s, tolerate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", short(s.sql), err)
	}
	s.got = got
	r.steps = append(r.steps, s)
	return rows, nil
}

// snapshotQuery reads the commit number and a digest of every table in
// one statement, so in one snapshot.
const snapshotQuery = `SELECT (SELECT n FROM seq) AS seq,
	(SELECT group_concat(id || ':' || bal, ',') FROM (SELECT id, bal FROM acct ORDER BY id)) AS acct,
	(SELECT count(*) || '/' || coalesce(sum(v), 0) FROM kv) AS kv,
	(SELECT group_concat(u, ',') FROM (SELECT u FROM uniq ORDER BY u)) AS uniq,
	(SELECT max(id) FROM log) AS log,
	(SELECT group_concat(rowid, ',') FROM note_fts WHERE note_fts MATCH 'raft OR leader') AS search`

// readBody runs a read-only transaction's statements on q: reads of the
// tables, and of the commit number at a random place among them.
func readBody(ctx context.Context, q txq, rng *rand.Rand, rec *txRecord) error {
	reads := []string{
		`SELECT id, bal, note FROM acct ORDER BY id`,
		`SELECT k, v, tag FROM kv ORDER BY k`,
		`SELECT u, owner FROM uniq ORDER BY u`,
		`SELECT id, tag, seq FROM log ORDER BY id DESC LIMIT 3`,
		`SELECT count(*), sum(bal) FROM acct`,
		`SELECT rowid, bm25(note_fts) FROM note_fts WHERE note_fts MATCH 'log OR wal' ORDER BY rank, rowid`,
	}
	n := 1 + rng.IntN(3)
	seqAt := rng.IntN(n + 1)
	for i := 0; i <= n; i++ {
		if i == seqAt {
			rows, err := rec.record(ctx, q, step{query: true, sql: `SELECT n FROM seq`}, 0)
			if err != nil {
				return err
			}
			rec.seq = rows[0][0].(int64)
		}
		if i < n {
			if _, err := rec.record(ctx, q, step{query: true, sql: reads[rng.IntN(len(reads))]}, 0); err != nil {
				return err
			}
		}
	}
	return nil
}
