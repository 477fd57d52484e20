//go:build faultsuite

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/faultsuite"
)

// opTimeout bounds one workload operation unless ?timeout= says otherwise.
const opTimeout = 5 * time.Second

// readFirstTimeout bounds a transfer that reads before it writes, retries
// included.
const readFirstTimeout = time.Second

// withFaultsuite adds the workload endpoints of the fault-injection suite
// (internal/faultsuite) under /x/ to h. Each runs through this node's
// database handle, as an application on this node would: writes are
// forwarded by this node's driver, reads run here. Every reply is a
// faultsuite.Reply with the outcome classified as ok, fail or info. They
// have no authentication: this binary is for tests only.
func withFaultsuite(h http.Handler, db *sql.DB, node *hiqlite.Node) http.Handler {
	x := &xHandler{db: db, node: node}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("POST /x/setup", x.handle(x.setup))
	mux.HandleFunc("POST /x/reg/write", x.handle(x.regWrite))
	mux.HandleFunc("GET /x/reg/read", x.handle(x.regRead))
	mux.HandleFunc("POST /x/bank/transfer", x.handle(x.transfer))
	mux.HandleFunc("GET /x/bank/read", x.handle(x.bankRead))
	mux.HandleFunc("POST /x/uniq/insert", x.handle(x.uniqInsert))
	mux.HandleFunc("GET /x/uniq/read", x.handle(x.uniqRead))
	mux.HandleFunc("POST /x/incr", x.handle(x.incr))
	mux.HandleFunc("GET /x/incr/read", x.handle(x.incrRead))
	mux.HandleFunc("GET /x/dump", x.handle(x.dump))
	x.extHandlers(mux) // serve_faultsuite_ext.go
	return mux
}

type xHandler struct {
	db   *sql.DB
	node *hiqlite.Node

	lmu       sync.Mutex
	listeners map[int64]*xListener // the notify workload's, by id
}

// handle runs fn with the request's deadline and consistency (?c=local or
// linearizable) and writes its reply as JSON.
func (x *xHandler) handle(fn func(ctx context.Context, q func(string) int64) faultsuite.Reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		timeout := opTimeout
		if v := r.URL.Query().Get("timeout"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				http.Error(w, fmt.Sprintf("invalid timeout %q", v), http.StatusBadRequest)
				return
			}
			timeout = d
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if c := r.URL.Query().Get("c"); c != "" {
			level, err := hiqlite.ParseConsistency(c)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			ctx = hiqlite.WithConsistency(ctx, level)
		}
		var bad error
		q := func(name string) int64 {
			n, err := strconv.ParseInt(r.URL.Query().Get(name), 10, 64)
			if err != nil && bad == nil {
				bad = fmt.Errorf("invalid %s %q: want an integer", name, r.URL.Query().Get(name))
			}
			return n
		}
		rep := fn(ctx, q)
		if bad != nil {
			http.Error(w, bad.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	}
}

// write answers an autocommit write's error.
func write(err error) faultsuite.Reply {
	rep := faultsuite.Reply{Outcome: faultsuite.WriteOutcome(err)}
	if err != nil {
		rep.Error = err.Error()
	}
	return rep
}

// read answers a read's error: any error is a failed read.
func read(err error) faultsuite.Reply {
	if err == nil {
		return faultsuite.Reply{Outcome: faultsuite.OK}
	}
	return faultsuite.Reply{Outcome: faultsuite.Fail, Error: err.Error()}
}

// setup creates the tables of every workload, and ?accounts= bank accounts
// holding ?balance= each; it can run any number of times.
func (x *xHandler) setup(ctx context.Context, q func(string) int64) faultsuite.Reply {
	accounts, balance := q("accounts"), q("balance")
	stmt := `CREATE TABLE IF NOT EXISTS reg(k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bank(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS uniq(id INTEGER NOT NULL, node TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO counter(id, v) VALUES (1, 0);` + extSetup
	for i := range accounts {
		stmt += fmt.Sprintf("\nINSERT OR IGNORE INTO bank(id, bal) VALUES (%d, %d);", i, balance)
	}
	_, err := x.db.ExecContext(ctx, stmt)
	return write(err)
}

func (x *xHandler) regWrite(ctx context.Context, q func(string) int64) faultsuite.Reply {
	_, err := x.db.ExecContext(ctx, `INSERT INTO reg(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, q("k"), q("v"))
	return write(err)
}

func (x *xHandler) regRead(ctx context.Context, q func(string) int64) faultsuite.Reply {
	var v int64
	err := x.db.QueryRowContext(ctx, `SELECT v FROM reg WHERE k = ?`, q("k")).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return faultsuite.Reply{Outcome: faultsuite.OK}
	}
	rep := read(err)
	if err == nil {
		rep.Value = &v
	}
	return rep
}

// errInsufficient ends a transfer whose source holds too little.
var errInsufficient = errors.New("insufficient balance")

// transfer moves ?amount= from account ?from= to ?to= in an interactive
// transaction begun on this node (retried by hiqlite.RetryTx while it
// provably did not commit), unless ?from= holds less: then it fails,
// changing nothing. With ?readfirst=1 it reads the balance first (a
// local snapshot, which fails with a busy snapshot when anything commits
// before its first write); else its first statement is the debit,
// conditional on the balance, whose RowsAffected it checks.
func (x *xHandler) transfer(ctx context.Context, q func(string) int64) faultsuite.Reply {
	from, to, amount, readFirst := q("from"), q("to"), q("amount"), q("readfirst") == 1
	if readFirst {
		// Under other writers its retries rarely win: give up sooner.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readFirstTimeout)
		defer cancel()
	}
	err := hiqlite.RetryTx(ctx, x.db, nil, func(tx *sql.Tx) error {
		if readFirst {
			var bal int64
			if err := tx.QueryRowContext(ctx, `SELECT bal FROM bank WHERE id = ?`, from).Scan(&bal); err != nil {
				return fmt.Errorf("read balance: %w", err)
			}
			if bal < amount {
				return fmt.Errorf("account %d holds %d, less than %d: %w", from, bal, amount, errInsufficient)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE bank SET bal = bal - ?1 WHERE id = ?2 AND bal >= ?1`, amount, from)
		if err != nil {
			return fmt.Errorf("debit: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("debit: %w", err)
		} else if n != 1 {
			return fmt.Errorf("account %d holds less than %d: %w", from, amount, errInsufficient)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bank SET bal = bal + ? WHERE id = ?`, amount, to); err != nil {
			return fmt.Errorf("credit: %w", err)
		}
		return nil
	})
	if errors.Is(err, errInsufficient) {
		return faultsuite.Reply{Outcome: faultsuite.Fail, Error: err.Error()}
	}
	return write(err)
}

// bankRead reads every balance in one statement: one snapshot.
func (x *xHandler) bankRead(ctx context.Context, _ func(string) int64) faultsuite.Reply {
	rep := faultsuite.Reply{Outcome: faultsuite.OK, Values: []int64{}}
	err := x.query(ctx, `SELECT bal FROM bank ORDER BY id`, func(rows *sql.Rows) error {
		var v int64
		err := rows.Scan(&v)
		rep.Values = append(rep.Values, v)
		return err
	})
	if err != nil {
		return read(err)
	}
	return rep
}

func (x *xHandler) uniqInsert(ctx context.Context, q func(string) int64) faultsuite.Reply {
	_, err := x.db.ExecContext(ctx, `INSERT INTO uniq(id, node) VALUES (?, ?)`, q("id"), x.node.ID())
	return write(err)
}

// uniqRead answers every id in table uniq, duplicates included, in order.
func (x *xHandler) uniqRead(ctx context.Context, _ func(string) int64) faultsuite.Reply {
	rep := faultsuite.Reply{Outcome: faultsuite.OK, Values: []int64{}}
	err := x.query(ctx, `SELECT id FROM uniq ORDER BY id`, func(rows *sql.Rows) error {
		var v int64
		err := rows.Scan(&v)
		rep.Values = append(rep.Values, v)
		return err
	})
	if err != nil {
		return read(err)
	}
	return rep
}

// incr adds one to the counter: not idempotent, so a write applied twice
// shows.
func (x *xHandler) incr(ctx context.Context, _ func(string) int64) faultsuite.Reply {
	_, err := x.db.ExecContext(ctx, `UPDATE counter SET v = v + 1 WHERE id = 1`)
	return write(err)
}

func (x *xHandler) incrRead(ctx context.Context, _ func(string) int64) faultsuite.Reply {
	var v int64
	err := x.db.QueryRowContext(ctx, `SELECT v FROM counter WHERE id = 1`).Scan(&v)
	rep := read(err)
	if err == nil {
		rep.Value = &v
	}
	return rep
}

// dump answers every user table's rows as text (one line a row, in rowid
// order), PRAGMA integrity_check and the applied index, all local.
func (x *xHandler) dump(ctx context.Context, _ func(string) int64) faultsuite.Reply {
	rep := faultsuite.Reply{Outcome: faultsuite.OK, Dump: map[string]string{}, Applied: x.node.AppliedIndex()}
	var tables []string
	err := x.query(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_hiqlite%' ESCAPE '\' ORDER BY name`, func(rows *sql.Rows) error {
		var name string
		err := rows.Scan(&name)
		tables = append(tables, name)
		return err
	})
	if err != nil {
		return read(err)
	}
	for _, name := range tables {
		var b strings.Builder
		err := x.query(ctx, `SELECT * FROM "`+name+`" ORDER BY rowid`, func(rows *sql.Rows) error {
			cols, err := rows.Columns()
			if err != nil {
				return err
			}
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for i, v := range vals {
				if i > 0 {
					b.WriteByte('|')
				}
				fmt.Fprintf(&b, "%T:%v", v, v)
			}
			b.WriteByte('\n')
			return nil
		})
		if err != nil {
			return read(fmt.Errorf("dump %s: %w", name, err))
		}
		rep.Dump[name] = b.String()
	}
	var lines []string
	err = x.query(ctx, `PRAGMA integrity_check`, func(rows *sql.Rows) error {
		var s string
		err := rows.Scan(&s)
		lines = append(lines, s)
		return err
	})
	if err != nil {
		return read(fmt.Errorf("integrity_check: %w", err))
	}
	rep.Integrity = strings.Join(lines, "\n")
	return rep
}

// query runs a read and calls each for every row.
func (x *xHandler) query(ctx context.Context, stmt string, each func(*sql.Rows) error) error {
	rows, err := x.db.QueryContext(ctx, stmt)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
