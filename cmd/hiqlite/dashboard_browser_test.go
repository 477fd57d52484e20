package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// browserWait bounds each wait for the page in the browser test.
const browserWait = time.Minute

// dashNode is one node of the browser test's cluster with serve's handler.
type dashNode struct {
	db   *sql.DB
	node *hiqlite.Node
	srv  *httptest.Server
}

// startDashCluster starts three nodes in this process, each with serve's
// HTTP handler, dashboard included, on a loopback port and serve's leader
// reporting, and waits until all three know the same leader.
func startDashCluster(t *testing.T) []*dashNode {
	t.Helper()
	tmp := t.TempDir()
	var listen, gossip []string
	for range 3 {
		listen = append(listen, freeAddr(t))
		gossip = append(gossip, freeAddr(t))
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() }) // runs before the nodes close
	nodes := make([]*dashNode, 3)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		dsn := fmt.Sprintf("%s?_node=%s&_listen=%s&_gossip=%s&_join=%s&_expect=3&_secret=%s",
			filepath.Join(tmp, id), id, listen[i], gossip[i], strings.Join(gossip, ","), procSecret)
		db, err := sql.Open(hiqlite.DriverName, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		node, err := hiqlite.NodeOf(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		leaders := &leaderLog{}
		wg.Go(func() { reportLeader(ctx, node, &syncBuffer{}, leaders) })
		acc := newHTTPAccess(nil, true)
		srv := httptest.NewServer(withDashboard(newStatusHandler(node, acc), db, node, acc, leaders))
		t.Cleanup(srv.Close)
		nodes[i] = &dashNode{db: db, node: node, srv: srv}
	}
	for _, n := range nodes {
		if err := n.node.WaitReady(testContext(t)); err != nil {
			t.Fatalf("node %s: %v", n.node.ID(), err)
		}
	}
	waitfor.Until(browserWait, func() bool { return agreedLeader(nodes) != "" })
	if agreedLeader(nodes) == "" {
		t.Fatal("the three nodes do not agree on a leader")
	}
	return nodes
}

// agreedLeader is the leader all nodes know, or "".
func agreedLeader(nodes []*dashNode) string {
	first, _ := nodes[0].node.Leader()
	for _, n := range nodes[1:] {
		if id, _ := n.node.Leader(); id != first {
			return ""
		}
	}
	return first
}

// newBrowser starts headless Chromium for the test, or skips it when
// Chromium is not installed; with HIQLITE_REQUIRE_BROWSER=1 (as in CI) a
// missing Chromium fails the test instead.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	var exe string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		msg := "the dashboard's browser test needs Chromium (chromium, chromium-browser, google-chrome or headless-shell on PATH); on Debian: apt-get install -y chromium"
		if os.Getenv("HIQLITE_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg + " (HIQLITE_REQUIRE_BROWSER=1)")
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.WindowSize(1280, 1000), chromedp.DisableGPU)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser; it must not run under a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	return ctx
}

// waitJS waits until the JavaScript expression js is truthy on the page,
// across a few page loads (a login reloads the page).
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	var err error
	for range 5 {
		_, err = chromedp.Run(ctx, chromedp.Poll[any](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
		if err == nil || !transientNav(err) {
			break
		}
	}
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, js, err, body)
	}
}

// runSQL types text into the console and runs it.
func runSQL(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("sql"), text),
		chromedp.Click(chromedp.ID("run")),
	)
	if err != nil {
		t.Fatalf("run %q in the console: %v", text, err)
	}
}

func TestDashboardBrowser(t *testing.T) {
	ctx := newBrowser(t)
	nodes := startDashCluster(t)
	leader := agreedLeader(nodes)
	// A follower's dashboard: it must show the whole cluster, not itself.
	var page *dashNode
	for _, n := range nodes {
		if n.node.ID() != leader {
			page = n
			break
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "three members", `document.querySelectorAll("#members tbody tr").length === 3`)
	waitJS(t, ctx, "the leader "+leader+" marked", fmt.Sprintf(
		`document.querySelector("#members tbody tr.leader")?.dataset.node === %q && document.getElementById("leader").textContent === %q`, leader, leader))
	waitJS(t, ctx, "the leader's lag 0 and this node healthy", fmt.Sprintf(
		`document.querySelector("#members tbody tr.leader").children[5].textContent === "0" && document.querySelector("#members tbody tr[data-node='%s']").children[6].textContent === "ok"`, page.node.ID()))
	waitJS(t, ctx, "this node named", fmt.Sprintf(`document.getElementById("self").textContent === %q`, page.node.ID()))
	waitJS(t, ctx, "the first leader in the changes", fmt.Sprintf(
		`document.getElementById("leader-changes").textContent.includes(%q)`, leader))
	members, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#members tbody tr"), tr => tr.dataset.node + ":" + tr.querySelector(".role").textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		id, role, _ := strings.Cut(m, ":")
		if want := map[bool]string{true: "leader", false: "follower"}[id == leader]; role != want {
			t.Errorf("member %s shown as %s, want %s (all: %v)", id, role, want, members)
		}
	}

	runSQL(t, ctx, "SELECT 1+1")
	waitJS(t, ctx, "the result 2", `document.querySelector("#result tbody td")?.textContent === "2" && document.getElementById("error").hidden`)

	runSQL(t, ctx, "SELEC 1+1")
	waitJS(t, ctx, "the syntax error", `!document.getElementById("error").hidden && document.getElementById("error").textContent.includes("syntax error")`)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#result tbody tr").length`)); err != nil || n != 0 {
		t.Errorf("after the error the result still shows %d rows (%v)", n, err)
	}

	// A write through the follower's console goes to the leader, and the
	// result says so; linearizable reads then see it.
	runSQL(t, ctx, "CREATE TABLE seen(x)")
	waitJS(t, ctx, "the write acknowledged", `document.getElementById("result-info").textContent.includes("written through the leader")`)
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("consistency"), "linearizable")); err != nil {
		t.Fatal(err)
	}
	runSQL(t, ctx, "SELECT count(*) AS n FROM seen")
	waitJS(t, ctx, "the linearizable count", `document.querySelector("#result thead th")?.textContent === "n" && document.querySelector("#result tbody td")?.textContent === "0"`)

	// Script injection through data: a node id or a value is shown as text.
	runSQL(t, ctx, `SELECT '<img src=x onerror="document.title=1">' AS v`)
	waitJS(t, ctx, "the markup shown as text", `document.querySelector("#result tbody td")?.textContent.startsWith("<img")`)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#result img").length`)); err != nil || n != 0 {
		t.Errorf("a value became %d img elements (%v)", n, err)
	}

	if shot := os.Getenv("HIQLITE_DASHBOARD_SCREENSHOT"); shot != "" {
		screenshot(t, ctx, nodes, leader, shot)
	}
}

// screenshot saves a picture of the page to path while the cluster takes
// writes: a documentation aid, run with HIQLITE_DASHBOARD_SCREENSHOT=FILE.
func screenshot(t *testing.T, ctx context.Context, nodes []*dashNode, leader, path string) {
	var db *sql.DB
	for _, n := range nodes {
		if n.node.ID() == leader {
			db = n.db
		}
	}
	if _, err := db.Exec("CREATE TABLE load(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(done); wg.Wait() }()
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO load(v) VALUES (?)", fmt.Sprint("row ", i)); err != nil {
				return
			}
		}
	})
	runSQL(t, ctx, "SELECT node_id, state, is_leader, applied_index FROM hiqlite_nodes")
	// The page's sparkline (its global spark) gathers a few rates.
	waitJS(t, ctx, "a few write rates", `spark.length >= 10 && parseFloat(document.getElementById("write-rate").textContent) > 0`)
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the dashboard under write load: %s (%d bytes)", path, len(b))
}

// TestDashboardBrowserLogin logs in to the dashboard of a serve with a
// token, as a person does: a wrong token shows the error, the right one
// opens the page, and logging out goes back to the login form.
func TestDashboardBrowserLogin(t *testing.T) {
	ctx := newBrowser(t)
	db, node := openTestNode(t, "l1")
	srv := dashServer(t, db, node, newHTTPAccess([]byte(testToken), false))
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	login := func(tok string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("token"), tok), chromedp.Click(chromedp.CSS("#login button"))); err != nil {
			t.Fatal(err)
		}
	}
	login("not-the-token-at-all")
	waitJS(t, ctx, "the wrong token refused", `!document.getElementById("error").hidden && document.getElementById("error").textContent.includes("not the token")`)
	login(testToken)
	waitJS(t, ctx, "the dashboard", `document.querySelectorAll("#members tbody tr").length === 1 && !document.getElementById("logout").hidden`)
	if cookie, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || cookie != "" {
		t.Errorf("the page's script sees cookies %q (%v), want none (HttpOnly)", cookie, err)
	}
	runSQL(t, ctx, "SELECT 40+2")
	waitJS(t, ctx, "the result 42", `document.querySelector("#result tbody td")?.textContent === "42"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the login form again", `document.getElementById("token") !== null`)
}

// transientNav reports whether err is an evaluation cut by a page load,
// worth trying again on the new page.
func transientNav(err error) bool {
	s := err.Error()
	return strings.Contains(s, "navigated") || strings.Contains(s, "context was destroyed") || strings.Contains(s, "Cannot find context")
}
