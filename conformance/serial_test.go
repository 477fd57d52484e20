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
	"sync/atomic"
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
	// serialStop ends the starting of new transactions on a slow machine
	// (those that ran are counted and compared, however many);
	// serialBound guards against a hang: a statement still running then
	// fails the test. Neither is a threshold on speed.
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
INSERT INTO acct(id, bal) SELECT i, 100 FROM a;
CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL, tag TEXT);
CREATE VIRTUAL TABLE note_fts USING fts5(body, content='note', content_rowid='id');
CREATE TRIGGER note_ai AFTER INSERT ON note BEGIN
	INSERT INTO note_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER note_ad AFTER DELETE ON note BEGIN
	INSERT INTO note_fts(note_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER note_au AFTER UPDATE ON note BEGIN
	INSERT INTO note_fts(note_fts, rowid, body) VALUES ('delete', old.id, old.body);
	INSERT INTO note_fts(rowid, body) VALUES (new.id, new.body);
END;`

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
// released, INSERT OR ROLLBACK, notes indexed by FTS5 through triggers and
// searched with bm25 in the same transaction), and some roll back. Half the sessions use
// hiqlite.RetryTx with deferred transactions (retried on
// SQLITE_BUSY_SNAPSHOT), half a sql.Conn with BEGIN IMMEDIATE ... COMMIT.
// Every transaction increments seq.n, which gives the order of commits.
// One in five is a read instead: one statement at local or linearizable
// consistency, or a read-only transaction, each reading seq.n too.
// Then plain SQLite runs the committed transactions again in that order on
// one connection, and each read right after the commit it saw: every
// statement must return the same, and the four databases must end with
// the same tables. The commit numbers must be 1..N without a gap, log must
// hold exactly the committed transactions (none lost, none that rolled
// back), every read must see its session's last commit, and a
// linearizable read every commit acknowledged before it began.
func TestSerialisable(t *testing.T) {
	e := openClusterWith(t, 3, true, "_busy=60s")
	ref := openReferenceExt(t)
	for _, db := range []*sql.DB{e.db, ref.db} {
		if _, err := db.Exec(serialSchema); err != nil {
			t.Fatal(err)
		}
	}

	// Local reads on the other nodes see the tables only once they have
	// applied them.
	e.caughtUp(t)

	ctx, cancel := context.WithTimeout(context.Background(), serialBound)
	defer cancel()
	stop := make(chan struct{})
	timer := time.AfterFunc(serialStop, func() { close(stop) })
	defer timer.Stop()

	var (
		mu    sync.Mutex
		recs  []*txRecord
		wg    sync.WaitGroup
		acked atomic.Int64 // the highest commit number acknowledged to a session
	)
	for n, db := range e.nodes {
		for s := range serialPerNode {
			wg.Go(func() {
				sess := &session{t: t, ctx: ctx, db: db, node: n, id: s, immediate: s%2 == 1, acked: &acked}
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
	reads := map[int64][]*txRecord{} // by the commit number they saw
	outcomes := map[string]int{}
	attempts := 0
	for _, r := range recs {
		outcomes[r.outcome]++
		attempts += r.attempts
		switch {
		case r.outcome == "commit":
			committed = append(committed, r)
		case strings.HasPrefix(r.outcome, "read"):
			reads[r.seq] = append(reads[r.seq], r)
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
	compared, diffs, replayed := 0, 0, 0
	replay := func(r *txRecord) {
		replayed++
		if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
			t.Fatal(err)
		}
		for i, s := range r.steps {
			want := runStep(ctx, conn, s)
			compared++
			if want != s.got {
				t.Errorf("%s %s (commit %d) step %d %s %v:\n  hiqlite: %s\n  sqlite:  %s", r.outcome, r.tag, r.seq, i+1, short(s.sql), s.args, s.got, want)
				if diffs++; diffs == 10 {
					t.FailNow()
				}
			}
		}
		if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
			t.Fatalf("plain SQLite: %s (commit %d): %v", r.tag, r.seq, err)
		}
	}
	// A read saw the state after the commit it read the number of: it
	// runs on plain SQLite between that commit and the next.
	for _, r := range reads[0] {
		replay(r)
	}
	for _, c := range committed {
		replay(c)
		for _, r := range reads[c.seq] {
			replay(r)
		}
	}
	if replayed != len(committed)+outcomes["read-tx"]+outcomes["read-local"]+outcomes["read-linearizable"] {
		t.Errorf("%d transactions run again, of %d committed and %d reads: some read a commit number past the last", replayed, len(committed), outcomes["read-tx"]+outcomes["read-local"]+outcomes["read-linearizable"])
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
	t.Logf("%d sessions on 3 nodes: %d transactions (%d attempts), outcomes %v; %d statements of %d committed transactions and %d reads compared with plain SQLite, %d tables' dumps (%d bytes) equal on 3 nodes",
		3*serialPerNode, len(recs), attempts, outcomes, compared, len(committed), replayed-len(committed), bytes.Count(wantDump, []byte("\n== ")), len(wantDump))
}

// session is one goroutine's connection to one node.
type session struct {
	t         *testing.T
	ctx       context.Context
	db        *sql.DB
	node, id  int
	immediate bool // BEGIN IMMEDIATE on a sql.Conn, else RetryTx (deferred)
	conn      *sql.Conn
	acked     *atomic.Int64 // the highest commit number acknowledged to any session
	lastSeq   int64         // this session's last commit
}

// run runs transaction i and returns its record; nil when the test failed.
func (s *session) run(i int) *txRecord {
	rec := &txRecord{tag: fmt.Sprintf("n%ds%dt%02d", s.node+1, s.id, i), node: s.node}
	seed := uint64(s.node*1000 + s.id*100 + i)
	if pick := rand.New(rand.NewPCG(serialSeed^0xbeef, seed)); pick.IntN(5) == 0 {
		return s.read(rec, pick)
	}
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
		s.lastSeq = rec.seq
		for {
			a := s.acked.Load()
			if a >= rec.seq || s.acked.CompareAndSwap(a, rec.seq) {
				break
			}
		}
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

// read runs a read: one statement, at local or linearizable consistency,
// or a read-only transaction. It must see this session's last commit, and
// a linearizable read every commit acknowledged before it began.
func (s *session) read(rec *txRecord, rng *rand.Rand) *txRecord {
	rec.attempts = 1
	floor := s.lastSeq
	var err error
	switch rng.IntN(3) {
	case 0:
		rec.outcome = "read-local"
		var rows [][]any
		if rows, err = rec.record(s.ctx, s.db, step{query: true, sql: snapshotQuery}, 0); err == nil {
			rec.seq = rows[0][0].(int64)
		}
	case 1:
		rec.outcome = "read-linearizable"
		floor = max(floor, s.acked.Load())
		var rows [][]any
		ctx := hiqlite.WithConsistency(s.ctx, hiqlite.Linearizable)
		if rows, err = rec.record(ctx, s.db, step{query: true, sql: snapshotQuery}, 0); err == nil {
			rec.seq = rows[0][0].(int64)
		}
	default:
		rec.outcome = "read-tx"
		var tx *sql.Tx
		if tx, err = s.db.BeginTx(s.ctx, &sql.TxOptions{ReadOnly: true}); err == nil {
			if err = readBody(s.ctx, tx, rng, rec); err == nil {
				err = tx.Commit()
			} else {
				tx.Rollback()
			}
		}
	}
	if err != nil {
		s.t.Errorf("%s: %s: %v", rec.tag, rec.outcome, err)
		return nil
	}
	if rec.seq < floor {
		s.t.Errorf("%s: %s saw commit %d, after commit %d was acknowledged (to this session, or to any for a linearizable read)", rec.tag, rec.outcome, rec.seq, floor)
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
