package hiqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hiqlite/hiqlite"
)

// openExample opens a single node in a temporary directory and waits until
// it leads.
func openExample() (db *sql.DB, node *hiqlite.Node, cleanup func()) {
	dir, err := os.MkdirTemp("", "hiqlite-example-*")
	if err != nil {
		log.Fatal(err)
	}
	db, err = sql.Open("hiqlite", dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if node, err = hiqlite.NodeOf(ctx, db); err != nil {
		log.Fatal(err)
	}
	if err := node.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
	return db, node, func() { db.Close(); os.RemoveAll(dir) }
}

// A trigger notifies a channel for every order; the listener gets the
// notifications of the writes that committed, in order.
func ExampleNode_Listen() {
	db, node, cleanup := openExample()
	defer cleanup()
	ctx := context.Background()

	_, err := db.ExecContext(ctx, `CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT NOT NULL);
		CREATE TRIGGER order_placed AFTER INSERT ON orders
		BEGIN SELECT hiqlite_notify('orders', NEW.item); END`)
	if err != nil {
		log.Fatal(err)
	}
	l, err := node.Listen(ctx, "orders")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	db.ExecContext(ctx, `INSERT INTO orders(item) VALUES ('tea')`)
	tx, _ := db.BeginTx(ctx, nil)
	tx.ExecContext(ctx, `INSERT INTO orders(item) VALUES ('never')`)
	tx.Rollback()
	db.ExecContext(ctx, `INSERT INTO orders(item) VALUES ('cake')`)
	node.Notify(ctx, "orders", "from Go")

	for range 3 {
		n, err := l.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n.Channel, n.Payload)
	}
	// Output:
	// orders tea
	// orders cake
	// orders from Go
}

// A cache entry with a TTL, and an atomic compare-and-set.
func ExampleNode_Cache() {
	_, node, cleanup := openExample()
	defer cleanup()
	ctx := context.Background()

	sessions := node.Cache("sessions")
	if err := sessions.Set(ctx, "token-1", []byte("ada"), 30*time.Minute); err != nil {
		log.Fatal(err)
	}
	v, ok := sessions.Get("token-1")
	fmt.Println(string(v), ok)

	swapped, _ := sessions.CompareAndSet(ctx, "token-1", []byte("grace"), []byte("eve"), 0)
	fmt.Println("swapped:", swapped)
	// Output:
	// ada true
	// swapped: false
}

// Leases of a lock carry growing fencing tokens.
func ExampleNode_Lock() {
	_, node, cleanup := openExample()
	defer cleanup()
	ctx := context.Background()

	first, err := node.Lock(ctx, "nightly-report", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	_, err = node.TryLock(ctx, "nightly-report", time.Minute)
	fmt.Println("while held:", err)
	first.Unlock(ctx)

	second, err := node.Lock(ctx, "nightly-report", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	defer second.Unlock(ctx)
	fmt.Println("token grows:", second.Token() > first.Token())
	// Output:
	// while held: hiqlite: lock is held: "nightly-report"
	// token grows: true
}
