package hiqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
	"github.com/hiqlite/hiqlite/internal/damage"
)

// corruptWorkload is a table of many pages and the ids of the rows the
// cluster acknowledged.
type corruptWorkload struct {
	c     *clustertest.Cluster
	acked []int64
}

// write inserts n acknowledged rows of about 1 KiB through the leader.
func (w *corruptWorkload) write(t *testing.T, n int) {
	t.Helper()
	db := w.c.Members[w.c.Leader()].DB
	for range n {
		res, err := db.Exec(`INSERT INTO t(v) VALUES (hex(randomblob(512)))`)
		if err != nil {
			t.Fatal(err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			t.Fatal(err)
		}
		w.acked = append(w.acked, id)
	}
}

// check waits until every running member holds the same tables and checks
// that member i holds every acknowledged row.
func (w *corruptWorkload) check(t *testing.T, i int) {
	t.Helper()
	w.c.EnsureSame()
	var n int
	var sum int64
	if err := w.c.Members[i].DB.QueryRow(`SELECT count(*), sum(length(v)) FROM t WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(w.acked)).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != len(w.acked) || sum != int64(1024*len(w.acked)) {
		t.Fatalf("%s holds %d of the %d acknowledged rows (%d bytes)", w.c.Members[i].ID, n, len(w.acked), sum)
	}
}

func idsJSON(ids []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return b.String()
}

func newCorruptWorkload(t *testing.T) *corruptWorkload {
	t.Helper()
	w := &corruptWorkload{c: clustertest.New(t, 3)}
	if _, err := w.c.Members[w.c.Leader()].DB.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	w.write(t, 300) // about 80 leaf pages of 4 KiB
	return w
}

// movedAside returns the damaged databases kept in member m's DATA_DIR.
func movedAside(t *testing.T, m *clustertest.Member) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(m.Dir, "hiqlite.db.corrupt-*"))
	if err != nil {
		t.Fatal(err)
	}
	var dbs []string
	for _, name := range names {
		if !strings.Contains(strings.TrimPrefix(filepath.Base(name), "hiqlite.db.corrupt-"), "-") {
			dbs = append(dbs, name) // not its -wal, -shm or -corrupt
		}
	}
	return dbs
}

// TestCorruptFollowerHeals flips bytes in the database of a stopped
// follower, in a data page of a table and, separately, in the file's
// header. Started again, the follower finds it (quick_check, or SQLite
// refusing the file), moves it aside, rebuilds it from its snapshot and
// log, and ends identical to the others with every acknowledged write,
// including those made while it was down.
func TestCorruptFollowerHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	for _, tc := range []struct {
		name   string
		damage func(t testing.TB, path string)
	}{
		{"table page", func(t testing.TB, path string) { damage.TableData(t, path, "t") }},
		{"header", damage.Header},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCorruptWorkload(t)
			v := w.c.Follower()
			m := w.c.Members[v]
			w.c.EnsureSame()
			// The rebuild installs this snapshot, then replays the log
			// after it.
			if err := m.Node.Snapshot(); err != nil {
				t.Fatal(err)
			}
			w.write(t, 20)
			w.c.EnsureSame()
			path := filepath.Join(m.Node.DataDir(), "hiqlite.db")
			w.c.Kill(v)
			damage.Checkpoint(t, path)
			tc.damage(t, path)
			w.write(t, 20)

			start := time.Now()
			w.c.Start(v)
			m = w.c.Members[v]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := m.Node.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			w.check(t, v)
			t.Logf("healed in %v", time.Since(start).Round(time.Millisecond))
			if err := m.Node.Fault(); err != nil {
				t.Fatalf("fault after the rebuild: %v", err)
			}
			if aside := movedAside(t, m); len(aside) != 1 {
				t.Fatalf("moved aside: %q, want the damaged database", aside)
			}
			w.write(t, 10)
			w.check(t, v)
		})
	}
}

// TestCorruptRunningFollower damages a page of a table under a running
// follower. The first to find it, a read on the follower or the apply of
// an UPDATE of every row, stops the node with SQLITE_CORRUPT (Fault says
// so and how it heals) while the cluster goes on; the restart the fault
// asks for rebuilds the database.
func TestCorruptRunningFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	for _, tc := range []struct {
		name string
		find func(t *testing.T, w *corruptWorkload, m *clustertest.Member)
	}{
		{"read", func(t *testing.T, w *corruptWorkload, m *clustertest.Member) {
			// A new read connection: its page cache never held the page.
			m.DB.SetMaxIdleConns(0)
			var n, sum int64
			err := m.DB.QueryRow(`SELECT count(*), sum(length(v)) FROM t`).Scan(&n, &sum)
			if !errors.Is(err, sqlite3.CORRUPT) {
				t.Fatalf("read of the damaged table: %v, want SQLITE_CORRUPT", err)
			}
		}},
		{"apply", func(t *testing.T, w *corruptWorkload, m *clustertest.Member) {
			if _, err := w.c.Members[w.c.Leader()].DB.Exec(`UPDATE t SET v = lower(v)`); err != nil {
				t.Fatal(err)
			}
			w.c.WaitFor(m.ID+" to stop applying", 30*time.Second, func() bool { return m.Node.Fault() != nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCorruptWorkload(t)
			v := w.c.Follower()
			w.c.EnsureSame()
			m := w.c.Members[v]
			path := filepath.Join(m.Node.DataDir(), "hiqlite.db")
			damage.Checkpoint(t, path)
			damage.TableData(t, path, "t")
			tc.find(t, w, m)
			fault := m.Node.Fault()
			if fault == nil || !errors.Is(fault, sqlite3.CORRUPT) || !strings.Contains(fault.Error(), "restart the node") {
				t.Fatalf("Fault() = %v, want the corruption and how it heals", fault)
			}
			if err := m.DB.Ping(); err == nil {
				t.Errorf("Ping of a faulted node succeeded")
			}
			t.Logf("fault: %v", fault)
			w.write(t, 20) // the other two go on

			w.c.Restart(v)
			m = w.c.Members[v]
			w.check(t, v)
			if err := m.Node.Fault(); err != nil {
				t.Fatalf("fault after the restart: %v", err)
			}
			if aside := movedAside(t, m); len(aside) != 1 {
				t.Fatalf("moved aside: %q, want the damaged database", aside)
			}
			if _, err := os.Stat(path + "-corrupt"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the corruption marker outlived the rebuild: %v", err)
			}
		})
	}
}

// TestCorruptSingleNodeHeals: a node without a cluster has no leader to
// copy from, and rebuilds a damaged database from its own snapshot and
// log.
func TestCorruptSingleNodeHeals(t *testing.T) {
	dir := t.TempDir()
	db := openDir(t, dir)
	mustExec(t, db, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	for i := range 300 {
		if i == 200 {
			n, err := hiqlite.NodeOf(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
		mustExec(t, db, `INSERT INTO t(v) VALUES (hex(randomblob(512)))`)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hiqlite.db")
	damage.Checkpoint(t, path)
	damage.TableData(t, path, "t")

	db = openDir(t, dir)
	var n, sum int64
	if err := db.QueryRow(`SELECT count(*), sum(length(v)) FROM t`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 300 || sum != 300*1024 {
		t.Fatalf("after the rebuild: %d rows, %d bytes; want 300 rows of 1024", n, sum)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) == 0 {
		t.Fatal("the damaged database was not kept")
	}
}

// TestCorruptOnlyCopyKept: a single node whose raft log is gone has
// nothing to rebuild a damaged database from; it must not start empty
// over it, but fail and leave the file where it is.
func TestCorruptOnlyCopyKept(t *testing.T) {
	dir := t.TempDir()
	db := openDir(t, dir)
	mustExec(t, db, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	for range 300 {
		mustExec(t, db, `INSERT INTO t(v) VALUES (hex(randomblob(512)))`)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hiqlite.db")
	damage.Checkpoint(t, path)
	damage.TableData(t, path, "t")

	db, err := sql.Open("hiqlite", dir) // opens the node
	if err == nil {
		err = db.Ping()
		db.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "no raft log to rebuild it from") {
		t.Fatalf("open of a corrupt only copy: %v, want a refusal", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the only copy was moved: %v", err)
	}
}

// TestCorruptRunningLeader: corruption found by a read on the leader
// stops that node, and the cluster elects another leader and goes on
// taking writes, from the followers too; a stopped leader that kept
// leading would fail every write of the cluster until it restarted.
func TestCorruptRunningLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	w := newCorruptWorkload(t)
	l := w.c.Leader()
	w.c.EnsureSame()
	m := w.c.Members[l]
	path := filepath.Join(m.Node.DataDir(), "hiqlite.db")
	damage.Checkpoint(t, path)
	damage.TableData(t, path, "t")
	m.DB.SetMaxIdleConns(0) // a new read connection: its page cache never held the page
	var n, sum int64
	if err := m.DB.QueryRow(`SELECT count(*), sum(length(v)) FROM t`).Scan(&n, &sum); !errors.Is(err, sqlite3.CORRUPT) {
		t.Fatalf("read of the damaged table: %v, want SQLITE_CORRUPT", err)
	}
	if err := m.Node.Fault(); !errors.Is(err, sqlite3.CORRUPT) {
		t.Fatalf("Fault() = %v, want the corruption", err)
	}
	f := (l + 1) % len(w.c.Members)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := w.c.Members[f].DB.ExecContext(ctx, `INSERT INTO t(v) VALUES (hex(randomblob(512)))`); err != nil {
		t.Fatalf("write through a follower after the leader stopped: %v", err)
	}
	w.c.WaitFor("another leader", 15*time.Second, func() bool {
		id, _ := w.c.Members[f].Node.Leader()
		return id != "" && id != m.ID
	})
}
