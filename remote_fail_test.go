package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// TestRemoteRefused: a client with the wrong secret, or under mutual TLS
// with no certificate or one the nodes' CA did not sign, is refused with
// an error that says why; a right one works.
func TestRemoteRefused(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "remote CA")
	c, certs := newTLSCluster(t, 3, ca)
	host := c.Members[0].Listen
	good := certs[c.Members[0].ID]
	other := writeNodeCert(t, newTestCA(t, "stranger CA"), ca, time.Now().Add(time.Hour))

	open := func(params ...string) error {
		dsn := hiqlite.RemotePrefix + host + "?" + strings.Join(params, "&")
		db, err := sql.Open("hiqlite", dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return db.PingContext(ctx)
	}
	secret := "_secret=" + url.QueryEscape(clustertest.Secret)
	tlsOf := func(nc nodeCert) []string {
		return []string{"_tls_cert=" + nc.cert, "_tls_key=" + nc.key, "_tls_ca=" + nc.ca}
	}
	if err := open(append(tlsOf(good), secret)...); err != nil {
		t.Fatalf("right secret and certificate: %v", err)
	}
	err := open(append(tlsOf(good), "_secret=not-the-cluster-secret-at-all")...)
	if !errors.Is(err, nodeport.ErrAuth) || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("wrong secret: %v, want an authentication error naming the secret", err)
	}
	if strings.Contains(err.Error(), "not-the-cluster-secret") {
		t.Fatalf("the error shows the secret: %v", err)
	}
	err = open(append(tlsOf(other), secret)...)
	if err == nil || !strings.Contains(err.Error(), "refused this client's TLS certificate") {
		t.Fatalf("certificate of another CA: %v, want a refusal of the client's certificate", err)
	}
	err = open(secret)
	if err == nil {
		t.Fatal("a clear-text client of a TLS cluster was let in")
	}
}

// TestRemoteFailover: a remote client that knows every member keeps
// writing, in autocommit statements and transactions, across the kill of
// the leader and then of the member it is attached to; every acknowledged
// write is there exactly once.
func TestRemoteFailover(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE f(k INTEGER PRIMARY KEY)`)
	db := openRemote(t, c)
	db.SetMaxOpenConns(2)
	key := 0
	var acked []int
	write := func(phase string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		key++
		k := key
		var err error
		if k%2 == 0 {
			_, err = db.ExecContext(ctx, `INSERT INTO f VALUES (?)`, k)
		} else {
			err = txInsertRemote(ctx, db, k)
		}
		if err != nil {
			t.Fatalf("%s: write %d: %v", phase, k, err)
		}
		acked = append(acked, k)
	}
	for range 10 {
		write("before")
	}
	c.Kill(l)
	for range 10 {
		write("after the leader's kill")
	}
	// Kill the member the client's connections are on now.
	attached := attachedMember(t, c, db)
	c.Kill(attached)
	if len(c.Alive()) < 1 {
		t.Fatal("no member left")
	}
	c.Start(l)
	for range 10 {
		write("after its member's kill")
	}
	if now := attachedMember(t, c, db); now == attached {
		t.Fatalf("still attached to %s, which was killed", c.Members[now].ID)
	}
	var n, distinct int
	ctx := hiqlite.WithConsistency(context.Background(), hiqlite.Linearizable)
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT k) FROM f`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != len(acked) || distinct != n {
		t.Fatalf("%d rows (%d distinct), want the %d acknowledged", n, distinct, len(acked))
	}
}

func txInsertRemote(ctx context.Context, db *sql.DB, k int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO f VALUES (?)`, k); err != nil {
		return err
	}
	return tx.Commit()
}

// attachedMember is the index of the member a connection of db is a
// session on: the one whose node id its status function returns.
func attachedMember(t *testing.T, c *clustertest.Cluster, db *sql.DB) int {
	t.Helper()
	var id string
	if err := db.QueryRow(`SELECT hiqlite_node_id()`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for i, m := range c.Members {
		if m.ID == id {
			return i
		}
	}
	t.Fatalf("no member %q", id)
	return -1
}

// TestRemoteCloseLeavesNoGoroutine: a closed remote *sql.DB leaves no
// goroutine behind, on the client or on the member.
func TestRemoteCloseLeavesNoGoroutine(t *testing.T) {
	c := clustertest.New(t, 1)
	before := runtime.NumGoroutine()
	db, err := sql.Open("hiqlite", c.RemoteDSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	conns := make([]*sql.Conn, 4)
	for i := range conns {
		if conns[i], err = db.Conn(context.Background()); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conns[i].QueryRowContext(context.Background(), `SELECT 1`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	for _, cn := range conns {
		cn.Close()
	}
	db.Close()
	waitfor.Cond(t, "the goroutines of the closed client and its sessions to end", 10*time.Second, func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestRemoteFailoverInFlight kills the member a remote client's writers
// are attached to while they write, in autocommit statements
// and transactions: every write acknowledged is there exactly once, every
// one reported as not applied or aborted is not there, and the writers go
// on through another member.
func TestRemoteFailoverInFlight(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, 3)
	l := c.Leader()
	mustExec(t, c.Members[l].DB, `CREATE TABLE fi(k INTEGER PRIMARY KEY)`)
	db, err := sql.Open("hiqlite", c.RemoteDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The connector starts at a random host and keeps to it: every
	// session is on this member (the leader or a follower).
	victim := attachedMember(t, c, db)
	t.Logf("attached to %s; leader %s", c.Members[victim].ID, c.Members[l].ID)

	type outcome struct {
		k   int
		err error
	}
	const writers = 4
	var (
		mu      sync.Mutex
		results []outcome
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(results)
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100_000 {
				select {
				case <-stop:
					return
				default:
				}
				k := w*1_000_000 + i
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var err error
				if i%2 == 0 {
					_, err = db.ExecContext(ctx, `INSERT INTO fi VALUES (?)`, k)
				} else {
					tx, berr := db.BeginTx(ctx, nil)
					if err = berr; err == nil {
						if _, err = tx.ExecContext(ctx, `INSERT INTO fi VALUES (?)`, k); err == nil {
							err = tx.Commit()
						} else {
							tx.Rollback()
						}
					}
				}
				cancel()
				mu.Lock()
				results = append(results, outcome{k, err})
				mu.Unlock()
			}
		}()
	}
	waitfor.Cond(t, "writes before the kill", 20*time.Second, func() bool { return count() >= 40 })
	began := time.Now()
	c.Kill(victim)
	t.Logf("the kill took %v", time.Since(began).Round(time.Millisecond))
	before := count()
	waitfor.Cond(t, "writes after the kill", 60*time.Second, func() bool { return count() >= before+40 })
	close(stop)
	wg.Wait()

	ctx := hiqlite.WithConsistency(context.Background(), hiqlite.Linearizable)
	present := map[int]bool{}
	rows, err := db.QueryContext(ctx, `SELECT k FROM fi`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		present[k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var acked, failed, unknown int
	for _, o := range results {
		switch {
		case o.err == nil:
			acked++
			if !present[o.k] {
				t.Errorf("acknowledged write %d is missing", o.k)
			}
		case errors.Is(o.err, hiqlite.ErrOutcomeUnknown):
			unknown++
			t.Logf("write %d: %v", o.k, o.err)
		default:
			failed++
			if present[o.k] && (errors.Is(o.err, hiqlite.ErrNotApplied) || errors.Is(o.err, hiqlite.ErrTxAborted)) {
				t.Errorf("write %d failed with %v but is there", o.k, o.err)
			}
			t.Logf("write %d: %v", o.k, o.err)
		}
	}
	t.Logf("%d acknowledged, %d failed, %d unknown; %d rows", acked, failed, unknown, len(present))
	if acked < 80 {
		t.Errorf("only %d writes acknowledged", acked)
	}
}

// TestRemoteSessionLimit: a member serving its limit of remote sessions
// refuses the next with an error that says so; a client that knows
// another member goes there.
func TestRemoteSessionLimit(t *testing.T) {
	c := clustertest.New(t, 3)
	old := hiqlite.SetMaxClientSessions(2)
	defer hiqlite.SetMaxClientSessions(old)
	f := c.Follower()
	db := openRemote(t, c, f)
	ctx := context.Background()
	var conns []*sql.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for range 2 {
		cn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
	}
	_, err := db.Conn(ctx)
	if err == nil || !strings.Contains(err.Error(), "remote sessions already, its limit") {
		t.Fatalf("third session on a member with a limit of 2: %v", err)
	}
	// A client that knows another member gets its sessions there.
	other := (f + 1) % len(c.Members)
	db2 := openRemote(t, c, f, other)
	for range 2 {
		cn, err := db2.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
	}
}
