package main

// This file holds serve's dashboard: the page at / (static files embedded
// from dashboard/, no build step), the JSON endpoints it polls under /api/,
// and its login for serves with a token.
//
// Access. Without --http-token-file the dashboard is open, like /status,
// but its SQL console runs only when --http is on loopback (as POST
// /snapshot): off loopback it would hand the whole database, and writes,
// to anyone who reaches the port. With a token, every /api/ endpoint needs
// it, either as Authorization: Bearer TOKEN or as the session cookie that
// POST /dashboard/login sets after checking the token typed into the login
// page: HttpOnly (scripts never see it), SameSite=Strict (never sent from another
// site), Secure under HTTPS. Its value is an HMAC of the token's hash, so
// the cookie does not reveal the token.
//
// Cross-site requests. Every POST needs Content-Type: application/json and
// the header X-Hiqlite-Dashboard, which a page of another origin cannot send
// without a CORS preflight that serve never grants, and passes
// http.CrossOriginProtection (Sec-Fetch-Site and Origin).

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hiqlite/hiqlite"
)

//go:embed dashboard
var dashboardFiles embed.FS

const (
	// sessionCookie is the dashboard's session cookie under a token.
	sessionCookie = "hiqlite_session"
	// dashboardHeader must be on every POST of the dashboard.
	dashboardHeader = "X-Hiqlite-Dashboard"
	// dashboardCSP lets the page load only its own files and talk only to
	// its own origin.
	dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// Bounds of the SQL console.
	maxQueryBody  = 1 << 20
	maxQueryRows  = 1000
	maxQueryBytes = 8 << 20 // of row values in one answer; the rest is cut (Truncated)
	// maxQueries is how many console statements run at once; more wait.
	maxQueries = 4
	// sessionMaxAge is how long a dashboard session lasts.
	sessionMaxAge = 12 * time.Hour
	queryTimeout  = 30 * time.Second
	// maxLeaderChanges is how many leader changes the dashboard lists.
	maxLeaderChanges = 20
)

// leaderChange is one change of leader that serve saw.
type leaderChange struct {
	Time   time.Time `json:"time"`
	Leader string    `json:"leader"` // as leaderText describes it
}

// leaderLog keeps the latest maxLeaderChanges leader changes. The zero
// value is ready; a nil *leaderLog records nothing.
type leaderLog struct {
	mu      sync.Mutex
	changes []leaderChange // oldest first
}

func (l *leaderLog) add(leader string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.changes) == maxLeaderChanges {
		l.changes = append(l.changes[:0], l.changes[1:]...)
	}
	l.changes = append(l.changes, leaderChange{Time: time.Now().UTC(), Leader: leader})
}

// list returns the changes, newest first.
func (l *leaderLog) list() []leaderChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]leaderChange, len(l.changes))
	for i, c := range l.changes {
		out[len(out)-1-i] = c
	}
	return out
}

// dashboard serves the page and its API for one node.
type dashboard struct {
	node    *hiqlite.Node
	db      *sql.DB
	acc     httpAccess
	leaders *leaderLog
	// sessionKey signs the session cookies under a token (nil without
	// one): random for each serve process, so a restart ends every
	// session, and a cookie never reveals or stands for the token itself.
	sessionKey []byte
	queries    chan struct{} // a slot per console statement running
	// reads and writes count the console's statements on this node.
	reads, writes atomic.Uint64
}

// withDashboard serves the dashboard of node in front of h, which answers
// every other path.
func withDashboard(h http.Handler, db *sql.DB, node *hiqlite.Node, acc httpAccess, leaders *leaderLog) http.Handler {
	d := &dashboard{node: node, db: db, acc: acc, leaders: leaders, queries: make(chan struct{}, maxQueries)}
	if acc.tokenSum != nil {
		d.sessionKey = make([]byte, 32)
		if _, err := rand.Read(d.sessionKey); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /{$}", d.index)
	mux.HandleFunc("GET /dashboard/{file}", d.static)
	mux.Handle("POST /dashboard/login", d.post(d.login))
	mux.Handle("POST /dashboard/logout", d.post(d.logout))
	mux.Handle("GET /api/members", d.guard(http.HandlerFunc(d.members)))
	mux.Handle("GET /api/stats", d.guard(http.HandlerFunc(d.stats)))
	mux.Handle("POST /api/query", d.guard(d.post(d.query)))
	return http.NewCrossOriginProtection().Handler(d.loopbackHost(mux))
}

// loopbackHost refuses, on a loopback listener without a token, a POST or
// an /api/ request whose Host is not a loopback name. A page of another
// site can point its own name at 127.0.0.1 (DNS rebinding); its requests
// are then same-origin to the browser and pass every other check, but
// they carry that name as Host.
func (d *dashboard) loopbackHost(next http.Handler) http.Handler {
	if d.acc.tokenSum != nil || !d.acc.snapshotOpen {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodPost || strings.HasPrefix(r.URL.Path, "/api/")) && !isLoopbackHost(r.Host) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "Host " + jsonQuote(r.Host) +
				" is not a loopback name: without --http-token-file, serve answers this only to localhost, 127.0.0.1 or [::1]"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopbackHost reports whether host (with or without a port) is
// localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// newSession is a session cookie's value: when it was issued, and an HMAC
// of that under the process's session key.
func (d *dashboard) newSession(now time.Time) string {
	issued := strconv.FormatInt(now.Unix(), 10)
	return issued + "." + d.sessionMAC(issued)
}

func (d *dashboard) sessionMAC(issued string) string {
	m := hmac.New(sha256.New, d.sessionKey)
	io.WriteString(m, "hiqlite dashboard session v2 ")
	io.WriteString(m, issued)
	return hex.EncodeToString(m.Sum(nil))
}

// validSession reports whether v is a session this process issued less
// than sessionMaxAge ago.
func (d *dashboard) validSession(v string, now time.Time) bool {
	issued, mac, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(mac), []byte(d.sessionMAC(issued))) != 1 {
		return false
	}
	sec, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return false
	}
	age := now.Sub(time.Unix(sec, 0))
	return age >= -time.Minute && age < sessionMaxAge
}

// authorized reports whether r carries the token or the session cookie;
// always true without a token.
func (d *dashboard) authorized(r *http.Request) bool {
	if d.sessionKey == nil || d.acc.check(r) == bearerOK {
		return true
	}
	c, err := r.Cookie(sessionCookie)
	return err == nil && d.validSession(c.Value, time.Now())
}

func (d *dashboard) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !d.authorized(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in with serve's token (the page at /), or send Authorization: Bearer TOKEN"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// post refuses a POST that a page of another site could have sent.
func (d *dashboard) post(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/json" || r.Header.Get(dashboardHeader) == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "a dashboard POST needs Content-Type: application/json and the header " + dashboardHeader})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxQueryBody)
		next(w, r)
	})
}

// index serves the page, or the login page to a browser without the
// session under a token.
func (d *dashboard) index(w http.ResponseWriter, r *http.Request) {
	name := "dashboard/index.html"
	if !d.authorized(r) {
		name = "dashboard/login.html"
	}
	d.serveFile(w, name)
}

func (d *dashboard) static(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if path.Ext(file) == ".html" {
		http.NotFound(w, r) // pages only at /, where access is decided
		return
	}
	d.serveFile(w, "dashboard/"+file)
}

func (d *dashboard) serveFile(w http.ResponseWriter, name string) {
	b, err := fs.ReadFile(dashboardFiles, name)
	if err != nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.Write(b)
}

func (d *dashboard) login(w http.ResponseWriter, r *http.Request) {
	if d.sessionKey == nil {
		writeJSON(w, http.StatusOK, map[string]string{}) // nothing to log in to
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want JSON {\"token\": \"...\"}: " + err.Error()})
		return
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(req.Token)))
	if subtle.ConstantTimeCompare(sum[:], d.acc.tokenSum) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "that is not the token of serve's --http-token-file"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: d.newSession(time.Now()), Path: "/",
		MaxAge: int(sessionMaxAge / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]string{})
}

func (d *dashboard) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]string{})
}

// consoleOpen reports whether the SQL console may run statements, reads
// and writes: with a token (the guard checked it), or without one on a
// loopback listener.
func (d *dashboard) consoleOpen() bool { return d.acc.tokenSum != nil || d.acc.snapshotOpen }

// hide takes the data directory out of s for a serve without a token, as
// /status does for callers without it.
func (d *dashboard) hide(s string) string {
	if d.acc.tokenSum != nil || d.node.DataDir() == "" {
		return s
	}
	return strings.ReplaceAll(s, d.node.DataDir(), "DATA_DIR")
}

// membersReply is GET /api/members: the rows of hiqlite_nodes as the node
// sees them, one object per member keyed by column name.
type membersReply struct {
	Self    string           `json:"self"`
	Leader  string           `json:"leader"` // "" while no leader is known
	Fault   string           `json:"fault,omitempty"`
	Columns []string         `json:"columns"`
	Members []map[string]any `json:"members"`
	Error   string           `json:"error,omitempty"`
}

func (d *dashboard) members(w http.ResponseWriter, r *http.Request) {
	rep := membersReply{Self: d.node.ID(), Members: []map[string]any{}}
	rep.Leader, _ = d.node.Leader()
	if err := d.node.Fault(); err != nil {
		rep.Fault = d.hide(err.Error())
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	res, err := runQuery(ctx, d.db, "SELECT * FROM hiqlite_nodes ORDER BY node_id", nil, hiqlite.Local)
	if err != nil {
		rep.Error = d.hide(err.Error())
	} else {
		rep.Columns = res.Columns
		for _, row := range res.Rows {
			m := make(map[string]any, len(row))
			for i, c := range res.Columns {
				m[c] = row[i]
			}
			rep.Members = append(rep.Members, m)
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// statsReply is GET /api/stats: counters the page turns into rates.
type statsReply struct {
	Time          time.Time      `json:"time"`
	Self          string         `json:"self"`
	AppliedIndex  uint64         `json:"applied_index"`  // every write of the cluster
	ConsoleReads  uint64         `json:"console_reads"`  // statements of this node's console
	ConsoleWrites uint64         `json:"console_writes"` // that read, and that wrote
	LeaderChanges []leaderChange `json:"leader_changes"` // newest first
	Console       bool           `json:"console"`        // the SQL console runs statements
	Token         bool           `json:"token"`          // serve has a token: the page offers to log out
}

func (d *dashboard) stats(w http.ResponseWriter, r *http.Request) {
	rep := statsReply{
		Time:          time.Now().UTC(),
		Self:          d.node.ID(),
		AppliedIndex:  d.node.AppliedIndex(),
		ConsoleReads:  d.reads.Load(),
		ConsoleWrites: d.writes.Load(),
		LeaderChanges: []leaderChange{},
		Console:       d.consoleOpen(),
		Token:         d.acc.tokenSum != nil,
	}
	if d.leaders != nil {
		rep.LeaderChanges = d.leaders.list()
	}
	writeJSON(w, http.StatusOK, rep)
}

// queryRequest is the body of POST /api/query.
type queryRequest struct {
	SQL         string `json:"sql"`
	Args        []any  `json:"args"`
	Consistency string `json:"consistency"` // "local" (default) or "linearizable"
}

func (d *dashboard) query(w http.ResponseWriter, r *http.Request) {
	if !d.consoleOpen() {
		writeJSON(w, http.StatusForbidden, queryResult{Error: "the SQL console is off: serve's --http is not on a loopback address and has no token; start serve with --http-token-file FILE"})
		return
	}
	var req queryRequest
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, queryResult{Error: "want JSON {\"sql\": \"...\", \"args\": [...], \"consistency\": \"local\"}: " + err.Error()})
		return
	}
	cons := hiqlite.Local
	switch req.Consistency {
	case "", "local":
	case "linearizable":
		cons = hiqlite.Linearizable
	default:
		writeJSON(w, http.StatusBadRequest, queryResult{Error: "consistency " + jsonQuote(req.Consistency) + " is not local or linearizable"})
		return
	}
	args, err := queryArgs(req.Args)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, queryResult{Error: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	select {
	case d.queries <- struct{}{}:
		defer func() { <-d.queries }()
	case <-ctx.Done():
		writeJSON(w, http.StatusServiceUnavailable, queryResult{Error: "the console is busy with other statements; try again"})
		return
	}
	res, err := runQuery(ctx, d.db, req.SQL, args, cons)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, queryResult{Error: d.hide(err.Error())})
		return
	}
	if res.Wrote {
		d.writes.Add(1)
	} else {
		d.reads.Add(1)
	}
	writeJSON(w, http.StatusOK, res)
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// queryArgs turns JSON values into statement arguments.
func queryArgs(in []any) ([]any, error) {
	out := make([]any, len(in))
	for i, a := range in {
		switch v := a.(type) {
		case nil, string, bool:
			out[i] = v
		case json.Number:
			if n, err := v.Int64(); err == nil {
				out[i] = n
			} else if f, err := v.Float64(); err == nil {
				out[i] = f
			} else {
				return nil, fmt.Errorf("argument %d, %s, is not a number SQLite holds", i+1, v)
			}
		default:
			return nil, fmt.Errorf("argument %d is %s: want a string, number, boolean or null", i+1, jsonKind(a))
		}
	}
	return out, nil
}

func jsonKind(v any) string {
	if _, ok := v.([]any); ok {
		return "an array"
	}
	return "an object"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
