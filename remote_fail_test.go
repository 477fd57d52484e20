package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"runtime"
	"strings"
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
