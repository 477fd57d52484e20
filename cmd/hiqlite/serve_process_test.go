package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver" // "sqlite3", to read the nodes' files afterwards

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// Bounds of TestServeProcesses. No assertion depends on time: these only
// stop a stuck test.
const (
	procWait      = 60 * time.Second // cluster formed, failover, catch-up, exit
	writesBefore  = 200              // acknowledged writes before the kill
	writesAfter   = 200              // acknowledged writes issued after the kill
	writesRestart = 100              // acknowledged writes after the restart
	writers       = 8
	procSecret    = "serve-process-test-secret"
)

// TestServeProcesses runs a three-node cluster of "hiqlite serve"
// processes and a fourth, non-voting node in the test process that writes
// to it from several goroutines. It kills the leader with SIGKILL in the
// middle of the writes, keeps writing until the cluster has acknowledged
// more writes under a new leader, restarts the killed process and waits
// until it has caught up. After a graceful SIGTERM stop of every process
// it reads each node's database file: every acknowledged row must be on
// every node, and the three nodes must hold the same rows.
//
// Not parallel: between fork and exec a child process holds a copy of
// every descriptor of this process, LOCK files included, so a test that
// closes a node and opens it again while this one starts a process would
// find its data dir locked (see lockDir in package cluster).
func TestServeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs a cluster of processes")
	}
	began := time.Now()
	logf := func(format string, args ...any) { // with the time into the test, for diagnosis only
		t.Helper()
		t.Logf("%5.1fs: "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	bin := buildBinary(t)
	logf("built %s", bin)
	tmp := t.TempDir()

	// Three voters that gossip with each other.
	var procs []*serveProc
	var seeds []string
	for i := range 3 {
		p := &serveProc{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(tmp, fmt.Sprintf("n%d", i+1)), listen: freeAddr(t), gossip: freeAddr(t)}
		procs = append(procs, p)
		seeds = append(seeds, p.gossip)
	}
	cluster := func(listen, gossip string) string { // the DSN parameters every node shares
		return fmt.Sprintf("_listen=%s&_gossip=%s&_join=%s&_expect=3&_secret=%s", listen, gossip, strings.Join(seeds, ","), procSecret)
	}
	for _, p := range procs {
		p.args = []string{"serve", "--dsn", p.dir + "?_node=" + p.name + "&" + cluster(p.listen, p.gossip), "--http", "127.0.0.1:0"}
		p.start(t, bin)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.kill(t)
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("output of %s:\n%s", p.name, p.output())
			}
		}
	})

	for _, p := range procs {
		clustertest.WaitFor(t, p.name+" to answer /readyz with 200", procWait, func() bool {
			code, _, _ := httpGet(t, "http://"+p.http+"/readyz?timeout=1s")
			return code == http.StatusOK
		})
	}
	leader := procLeader(t, procs)
	logf("all three ready; leader %s", procs[leader].name)

	// status of a running node: --dsn is refused (the process holds the
	// dir) and says to use --http, which works.
	cmdCtx, cancelCmds := context.WithTimeout(context.Background(), procWait)
	defer cancelCmds()
	if out, err := exec.CommandContext(cmdCtx, bin, "status", "--dsn", procs[0].dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "hiqlite status --http") {
		t.Errorf("status --dsn of a running node: %v, output:\n%s", err, out)
	}
	if out, err := exec.CommandContext(cmdCtx, bin, "status", "--http", procs[0].http).CombinedOutput(); err != nil || !strings.Contains(string(out), "node:          n1\n") {
		t.Errorf("status --http: %v, output:\n%s", err, out)
	}

	// The client: a non-voting node in this process.
	db := openClient(t, filepath.Join(tmp, "client")+"?_node=client&_voter=false&"+cluster(freeAddr(t), freeAddr(t)))
	defer db.Close()

	// Writers: each insert that returns nil is acknowledged; one that
	// fails may or may not have been applied, and the next uses a new id.
	var (
		rec    ackLog
		nextID atomic.Int64
		failed atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := nextID.Add(1)
				start := time.Now()
				wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := db.ExecContext(wctx, `INSERT INTO acked(id, writer) VALUES (?, ?)`, id, w)
				cancel()
				if err == nil {
					rec.add(id, start)
					continue
				}
				failed.Add(1)
				rec.fail(err)
				select { // back off while the cluster elects a leader
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	}
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopWriters()

	waitAcks := func(what string, cond func(*ackLog) bool) {
		t.Helper()
		clustertest.WaitFor(t, what, procWait, func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return cond(&rec)
		})
	}
	waitAcks(fmt.Sprintf("%d acknowledged writes", writesBefore), func(r *ackLog) bool { return len(r.ids) >= writesBefore })

	// kill -9 the leader.
	killed := procs[leader]
	rec.mu.Lock()
	rec.killAt = time.Now()
	before := len(rec.ids)
	rec.mu.Unlock()
	killed.kill(t)
	logf("killed %s (the leader) with SIGKILL after %d acknowledged writes", killed.name, before)
	waitAcks(fmt.Sprintf("%d acknowledged writes issued after the kill", writesAfter), func(r *ackLog) bool { return r.afterKill >= writesAfter })
	rec.mu.Lock()
	logf("%d writes acknowledged after the kill; the first one issued after it was acknowledged %v after the kill (%d failed writes so far; first failure: %v)",
		rec.afterKill, rec.firstAfterKill.Sub(rec.killAt), failed.Load(), rec.firstErr)
	restartAcks := len(rec.ids)
	rec.mu.Unlock()

	// Restart it: same DSN, same data dir. It catches up while the
	// writes go on.
	killed.start(t, bin)
	clustertest.WaitFor(t, killed.name+" to be ready again", procWait, func() bool {
		code, _, _ := httpGet(t, "http://"+killed.http+"/readyz?timeout=1s")
		return code == http.StatusOK
	})
	logf("%s restarted and ready", killed.name)
	waitAcks(fmt.Sprintf("%d more acknowledged writes after the restart", writesRestart), func(r *ackLog) bool { return len(r.ids) >= restartAcks+writesRestart })
	stopWriters()

	applied := sameAppliedIndex(t, procs)
	newLeader := procLeader(t, procs)
	logf("all nodes at applied index %d; leader now %s; %d acknowledged writes, %d failed", applied, procs[newLeader].name, len(rec.ids), failed.Load())

	// Stop every process as an orchestrator would, then the client.
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %s: %v", p.name, err)
		}
	}
	for _, p := range procs {
		if err := p.wait(procWait); err != nil {
			t.Errorf("%s after SIGTERM: %v", p.name, err)
		}
		if !strings.Contains(p.output(), "stopping node "+p.name) {
			t.Errorf("%s did not say it was stopping", p.name)
		}
	}
	if err := db.Close(); err != nil {
		t.Errorf("close the client: %v", err)
	}
	logf("every process exited after SIGTERM; client closed")

	// Every node holds every acknowledged row, and the same rows.
	ref := checkAcked(t, procs, rec.ids)
	logf("%d rows on every node, %d of them acknowledged", len(ref), len(rec.ids))
}

// ackLog records the acknowledged writes. mu guards every field.
type ackLog struct {
	mu             sync.Mutex
	ids            []int64
	killAt         time.Time // zero until the kill
	afterKill      int       // acknowledged writes issued after killAt
	firstAfterKill time.Time // when the first of them was acknowledged
	firstErr       error     // the first failed write
}

func (r *ackLog) add(id int64, start time.Time) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	if !r.killAt.IsZero() && start.After(r.killAt) {
		if r.afterKill == 0 {
			r.firstAfterKill = now
		}
		r.afterKill++
	}
}

func (r *ackLog) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstErr == nil {
		r.firstErr = err
	}
}

type ackRow struct{ id, writer int64 }

// openClient opens a node in this process with dsn, waits until it is
// ready and creates table acked through it.
func openClient(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(hiqlite.DriverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	node, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if err := node.WaitReady(ctx); err != nil {
		db.Close()
		t.Fatalf("client: %v", err)
	}
	clustertest.WaitFor(t, "the table to be created", procWait, func() bool {
		_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS acked(id INTEGER PRIMARY KEY, writer INTEGER NOT NULL)`)
		return err == nil
	})
	return db
}

// sameAppliedIndex waits until every process reports the same applied
// index on /status, and returns it.
func sameAppliedIndex(t *testing.T, procs []*serveProc) uint64 {
	t.Helper()
	var applied uint64
	clustertest.WaitFor(t, "every node to report the same applied index", procWait, func() bool {
		applied = procs[0].status(t).AppliedIndex
		for _, p := range procs[1:] {
			if p.status(t).AppliedIndex != applied {
				return false
			}
		}
		return true
	})
	return applied
}

// checkAcked reads table acked from every stopped process's database file:
// each must hold every acknowledged id, and all the same rows. It returns
// the rows of the first.
func checkAcked(t *testing.T, procs []*serveProc, acked []int64) []ackRow {
	t.Helper()
	var ref []ackRow
	for i, p := range procs {
		rows := readAcked(t, filepath.Join(p.dir, "hiqlite.db"))
		have := make(map[int64]bool, len(rows))
		for _, r := range rows {
			have[r.id] = true
		}
		missing := 0
		for _, id := range acked {
			if !have[id] {
				missing++
				if missing <= 10 {
					t.Errorf("%s lacks acknowledged row %d", p.name, id)
				}
			}
		}
		if missing > 0 {
			t.Errorf("%s lacks %d of %d acknowledged rows", p.name, missing, len(acked))
		}
		if i == 0 {
			ref = rows
		} else if !slices.Equal(rows, ref) {
			t.Errorf("%s holds %d rows that differ from the %d of %s", p.name, len(rows), len(ref), procs[0].name)
		}
	}
	return ref
}

// readAcked reads table acked from a node's database file with the plain
// SQLite driver, read-only.
func readAcked(t *testing.T, path string) []ackRow {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, writer FROM acked ORDER BY id`)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer rows.Close()
	var out []ackRow
	for rows.Next() {
		var r ackRow
		if err := rows.Scan(&r.id, &r.writer); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// procLeader waits until the running processes agree on a leader, as their
// /status tells, and returns its index.
func procLeader(t *testing.T, procs []*serveProc) int {
	t.Helper()
	leader := -1
	clustertest.WaitFor(t, "the nodes to agree on a leader", procWait, func() bool {
		leader = -1
		id := ""
		for i, p := range procs {
			if !p.running() {
				continue
			}
			st := p.status(t)
			if st.LeaderID == "" || id != "" && st.LeaderID != id {
				return false
			}
			id = st.LeaderID
			if st.IsLeader {
				leader = i
			}
		}
		return leader >= 0 && procs[leader].name == id
	})
	return leader
}

// buildBinary builds cmd/hiqlite (without the race detector, whatever the
// test runs with) into a temporary directory. With the build cache warm
// (go vet ./... compiles the same dependencies) this takes seconds; with a
// cold cache compiling SQLite alone takes minutes on two cores, hence the
// generous bound, which still fits go test's default 10m timeout.
func buildBinary(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "hiqlite")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProc is one "hiqlite serve" process.
type serveProc struct {
	name, dir, listen, gossip string
	args                      []string
	// wrap, when set, runs the binary through it: wrap[0] is the command,
	// then wrap[1:], the binary and args (as "sh -c SCRIPT" takes $0 $@).
	wrap []string
	// https, when set, is the client that reaches the HTTP API over
	// HTTPS (serve's --http-tls-cert), sending token, when set, as the
	// bearer token; else the API is plain HTTP without a token.
	https *http.Client
	token string

	cmd  *exec.Cmd
	out  *syncBuffer   // stdout and stderr of every run
	done chan struct{} // closed once cmd has exited
	err  error         // cmd.Wait's result, after done
	http string        // the bound HTTP address of the current run
}

// start starts the process (again) and waits for its first line.
func (p *serveProc) start(t *testing.T, bin string) {
	t.Helper()
	if p.out == nil {
		p.out = &syncBuffer{}
	}
	if len(p.wrap) > 0 {
		p.cmd = exec.Command(p.wrap[0], append(append(p.wrap[1:len(p.wrap):len(p.wrap)], bin), p.args...)...)
	} else {
		p.cmd = exec.Command(bin, p.args...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	mark := p.out.Len()
	fmt.Fprintf(p.out, "--- start %s\n", p.name)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	cmd := p.cmd
	go func() {
		p.err = cmd.Wait()
		close(done)
	}()
	m := waitMatch(t, func() string { return p.out.String()[mark:] }, firstLine, procWait, done)
	p.http = m[1]
}

func (p *serveProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return p.done != nil
	}
}

// wait waits up to timeout for the process to exit and returns how it
// ended.
func (p *serveProc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return errors.New("still running after " + timeout.String())
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *serveProc) kill(t *testing.T) {
	t.Helper()
	if !p.running() {
		return
	}
	p.cmd.Process.Kill()
	if err := p.wait(procWait); err != nil && !strings.Contains(err.Error(), "killed") {
		t.Errorf("%s: %v", p.name, err)
	}
}

func (p *serveProc) output() string { return p.out.String() }

// get returns the status code, content type and body of GET path on the
// HTTP API of the current run.
func (p *serveProc) get(t *testing.T, path string) (code int, ctype, body string) {
	t.Helper()
	if p.https == nil {
		return httpGet(t, "http://"+p.http+path)
	}
	req, err := http.NewRequest(http.MethodGet, "https://"+p.http+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// status decodes GET /status of the current run.
func (p *serveProc) status(t *testing.T) nodeStatus {
	t.Helper()
	if p.https == nil {
		return getStatus(t, "http://"+p.http)
	}
	code, ctype, body := p.get(t, "/status")
	if code != http.StatusOK || ctype != "application/json" {
		t.Fatalf("GET /status of %s: %d %q %s", p.name, code, ctype, body)
	}
	var s nodeStatus
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("GET /status of %s: %v in %s", p.name, err, body)
	}
	return s
}
