package hiqlite_test

import (
	"database/sql"
	"testing"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// BenchmarkClusterTx measures committed write transactions (BEGIN; INSERT;
// COMMIT) on a three-node loopback cluster, begun on the leader and on a
// follower (forwarded over one RPC session each), with 1 and 16 clients.
// Transactions take the leader's one write slot in turn; a client that
// waited longer than _busy retries (inTx), as an application would.
func BenchmarkClusterTx(b *testing.B) {
	c := clustertest.New(b, 3)
	mustExec(b, c.Members[c.Leader()].DB, `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT)`)
	for _, on := range []string{"leader", "follower"} {
		for _, clients := range []int{1, 16} {
			b.Run(on+"/"+itoa(clients), func(b *testing.B) {
				db := c.Members[c.Leader()].DB
				if on == "follower" {
					db = c.Members[c.Follower()].DB
				}
				concurrently(b, clients, "tx/s", func() error {
					return inTx(db, func(tx *sql.Tx) error {
						_, err := tx.Exec(`INSERT INTO k(v) VALUES (?)`, "x")
						return err
					})
				})
			})
		}
	}
}
