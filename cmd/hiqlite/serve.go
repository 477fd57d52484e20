package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/logging"
)

// defaultHTTP is where serve answers health and status checks unless told
// otherwise: loopback only, since without --http-token-file the endpoints
// are not authenticated.
const defaultHTTP = "127.0.0.1:8080"

// Bounds of /readyz?timeout=.
const (
	defaultReadyTimeout = time.Second
	maxReadyTimeout     = time.Minute
)

// shutdownTimeout bounds how long serve waits for HTTP requests in flight
// when it stops; then it closes their connections (see stopHTTP).
const shutdownTimeout = 5 * time.Second

// leaderPoll is how often serve looks for a leader change to report.
const leaderPoll = 500 * time.Millisecond

func cmdServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "--dsn DSN [--http ADDR] [--http-token-file FILE] [--http-tls-cert FILE --http-tls-key FILE]", stderr)
	dsn := fs.String("dsn", "", "the node to run: DATA_DIR[?param=value&...] (required)")
	var o httpOptions
	fs.StringVar(&o.addr, "http", defaultHTTP,
		"host:port where GET /healthz, /readyz, /status, POST /snapshot, /backup, /leave and the dashboard at / answer\n"+
			"(port 0 picks a free port; empty: no HTTP). Off loopback, set --http-token-file and --http-tls-cert")
	tokenFile := fs.String("http-token-file", "",
		"a file holding a bearer token (at least 16 bytes, surrounding white space trimmed): every\n"+
			"endpoint except /healthz and /readyz then requires Authorization: Bearer TOKEN. Without it,\n"+
			"/status hides the data directory and POST /snapshot and /backup work only when --http is on loopback")
	fs.StringVar(&o.tlsCert, "http-tls-cert", "",
		"a PEM certificate (chain) file: serve HTTPS (TLS 1.2 or later) instead of HTTP; the file and\n"+
			"its key are read again when they change, so a renewed certificate needs no restart")
	fs.StringVar(&o.tlsKey, "http-tls-key", "", "the PEM private key file of --http-tls-cert")
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
	if o.addr != "" {
		if err := checkHostPort(o.addr); err != nil {
			return &usageError{fmt.Errorf("invalid --http %q: %w", o.addr, err)}
		}
	}
	switch {
	case o.addr == "" && (*tokenFile != "" || o.tlsCert != "" || o.tlsKey != ""):
		return &usageError{errors.New("--http-token-file, --http-tls-cert and --http-tls-key need --http")}
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return &usageError{errors.New("give both --http-tls-cert and --http-tls-key, or neither")}
	}
	if *tokenFile != "" {
		if o.token, err = readToken(*tokenFile); err != nil {
			return &usageError{fmt.Errorf("invalid --http-token-file: %w", err)}
		}
	}
	return serve(ctx, cfg, o, stdout, stderr)
}

// httpOptions are serve's HTTP settings.
type httpOptions struct {
	addr            string // host:port; empty: no HTTP
	tlsCert, tlsKey string // PEM files; empty: plain HTTP
	token           []byte // the bearer token; nil: none
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

// serve runs the node of cfg, and the HTTP endpoints on o.addr unless it
// is empty, until ctx ends; then it stops both and returns nil. Progress
// goes to stdout: first a line naming the node and the addresses it
// listens on (the bound HTTP address, so port 0 can be used), then "ready:"
// once the node is ready, and every leader change after that. Warnings,
// and the node's logs at the level HIQLITE_LOG names, go to stderr.
func serve(ctx context.Context, cfg *hiqlite.Config, o httpOptions, stdout, stderr io.Writer) (err error) {
	out := &lockedWriter{w: stdout}
	errOut := &lockedWriter{w: stderr}
	if cfg.Logger == nil {
		// The node's logs go to stderr at the level HIQLITE_LOG names.
		if cfg.Logger, err = logging.FromEnv(errOut); err != nil {
			return err
		}
	}
	// Read the certificate and listen before opening the node: a bad file
	// or a port in use fails fast, and the first line can tell the real
	// port.
	var certs *certReloader
	if o.tlsCert != "" {
		if certs, err = newCertReloader(o.tlsCert, o.tlsKey, errOut); err != nil {
			return fmt.Errorf("https: %w", err)
		}
	}
	var ln net.Listener
	if o.addr != "" {
		if ln, err = net.Listen("tcp", o.addr); err != nil {
			return fmt.Errorf("http: %w", err) // the error names the address
		}
		defer ln.Close() // in case the node does not open; Serve owns it after
		for _, w := range exposureWarnings(ln.Addr(), o) {
			fmt.Fprintf(errOut, "hiqlite serve: warning: %s\n", w)
		}
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
	var conns idleConns     // closed at once when serve stops
	leaders := &leaderLog{} // for the dashboard
	where := "http off"
	if ln != nil {
		acc := newHTTPAccess(o.token, isLoopback(ln.Addr()))
		srv = &http.Server{
			Handler:           withLeave(withDashboard(withFaultsuite(newStatusHandler(node, acc), db, node), db, node, acc, leaders), node, acc, stop),
			ConnState:         conns.track,
			ReadHeaderTimeout: 10 * time.Second,
			// Requests in flight (a /readyz waiting) end with serve.
			BaseContext: func(net.Listener) context.Context { return ctx },
		}
		where = "http on " + ln.Addr().String()
		if certs != nil {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
			where = "https on " + ln.Addr().String()
			wg.Go(func() { serveErr <- srv.ServeTLS(ln, "", "") })
		} else {
			wg.Go(func() { serveErr <- srv.Serve(ln) })
		}
	}
	listen := "runs alone with no network"
	if cfg.Listen != "" {
		listen = "listening on " + cfg.Listen
		if cfg.Gossip != "" {
			listen += ", gossip on " + cfg.Gossip
		}
	}
	fmt.Fprintf(out, "node %s (data dir %s) %s, %s\n", node.ID(), node.DataDir(), listen, where)
	wg.Go(func() { reportLeader(ctx, node, out, leaders) })

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http: %w", err)
	}
	fmt.Fprintf(out, "stopping node %s\n", node.ID())
	stop()
	if srv != nil {
		if serr := stopHTTP(srv, &conns, errOut); serr != nil {
			err = errors.Join(err, fmt.Errorf("http shutdown: %w", serr))
		}
	}
	wg.Wait()
	return err // the deferred db.Close stops the node
}

// exposureWarnings says what is open on bound, the address of the HTTP
// listener of o, when it is not on loopback: no token, no TLS.
func exposureWarnings(bound net.Addr, o httpOptions) []string {
	if isLoopback(bound) {
		return nil
	}
	var ws []string
	if o.token == nil {
		ws = append(ws, fmt.Sprintf("--http %s is not a loopback address and has no --http-token-file: anyone who reaches it can read /status and the dashboard at / (POST /snapshot and the SQL console are refused)", o.addr))
	}
	if o.tlsCert == "" {
		ws = append(ws, fmt.Sprintf("--http %s is not a loopback address and has no --http-tls-cert: requests, tokens and answers cross the network in clear", o.addr))
	}
	return ws
}

// reportLeader prints "ready: ..." once node is ready, then every change of
// leader and a fault if one happens, until ctx ends. It records the leaders
// it prints in leaders.
func reportLeader(ctx context.Context, node *hiqlite.Node, out io.Writer, leaders *leaderLog) {
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
	leaders.add(leader)
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
			leaders.add(leader)
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
//   - POST /backup?to=DEST[&key_file=FILE]: take a backup now (Node.Backup)
//     to DEST (default: the DSN's _backup, with its _backup_key_file);
//     200 with the object's name when done.
//   - GET /metrics: the node's Prometheus metrics (Node.MetricsHandler).
//   - POST /leave (withLeave, serve_leave.go): the node leaves the cluster
//     for good, then serve stops.
//
// serve puts the dashboard (withDashboard) in front of these.
//
// With a token in acc, every endpoint except /healthz and /readyz requires
// it (401 otherwise). Only callers with the token see paths: the data
// directory in /status, and in any error text it shows as DATA_DIR.
// Without a token, POST /snapshot and /backup answer 403 unless
// acc.snapshotOpen.
func newStatusHandler(node *hiqlite.Node, acc httpAccess) http.Handler {
	// hide takes the data directory out of a text for a caller without the
	// token; errors of the state machine may name its files.
	hide := func(r *http.Request, s string) string {
		if acc.check(r) == bearerOK || node.DataDir() == "" {
			return s
		}
		return strings.ReplaceAll(s, node.DataDir(), "DATA_DIR")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := node.Fault(); err != nil {
			http.Error(w, hide(r, "fault: "+err.Error()), http.StatusServiceUnavailable)
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
			http.Error(w, hide(r, fmt.Sprintf("not ready: %v (leader: %s)", err, describeLeader(node))), http.StatusServiceUnavailable)
			return
		}
		writeText(w, "ready: leader is "+describeLeader(node))
	})
	mux.HandleFunc("POST /snapshot", func(w http.ResponseWriter, r *http.Request) {
		if acc.tokenSum == nil && !acc.snapshotOpen {
			http.Error(w, "POST /snapshot is refused: serve's --http is not on a loopback address and has no token; start serve with --http-token-file FILE", http.StatusForbidden)
			return
		}
		if err := node.Snapshot(); err != nil {
			http.Error(w, hide(r, "snapshot: "+err.Error()), http.StatusServiceUnavailable)
			return
		}
		writeText(w, fmt.Sprintf("snapshot taken; applied index now %d", node.AppliedIndex()))
	})
	mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		if acc.tokenSum == nil && !acc.snapshotOpen {
			http.Error(w, "POST /backup is refused: serve's --http is not on a loopback address and has no token; start serve with --http-token-file FILE", http.StatusForbidden)
			return
		}
		q := r.URL.Query()
		// Without ?to, the DSN's _backup and _backup_key_file.
		info, err := node.Backup(r.Context(), q.Get("to"), hiqlite.BackupOptions{KeyFile: q.Get("key_file")})
		if err != nil {
			http.Error(w, hide(r, "backup: "+err.Error()), http.StatusServiceUnavailable)
			return
		}
		writeText(w, fmt.Sprintf("backup %s taken: index %d, %d bytes, %v", info.Name, info.Index, info.Size, info.Duration.Round(time.Millisecond)))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s := statusOf(node)
		if acc.check(r) != bearerOK {
			s.DataDir = ""
			s.Fault = hide(r, s.Fault)
			s.MembersError = hide(r, s.MembersError)
		}
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	mux.Handle("GET /metrics", node.MetricsHandler())
	return acc.guard(mux)
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
