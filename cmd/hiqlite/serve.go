package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite"
)

// defaultHTTP is where serve answers health and status checks unless told
// otherwise: loopback only, since the endpoints are not authenticated.
const defaultHTTP = "127.0.0.1:8080"

// Bounds of /readyz?timeout=.
const (
	defaultReadyTimeout = time.Second
	maxReadyTimeout     = time.Minute
)

// shutdownTimeout bounds how long serve waits for HTTP requests in flight
// when it stops.
const shutdownTimeout = 5 * time.Second

// leaderPoll is how often serve looks for a leader change to report.
const leaderPoll = 500 * time.Millisecond

func cmdServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "--dsn DSN [--http ADDR]", stderr)
	dsn := fs.String("dsn", "", "the node to run: DATA_DIR[?param=value&...] (required)")
	httpAddr := fs.String("http", defaultHTTP,
		"host:port where GET /healthz, /readyz and /status answer (port 0 picks a free port;\n"+
			"empty: no HTTP). The endpoints are not authenticated: keep them on a trusted network")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsn == "" {
		return &usageError{errors.New("--dsn is required, for example: hiqlite serve --dsn /var/lib/hiqlite")}
	}
	cfg, err := hiqlite.ParseDSN(*dsn)
	if err != nil {
		// ParseDSN names the parameter and value at fault, never the secret.
		return &usageError{fmt.Errorf("invalid --dsn: %w", err)}
	}
	if *httpAddr != "" {
		if err := checkHostPort(*httpAddr); err != nil {
			return &usageError{fmt.Errorf("invalid --http %q: %w", *httpAddr, err)}
		}
	}
	return serve(ctx, cfg, *httpAddr, stdout)
}

// checkHostPort accepts host:port with a numeric port; the host may be
// empty (all interfaces).
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8080")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// serve runs the node of cfg, and the HTTP endpoints on httpAddr unless it
// is empty, until ctx ends; then it stops both and returns nil. Progress
// goes to stdout: first a line naming the node and the addresses it
// listens on (the bound HTTP address, so port 0 can be used), then "ready:"
// once the node is ready, and every leader change after that.
func serve(ctx context.Context, cfg *hiqlite.Config, httpAddr string, stdout io.Writer) (err error) {
	out := &lockedWriter{w: stdout}
	// Listen before opening the node: a port in use fails fast, and the
	// first line can tell the real port.
	var ln net.Listener
	if httpAddr != "" {
		if ln, err = net.Listen("tcp", httpAddr); err != nil {
			return fmt.Errorf("http: %w", err) // the error names the address
		}
		defer ln.Close() // in case the node does not open; Serve owns it after
	}
	conn, err := hiqlite.NewConnector(cfg)
	if err != nil {
		if errors.Is(err, hiqlite.ErrLocked) {
			return fmt.Errorf("%w\n(is a hiqlite serve already running there? ask it with: hiqlite status --http ADDR)", err)
		}
		return err
	}
	db := sql.OpenDB(conn) // closing db closes conn, which stops the node
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the node: %w", cerr))
		}
	}()
	node := conn.Node()

	// wg joins the goroutines serve starts: stop ends reportLeader,
	// Shutdown ends the HTTP server.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	var srv *http.Server
	where := "http off"
	if ln != nil {
		srv = &http.Server{
			Handler:           newStatusHandler(node),
			ReadHeaderTimeout: 10 * time.Second,
			// Requests in flight (a /readyz waiting) end with serve.
			BaseContext: func(net.Listener) context.Context { return ctx },
		}
		where = "http on " + ln.Addr().String()
		wg.Go(func() { serveErr <- srv.Serve(ln) })
	}
	listen := "runs alone with no network"
	if cfg.Listen != "" {
		listen = "listening on " + cfg.Listen
		if cfg.Gossip != "" {
			listen += ", gossip on " + cfg.Gossip
		}
	}
	fmt.Fprintf(out, "node %s (data dir %s) %s, %s\n", node.ID(), node.DataDir(), listen, where)
	wg.Go(func() { reportLeader(ctx, node, out) })

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http: %w", err)
	}
	fmt.Fprintf(out, "stopping node %s\n", node.ID())
	stop()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("http shutdown: %w", serr))
		}
	}
	wg.Wait()
	return err // the deferred db.Close stops the node
}

// reportLeader prints "ready: ..." once node is ready, then every change of
// leader and a fault if one happens, until ctx ends.
func reportLeader(ctx context.Context, node *hiqlite.Node, out io.Writer) {
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	var lastErr string
	for {
		err := node.WaitReady(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		// A fault, or the node closing: say so once and look again later.
		if err.Error() != lastErr {
			lastErr = err.Error()
			fmt.Fprintf(out, "not ready: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	leader := describeLeader(node)
	fmt.Fprintf(out, "ready: leader is %s\n", leader)
	faulted := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l := describeLeader(node); l != leader {
			leader = l
			fmt.Fprintf(out, "leader is now %s\n", leader)
		}
		if err := node.Fault(); err != nil && !faulted {
			faulted = true
			fmt.Fprintf(out, "fault: %v\n", err)
		}
	}
}

// describeLeader names the leader as node's status does.
func describeLeader(node *hiqlite.Node) string {
	id, addr := node.Leader()
	return leaderText(node.ID(), id, addr)
}

// newStatusHandler serves the HTTP endpoints of a node:
//
//   - GET /healthz: 200 "ok" while the node's state machine has no fault,
//     503 with the fault otherwise.
//   - GET /readyz[?timeout=DURATION]: 200 once the node is ready (a leader
//     is known and the node has applied what it committed), waiting up to
//     timeout (default 1s, at most 1m); 503 with the reason otherwise.
//   - GET /status: the node's status as JSON (nodeStatus).
//   - POST /snapshot: take a snapshot now and compact the log (keeping
//     _snapshot_entries behind it); 200 when done.
func newStatusHandler(node *hiqlite.Node) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := node.Fault(); err != nil {
			http.Error(w, "fault: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeText(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		timeout := defaultReadyTimeout
		if v := r.URL.Query().Get("timeout"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > maxReadyTimeout {
				http.Error(w, fmt.Sprintf("invalid timeout %q: want a duration from 1ms to %v, such as 500ms", v, maxReadyTimeout), http.StatusBadRequest)
				return
			}
			timeout = d
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if err := node.WaitReady(ctx); err != nil {
			http.Error(w, fmt.Sprintf("not ready: %v (leader: %s)", err, describeLeader(node)), http.StatusServiceUnavailable)
			return
		}
		writeText(w, "ready: leader is "+describeLeader(node))
	})
	mux.HandleFunc("POST /snapshot", func(w http.ResponseWriter, r *http.Request) {
		if err := node.Snapshot(); err != nil {
			http.Error(w, "snapshot: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeText(w, fmt.Sprintf("snapshot taken; applied index now %d", node.AppliedIndex()))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		b, err := json.MarshalIndent(statusOf(node), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	return mux
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, s+"\n")
}

// lockedWriter serialises writes from serve's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
