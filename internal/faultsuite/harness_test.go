package faultsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// Bounds that stop a stuck run; no assertion depends on them.
const (
	startWait   = 90 * time.Second // a node ready, a cluster formed, a catch-up
	exitWait    = 30 * time.Second // a process gone after a signal
	httpTimeout = 10 * time.Second // one request, beyond the op's own 5s
	secret      = "faultsuite-cluster-secret"
)

// buildBinary builds cmd/hiqlite with the workload endpoints (-tags
// faultsuite) into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(dir, "hiqlite-faultsuite")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-tags", "faultsuite", "-o", bin, "../../cmd/hiqlite")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags faultsuite: %v\n%s", err, out)
	}
	return bin
}

// node is one "hiqlite serve" process and its data directory.
type node struct {
	i                    int
	name, dir            string
	listen, gossip, http string
	args                 []string
	out                  syncBuffer // every run's output

	mu     sync.Mutex // guards what follows
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	err    error         // cmd.Wait's answer, after done
	paused bool
	limit  int64 // the file size limit of the current run in 512-byte blocks; 0: none
}

// cluster is the nodes under test and how to reach them.
type cluster struct {
	bin   string
	net   network
	nodes []*node
	http  *http.Client
}

func newCluster(t *testing.T, bin, dir string, n int, net network) *cluster {
	c := &cluster{bin: bin, net: net, http: &http.Client{
		Timeout: httpTimeout,
		// A connection per request: a killed or paused node never holds
		// a client's idle connection.
		Transport: &http.Transport{DisableKeepAlives: true},
	}}
	var seeds []string
	for i := range n {
		nd := &node{i: i, name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
		nd.listen, nd.gossip, nd.http = net.addrs(t, i)
		c.nodes = append(c.nodes, nd)
		seeds = append(seeds, nd.gossip)
	}
	for _, nd := range c.nodes {
		dsn := fmt.Sprintf("%s?_node=%s&_listen=%s&_gossip=%s&_join=%s&_expect=%d&_secret=%s&_busy=1s&_snapshot_entries=64&_log_segment=1MiB",
			nd.dir, nd.name, nd.listen, nd.gossip, strings.Join(seeds, ","), n, secret)
		nd.args = []string{"serve", "--dsn", dsn, "--http", nd.http}
	}
	return c
}

// start starts nd, under a file size limit of limit 512-byte blocks when
// limit > 0 (ulimit -f: Go ignores SIGXFSZ, so writes past it fail with
// EFBIG, as on a full disk).
func (c *cluster) start(nd *node, limit int64) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.done != nil {
		select {
		case <-nd.done:
		default:
			return fmt.Errorf("%s is still running", nd.name)
		}
	}
	var cmd *exec.Cmd
	if limit > 0 {
		script := fmt.Sprintf(`ulimit -f %d && exec "$0" "$@"`, limit)
		cmd = c.net.command(nd.i, "sh", append([]string{"-c", script, c.bin}, nd.args...)...)
	} else {
		cmd = c.net.command(nd.i, c.bin, nd.args...)
	}
	cmd.Stdout, cmd.Stderr = &nd.out, &nd.out
	fmt.Fprintf(&nd.out, "--- %s start (file size limit %d blocks)\n", nd.name, limit)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", nd.name, err)
	}
	done := make(chan struct{})
	nd.cmd, nd.done, nd.paused, nd.limit = cmd, done, false, limit
	go func() {
		err := cmd.Wait()
		nd.mu.Lock()
		nd.err = err
		nd.mu.Unlock()
		fmt.Fprintf(&nd.out, "--- %s exited: %v\n", nd.name, err)
		close(done)
	}()
	return nil
}

func (nd *node) running() bool {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig to nd's process if it runs.
func (nd *node) signal(sig syscall.Signal) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil || nd.cmd.Process == nil {
		return fmt.Errorf("%s never started", nd.name)
	}
	switch sig {
	case syscall.SIGSTOP:
		nd.paused = true
	case syscall.SIGCONT:
		nd.paused = false
	}
	return nd.cmd.Process.Signal(sig)
}

// wait waits for nd's process to exit and answers how it ended.
func (nd *node) wait() error {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		nd.mu.Lock()
		defer nd.mu.Unlock()
		return nd.err
	case <-time.After(exitWait):
		return fmt.Errorf("%s still runs %v after the signal", nd.name, exitWait)
	}
}

// kill sends SIGKILL (after SIGCONT, were it paused) and waits for the end.
func (nd *node) kill() error {
	if !nd.running() {
		return nil
	}
	nd.signal(syscall.SIGKILL)
	err := nd.wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // killed, as asked
	}
	return err
}

// tail answers the last lines of nd's output.
func (nd *node) tail(lines int) string {
	s := strings.TrimRight(nd.out.String(), "\n")
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// call sends a request to nd's /x/ endpoint path with params and decodes
// the reply. A request that never reached the node (refused connection)
// answers Fail; one whose answer was lost answers Info.
func (c *cluster) call(ctx context.Context, nd *node, method, path string, params map[string]int64, extra url.Values) Reply {
	q := url.Values{}
	for k, v := range params {
		q.Set(k, fmt.Sprint(v))
	}
	for k, v := range extra {
		q[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+nd.http+path+"?"+q.Encode(), nil)
	if err != nil {
		return Reply{Outcome: Fail, Error: err.Error()}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return Reply{Outcome: Fail, Error: err.Error()}
		}
		return Reply{Outcome: Info, Error: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{Outcome: Info, Error: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		// A bad request is the suite's bug: it never ran.
		return Reply{Outcome: Fail, Error: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))}
	}
	var r Reply
	if err := json.Unmarshal(body, &r); err != nil {
		return Reply{Outcome: Info, Error: fmt.Sprintf("%s %s: %v in %q", method, path, err, body)}
	}
	return r
}

// status answers nd's GET /status, or ok false.
func (c *cluster) status(nd *node) (st nodeStatus, ok bool) {
	resp, err := c.http.Get("http://" + nd.http + "/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	return st, true
}

// nodeStatus is what the suite reads of serve's /status.
type nodeStatus struct {
	ID           string `json:"id"`
	LeaderID     string `json:"leader_id"`
	IsLeader     bool   `json:"is_leader"`
	AppliedIndex uint64 `json:"applied_index"`
	Fault        string `json:"fault"`
}

// ready reports whether nd answers /readyz with 200 within a second.
func (c *cluster) ready(nd *node) bool {
	resp, err := c.http.Get("http://" + nd.http + "/readyz?timeout=1s")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// leader answers the index of the node that says it leads, or -1.
func (c *cluster) leader() int {
	for _, nd := range c.nodes {
		if nd.running() && !nd.isPaused() {
			if st, ok := c.status(nd); ok && st.IsLeader {
				return nd.i
			}
		}
	}
	return -1
}

func (nd *node) isPaused() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.paused
}

// waitAllReady waits until every node answers /readyz.
func (c *cluster) waitAllReady() error {
	var lagging []string
	if waitfor.Until(startWait, func() bool {
		lagging = lagging[:0]
		for _, nd := range c.nodes {
			if !c.ready(nd) {
				lagging = append(lagging, nd.name)
			}
		}
		return len(lagging) == 0
	}) {
		return nil
	}
	// What each lagging node says of itself, so that the report shows
	// why without the node's whole log.
	var says []string
	for _, name := range lagging {
		for _, nd := range c.nodes {
			if nd.name != name {
				continue
			}
			switch st, ok := c.status(nd); {
			case !nd.running():
				says = append(says, name+": not running")
			case !ok:
				says = append(says, name+": no answer to /status")
			default:
				says = append(says, fmt.Sprintf("%s: leader %q, applied index %d, fault %q", name, st.LeaderID, st.AppliedIndex, st.Fault))
			}
		}
	}
	return fmt.Errorf("not ready after %v: %s", startWait, strings.Join(says, "; "))
}

// waitSameApplied waits until every node reports the same applied index
// and no fault, and answers it.
func (c *cluster) waitSameApplied() (uint64, error) {
	var seen []string
	var applied uint64
	ok := waitfor.Until(startWait, func() bool {
		seen = seen[:0]
		same := true
		for i, nd := range c.nodes {
			st, ok := c.status(nd)
			if !ok || st.Fault != "" {
				seen = append(seen, fmt.Sprintf("%s: no status or fault %q", nd.name, st.Fault))
				same = false
				continue
			}
			seen = append(seen, fmt.Sprintf("%s: %d", nd.name, st.AppliedIndex))
			if i == 0 {
				applied = st.AppliedIndex
			} else if st.AppliedIndex != applied {
				same = false
			}
		}
		return same
	})
	if !ok {
		return 0, fmt.Errorf("applied indexes differ after %v: %s", startWait, strings.Join(seen, ", "))
	}
	return applied, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
