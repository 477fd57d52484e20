package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

func TestClusterForwardedWrites(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	f := c.Follower()
	lead, fol := c.Members[l].DB, c.Members[f].DB

	mustExec(t, fol, `CREATE TABLE fw(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, at DEFAULT CURRENT_TIMESTAMP)`)
	r := mustExec(t, fol, `INSERT INTO fw(name) VALUES ('a'), ('b')`)
	if id, _ := r.LastInsertId(); id != 2 {
		t.Errorf("forwarded LastInsertId = %d, want 2", id)
	}
	if n, _ := r.RowsAffected(); n != 2 {
		t.Errorf("forwarded RowsAffected = %d, want 2", n)
	}
	// Read your writes on the follower that sent them.
	if n := count(t, fol, `SELECT count(*) FROM fw`); n != 2 {
		t.Errorf("follower reads %d rows right after its write, want 2", n)
	}
	var id int64
	var name string
	if err := fol.QueryRow(`INSERT INTO fw(name) VALUES ('c') RETURNING id, name`).Scan(&id, &name); err != nil || id != 3 || name != "c" {
		t.Errorf("forwarded RETURNING: %d %q %v", id, name, err)
	}
	// SQL errors keep their extended codes across forwarding.
	_, err := fol.Exec(`INSERT INTO fw(name) VALUES ('a')`)
	var serr *sqlite3.Error
	if !errors.As(err, &serr) || !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("forwarded constraint error: %#v", err)
	}
	_, lerr := lead.Exec(`INSERT INTO fw(name) VALUES ('a')`)
	if err == nil || lerr == nil || err.Error() != lerr.Error() {
		t.Errorf("follower error %q differs from leader error %q", err, lerr)
	}
	c.EnsureSame()
}

func TestClusterTransactionOnFollower(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	fol := c.Members[c.Follower()].DB
	mustExec(t, fol, `CREATE TABLE u(id INTEGER PRIMARY KEY, email TEXT UNIQUE)`)
	tx, err := fol.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := tx.QueryRow(`INSERT INTO u(email) VALUES ('x@example.com') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var email string
	if err := tx.QueryRow(`SELECT email FROM u WHERE id = ?`, id).Scan(&email); err != nil || email != "x@example.com" {
		t.Fatalf("read own write in forwarded tx: %q %v", email, err)
	}
	if _, err := tx.Exec(`INSERT INTO u(email) VALUES ('x@example.com')`); !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("constraint error in forwarded tx: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, fol, `SELECT count(*) FROM u`); n != 1 {
		t.Errorf("after commit the follower reads %d rows", n)
	}
	// Rollback on a follower leaves no trace anywhere.
	tx, err = fol.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO u(email) VALUES ('y@example.com')`)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	c.EnsureSame()
	for _, i := range c.Alive() {
		if n := count(t, c.Members[i].DB, `SELECT count(*) FROM u WHERE id = ?`, id); n != 1 {
			t.Errorf("%s: row %d missing", c.Members[i].ID, id)
		}
		if n := count(t, c.Members[i].DB, `SELECT count(*) FROM u WHERE email = 'y@example.com'`); n != 0 {
			t.Errorf("%s: rolled back row present", c.Members[i].ID)
		}
	}
}

func TestClusterLinearizableRead(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l, f := c.Leader(), c.Follower()
	mustExec(t, c.Members[l].DB, `CREATE TABLE lin(x)`)
	ctx := hiqlite.WithConsistency(context.Background(), hiqlite.Linearizable)
	for i := range 20 {
		mustExec(t, c.Members[l].DB, `INSERT INTO lin VALUES (?)`, i)
		// Written on the leader, read at once on a follower: a
		// linearizable read must see it.
		var n int
		if err := c.Members[f].DB.QueryRowContext(ctx, `SELECT count(*) FROM lin`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != i+1 {
			t.Fatalf("linearizable read on follower saw %d rows, want %d", n, i+1)
		}
	}
}

func TestClusterRandomWorkload(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	mustExec(t, c.Members[c.Leader()].DB, `CREATE TABLE w(
		id INTEGER PRIMARY KEY AUTOINCREMENT, node TEXT, r INT, rb BLOB,
		at DEFAULT CURRENT_TIMESTAMP, now TEXT, j REAL)`)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, i := range c.Alive() {
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := c.Members[i].DB
				for k := range 15 {
					var err error
					if k%3 == 0 {
						var id int64
						err = db.QueryRow(`INSERT INTO w(node, r, rb, now, j) VALUES (?, random(), randomblob(8), datetime('now'), julianday('now')) RETURNING id`,
							fmt.Sprint(c.Members[i].ID, "/", g)).Scan(&id)
					} else if k%3 == 1 {
						_, err = db.Exec(`UPDATE w SET r = random() WHERE id = (SELECT max(id) FROM w)`)
					} else {
						err = inTx(db, func(tx *sql.Tx) error {
							_, err := tx.Exec(`INSERT INTO w(node, r) VALUES (?, abs(random()) % 1000)`, c.Members[i].ID)
							return err
						})
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.EnsureSame()
}

// inTx runs fn in a transaction, retrying on SQLITE_BUSY and ErrNotApplied
// (a leader change before COMMIT) as an application would.
func inTx(db *sql.DB, fn func(*sql.Tx) error) error {
	for {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		err = fn(tx)
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		// Both are safe to retry: the transaction did not commit.
		if !errors.Is(err, sqlite3.BUSY) && !errors.Is(err, hiqlite.ErrNotApplied) {
			return err
		}
	}
}

// TestClusterFailover kills the leader: writes resume on a new leader, and
// the old leader rejoins and catches up.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE fo(x)`)
	for i := range 10 {
		mustExec(t, c.Members[l].DB, `INSERT INTO fo VALUES (?)`, i)
	}
	c.EnsureSame()
	killed := time.Now()
	c.Kill(l)
	survivor := c.Alive()[0]
	var took time.Duration
	c.WaitFor("a write after the leader was killed", 30*time.Second, func() bool {
		_, err := c.Members[survivor].DB.Exec(`INSERT INTO fo VALUES (100)`)
		took = time.Since(killed)
		return err == nil
	})
	t.Logf("fail-over: first successful write %v after the leader was killed", took)
	for i := range 10 {
		mustExec(t, c.Members[survivor].DB, `INSERT INTO fo VALUES (?)`, 200+i)
	}
	c.Start(l)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()
	if n := count(t, c.Members[l].DB, `SELECT count(*) FROM fo`); n != 21 {
		t.Errorf("the old leader has %d rows after rejoining, want 21", n)
	}
}

// TestClusterFollowerCatchUp: a follower restarted after missing writes, and
// one whose DATA_DIR was wiped, both catch up.
func TestClusterFollowerCatchUp(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	f := c.Follower()
	mustExec(t, c.Members[l].DB, `CREATE TABLE cu(x)`)
	c.Kill(f)
	for i := range 20 {
		mustExec(t, c.Members[l].DB, `INSERT INTO cu VALUES (?)`, i)
	}
	c.Start(f)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()

	c.Kill(f)
	c.Wipe(f)
	for i := range 5 {
		mustExec(t, c.Members[l].DB, `INSERT INTO cu VALUES (?)`, 100+i)
	}
	c.Start(f)
	c.WaitReady(30 * time.Second)
	c.EnsureSame()
	if n := count(t, c.Members[f].DB, `SELECT count(*) FROM cu`); n != 25 {
		t.Errorf("wiped follower has %d rows, want 25", n)
	}
}

// TestClusterReap: a follower that stays dead longer than _reap is removed
// from the Raft configuration by the leader, and the two survivors, now a
// cluster of two, keep serving writes. Restarted, the reaped node is added
// back and catches up.
func TestClusterReap(t *testing.T) {
	t.Parallel()
	const reap = time.Second
	c := clustertest.New(t, 3, "_reap="+reap.String())
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE rp(x)`)
	f := c.Follower()
	dead := c.Members[f].ID
	killed := time.Now()
	c.Kill(f)

	// Gossip needs seconds to declare the node dead (about 7 s here), and
	// _reap runs from then. The bound is generous because memberlist
	// stretches its probe interval up to eightfold on a node it finds
	// overloaded, as a busy test machine can make it.
	c.WaitFor(dead+" reaped from the configuration of every survivor", 2*time.Minute, func() bool {
		for _, i := range c.Alive() {
			ms, err := c.Members[i].Node.Members()
			if err != nil || len(ms) != 2 || memberIndex(ms, dead) >= 0 {
				return false
			}
		}
		return true
	})
	took := time.Since(killed)
	t.Logf("%s reaped %v after it was killed (_reap=%v)", dead, took, reap)
	if took < reap {
		t.Errorf("%s reaped %v after it was killed, before _reap=%v", dead, took, reap)
	}
	for _, i := range c.Alive() {
		for k := range 5 {
			mustExec(t, c.Members[i].DB, `INSERT INTO rp VALUES (?)`, fmt.Sprint(c.Members[i].ID, "/", k))
		}
	}
	c.EnsureSame()

	c.Start(f)
	c.WaitFor(dead+" added back as a voter", 60*time.Second, func() bool {
		ms, err := c.Members[c.Leader()].Node.Members()
		i := memberIndex(ms, dead)
		return err == nil && len(ms) == 3 && i >= 0 && ms[i].Voter
	})
	c.WaitReady(30 * time.Second)
	mustExec(t, c.Members[f].DB, `INSERT INTO rp VALUES ('back')`)
	c.EnsureSame()
	if n := count(t, c.Members[f].DB, `SELECT count(*) FROM rp`); n != 11 {
		t.Errorf("the reaped node has %d rows after it came back, want 11", n)
	}
}

// memberIndex returns the index of the server id in ms, or -1.
func memberIndex(ms []hiqlite.Member, id string) int {
	return slices.IndexFunc(ms, func(m hiqlite.Member) bool { return m.ID == id })
}
