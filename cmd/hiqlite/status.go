package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hiqlite/hiqlite"
)

func cmdStatus(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "--dsn DSN | --http ADDR [--http-token-file FILE] [--http-ca FILE]", stderr)
	dsn := fs.String("dsn", "", "open the node of DSN in this process: DATA_DIR[?param=value&...], or ask a member of a\nrunning cluster as a remote client: hiqlite://HOST:PORT[,HOST:PORT...]?_secret=...")
	httpAddr := fs.String("http", "", "ask a running hiqlite serve instead: its --http host:port, or a URL such as\nhttp://host:port or https://host:port (a serve with --http-tls-cert)")
	clientFlags := addHTTPClientFlags(fs)
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the node to be ready (--dsn) or to answer (--http)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*dsn == "") == (*httpAddr == "") {
		return &usageError{errors.New("give exactly one of --dsn DSN (open the node here) and --http ADDR (ask a running hiqlite serve)")}
	}
	if *wait <= 0 {
		return &usageError{fmt.Errorf("--wait %v must be positive", *wait)}
	}
	if *httpAddr != "" {
		u, err := statusURL(*httpAddr)
		if err != nil {
			return &usageError{fmt.Errorf("invalid --http %q: %w", *httpAddr, err)}
		}
		client, err := clientFlags.client(u)
		if err != nil {
			return err
		}
		return remoteStatus(ctx, client, u, *wait, stdout)
	}
	if *clientFlags.tokenFile != "" || *clientFlags.caFile != "" {
		return &usageError{errors.New("--http-token-file and --http-ca go with --http")}
	}
	if hiqlite.IsRemoteDSN(*dsn) {
		if _, err := hiqlite.ParseClientDSN(*dsn); err != nil {
			return &usageError{fmt.Errorf("invalid --dsn: %w", err)}
		}
		return clientStatus(ctx, *dsn, *wait, stdout)
	}
	if _, err := hiqlite.ParseDSN(*dsn); err != nil {
		return &usageError{fmt.Errorf("invalid --dsn: %w", err)}
	}
	return status(ctx, *dsn, *wait, stdout)
}

// nodeStatus is what status prints and what serve's GET /status returns as
// JSON.
type nodeStatus struct {
	ID           string `json:"id"`
	LeaderID     string `json:"leader_id"`   // "" while no leader is known
	LeaderAddr   string `json:"leader_addr"` // the leader's Raft address
	IsLeader     bool   `json:"is_leader"`
	AppliedIndex uint64 `json:"applied_index"`
	DataDir      string `json:"data_dir,omitempty"` // only for callers with serve's token
	Fault        string `json:"fault,omitempty"`    // Node.Fault
	// Members is the Raft configuration; MembersError says why it could
	// not be read.
	Members      []memberStatus `json:"members"`
	MembersError string         `json:"members_error,omitempty"`
	// remote: read by a remote client, which sees no data directory
	remote bool
}

type memberStatus struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Voter    bool   `json:"voter"`
	IsLeader bool   `json:"is_leader"`
}

// statusOf reads the status of node.
func statusOf(node *hiqlite.Node) nodeStatus {
	s := nodeStatus{
		ID:           node.ID(),
		IsLeader:     node.IsLeader(),
		AppliedIndex: node.AppliedIndex(),
		DataDir:      node.DataDir(),
		Members:      []memberStatus{},
	}
	s.LeaderID, s.LeaderAddr = node.Leader()
	if err := node.Fault(); err != nil {
		s.Fault = err.Error()
	}
	ms, err := node.Members()
	if err != nil {
		s.MembersError = err.Error()
	}
	for _, m := range ms {
		s.Members = append(s.Members, memberStatus{ID: m.ID, Address: m.Address, Voter: m.Voter, IsLeader: m.IsLeader})
	}
	return s
}

// status opens the node of dsn in this process and prints what it knows
// about itself and the cluster. The data directory must not be in use by
// another process: remoteStatus asks a node that runs elsewhere.
func status(ctx context.Context, dsn string, wait time.Duration, w io.Writer) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	db, err := openNode(wctx, dsn)
	if err != nil {
		if errors.Is(err, hiqlite.ErrLocked) {
			return fmt.Errorf("%w\n(if hiqlite serve runs that node, ask it with: hiqlite status --http ADDR)", err)
		}
		return err
	}
	defer db.Close()
	n, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		return err
	}
	return printStatus(w, statusOf(n))
}

// clientStatus prints the status of the member a remote client (a
// hiqlite:// DSN) attaches to, read through SQL's status functions and
// hiqlite_nodes.
func clientStatus(ctx context.Context, dsn string, wait time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	db, err := openNode(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	s := nodeStatus{Members: []memberStatus{}, remote: true}
	var leader sql.NullString
	var applied int64
	err = db.QueryRowContext(ctx, `SELECT hiqlite_node_id(), hiqlite_leader_id(), hiqlite_is_leader(), hiqlite_applied_index()`).
		Scan(&s.ID, &leader, &s.IsLeader, &applied)
	if err != nil {
		return err
	}
	s.LeaderID, s.AppliedIndex = leader.String, uint64(applied)
	rows, err := db.QueryContext(ctx, `SELECT node_id, coalesce(raft_addr, ''), voter, is_leader FROM hiqlite_nodes ORDER BY node_id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m memberStatus
		if err := rows.Scan(&m.ID, &m.Address, &m.Voter, &m.IsLeader); err != nil {
			return err
		}
		if m.IsLeader {
			s.LeaderAddr = m.Address
		}
		s.Members = append(s.Members, m)
	}
	if err := rows.Err(); err != nil {
		s.MembersError = err.Error()
	}
	return printStatus(w, s)
}

// statusURL turns the --http value, host:port or an http(s) URL, into the
// URL of the /status endpoint.
func statusURL(addr string) (string, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("want host:port or a URL such as http://127.0.0.1:8080")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" || (u.Port() == "" && !strings.Contains(addr, "://")) {
		return "", errors.New("want host:port or a URL such as http://127.0.0.1:8080")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/status") {
		u.Path += "/status"
	}
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String(), nil
}

// statusRefused, when set (by tests), is called each time remoteStatus
// finds the connection refused, before it tries again.
var statusRefused func()

// remoteStatus prints the status that GET statusURL returns.
func remoteStatus(ctx context.Context, client *httpClient, statusURL string, wait time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// A serve that was just started may not listen yet: a refused
	// connection is tried again until the wait is over, so a script can
	// start a node and ask for its status at once.
	var resp *http.Response
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, statusURL, nil)
		if err != nil {
			return err
		}
		resp, err = client.do(req)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err // names the method and the URL
		}
		if statusRefused != nil {
			statusRefused()
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (still refused after --wait %v)", err, wait)
		case <-t.C:
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", statusURL, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("GET %s: %s: %s\n(%s)", statusURL, resp.Status, strings.TrimSpace(string(body)), client.unauthorizedHint())
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", statusURL, resp.Status, strings.TrimSpace(string(body)))
	}
	var s nodeStatus
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("GET %s: not a hiqlite status: %w", statusURL, err)
	}
	return printStatus(w, s)
}

// leaderText describes the leader (id, at addr) as seen from node self.
func leaderText(self, id, addr string) string {
	switch {
	case id == "":
		return "unknown (no leader right now)"
	case id == self:
		return id + " (this node)"
	case addr != "":
		return id + " at " + addr
	}
	return id
}

// printStatus prints s for people. It returns an error after printing if
// the members could not be read.
func printStatus(w io.Writer, s nodeStatus) error {
	fmt.Fprintf(w, "node:          %s\n", s.ID)
	fmt.Fprintf(w, "leader:        %s\n", leaderText(s.ID, s.LeaderID, s.LeaderAddr))
	fmt.Fprintf(w, "applied index: %d\n", s.AppliedIndex)
	if s.DataDir != "" {
		fmt.Fprintf(w, "data dir:      %s\n", s.DataDir)
	} else if s.remote {
		fmt.Fprintf(w, "data dir:      (the member's; not shown to a remote client)\n")
	} else {
		fmt.Fprintf(w, "data dir:      (shown only with serve's --http-token-file)\n")
	}
	if s.Fault != "" {
		fmt.Fprintf(w, "fault:         %s\n", s.Fault)
	}
	if s.MembersError != "" {
		return fmt.Errorf("members: %s", s.MembersError)
	}
	cells := make([][]string, 0, len(s.Members))
	for _, m := range s.Members {
		cells = append(cells, []string{m.ID, m.Address, strconv.FormatBool(m.Voter), strconv.FormatBool(m.IsLeader)})
	}
	fmt.Fprintln(w, "members:")
	printTable(w, "  ", []string{"ID", "ADDRESS", "VOTER", "LEADER"}, cells)
	return nil
}
