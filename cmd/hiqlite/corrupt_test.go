package main

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/damage"
)

// TestHealthzCorruptRead: a read that finds the node's database corrupt
// turns /healthz to 503 with a fault that says how the node heals, and
// /status shows it.
func TestHealthzCorruptRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	db, err := sql.Open("hiqlite", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	node, err := hiqlite.NodeOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300)
		INSERT INTO t(v) SELECT hex(randomblob(512)) FROM c`); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newStatusHandler(node, httpAccess{}))
	defer srv.Close()
	if code, _, body := httpGet(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz before the damage: %d %q", code, body)
	}

	path := filepath.Join(dir, "hiqlite.db")
	damage.Checkpoint(t, path)
	damage.TableData(t, path, "t")
	db.SetMaxIdleConns(0) // a new read connection, whose cache never held the page
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t WHERE length(v) > 0`).Scan(&n); err == nil {
		t.Fatalf("read of the damaged table found %d rows and no error", n)
	}
	code, _, body := httpGet(t, srv.URL+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database corrupt; restart the node") {
		t.Errorf("GET /healthz after a corrupt read: %d %q", code, body)
	}
	if st := getStatus(t, srv.URL); !strings.Contains(st.Fault, "malformed") {
		t.Errorf("GET /status fault %q, want the corruption", st.Fault)
	}
}
