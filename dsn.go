package hiqlite

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite/cluster"
)

// Consistency is the read consistency level.
type Consistency uint8

const (
	// Local reads run on the local replica, without any network round trip.
	// They may return data that is behind the leader. This is the default.
	Local Consistency = iota
	// Linearizable reads use a read index: the node confirms that the
	// leader is still the leader, waits until its replica has applied
	// everything committed up to that point, then reads locally.
	Linearizable
)

// String returns "local" or "linearizable", the names ParseConsistency and
// the _consistency DSN parameter accept.
func (c Consistency) String() string {
	switch c {
	case Local:
		return "local"
	case Linearizable:
		return "linearizable"
	}
	return "Consistency(" + strconv.Itoa(int(c)) + ")"
}

// ParseConsistency parses "local" or "linearizable", ignoring case.
func ParseConsistency(s string) (Consistency, error) {
	switch strings.ToLower(s) {
	case "local":
		return Local, nil
	case "linearizable":
		return Linearizable, nil
	}
	return 0, fmt.Errorf("hiqlite: unknown consistency %s (want local or linearizable)", quoteValue(s))
}

// Config is a parsed DSN. Build one with NewConfig or ParseDSN; a Config
// built by hand must pass Validate before use.
//
// For every valid Config c without TLS (which no DSN can carry),
// ParseDSN(c.FormatDSN()) returns a Config equal to c, so a Config and its
// canonical DSN are interchangeable.
type Config struct {
	DataDir     string        // the DSN's path part (a leading "file:" is stripped); ":memory:" (MemoryDir) = an in-memory node
	NodeID      string        // _node: unique in the cluster; "" = generated once and persisted by the node
	Listen      string        // _listen host:port for Raft+RPC; "" = single node, no network
	Advertise   string        // _advertise host:port peers dial; "" = Listen
	Gossip      string        // _gossip memberlist bind host:port
	Join        []string      // _join comma-separated gossip seeds (nil when absent)
	Expect      int           // _expect voters to see in gossip before the first bootstrap; 0 (default) = 1 without _join, only join (never bootstrap) with _join
	Secret      string        // _secret, at least 16 bytes; never printed in errors or String()
	SecretFile  string        // _secret_file: path of a file holding the secret
	Consistency Consistency   // _consistency: local | linearizable
	Voter       bool          // _voter: default true; false = non-voting read replica
	ForeignKeys bool          // _foreign_keys: every connection starts with PRAGMA foreign_keys on; default false, as in SQLite
	TxLock      string        // _txlock: what a plain BEGIN and BeginTx take, "deferred" (default), "immediate" or "exclusive" (the write slot at BEGIN)
	Timeout     time.Duration // _timeout write/forward timeout, default 10s
	TxIdle      time.Duration // _txidle idle timeout of an open write transaction, default 5s
	Busy        time.Duration // _busy how long a writer waits for the write slot, default 5s
	Reap        time.Duration // _reap how long a node may stay dead before the leader removes it, default 5m; at least 1s
	// SnapshotEntries (_snapshot_entries) is how many log entries since the
	// last snapshot make the node take one and compact its log, keeping as
	// many behind it for slow followers; default 8192, at least 16.
	SnapshotEntries uint64
	// SnapshotBytes (_snapshot_bytes) is how many bytes of log entries
	// applied since the last snapshot make the node take one, whatever
	// their count; default 256MiB, at least 1MiB.
	SnapshotBytes uint64
	// LogSegment (_log_segment) is the size of the Raft log's segment
	// files. Compaction deletes whole segments, so the log keeps up to one
	// segment more than the trailing entries. raft-wal preallocates each
	// segment, so an empty node takes about one segment of disk; default
	// 4MiB, from 1MiB to 1GiB.
	LogSegment uint64

	// TLSCert, TLSKey and TLSCA (_tls_cert, _tls_key, _tls_ca) are PEM
	// files: this node's certificate, its key, and the CA that signs every
	// node's certificate. Set all three or none. With them, every
	// connection on the node port (Raft, forwarded writes, the cache
	// group) runs mutual TLS 1.3 under the secret's handshake: each side's
	// certificate is verified against the CA, and the dialed node's also
	// against the address dialed (an IP or DNS SAN), so each certificate
	// must name its node's _advertise (or _listen) host and allow both
	// server and client authentication. The files are re-read when they
	// change (looked at every second at most), so certificates rotate
	// without a restart; a file that fails to load keeps the previous pair
	// and logs a warning.
	TLSCert, TLSKey, TLSCA string
	// TLS is mutual TLS for the node port given in Go instead of files
	// (exclusive with them; a DSN cannot carry it). It must hold both
	// sides: a certificate for the server side (Certificates or
	// GetCertificate) and for the client side (Certificates or
	// GetClientCertificate), RootCAs to verify the nodes this one dials and
	// ClientCAs to verify the nodes that dial it. hiqlite clones it and
	// forces MinVersion TLS 1.3 and a client certificate required and
	// verified (as ClientAuth RequireAndVerifyClientCert), sets ServerName
	// to the host dialed, and turns off session resumption.
	TLS *tls.Config
}

// Defaults of the parameters FormatDSN leaves out when unchanged.
const (
	defaultTimeout = 10 * time.Second
	defaultTxIdle  = 5 * time.Second
	defaultBusy    = 5 * time.Second
	defaultReap    = 5 * time.Minute
	defaultTxLock  = "deferred"
	// defaultSnapshotEntries is raft's own default threshold.
	defaultSnapshotEntries = 8192
	// minSnapshotEntries keeps a snapshot from being taken every few writes.
	minSnapshotEntries = 16
	// defaultSnapshotBytes bounds the log of a node that writes large rows.
	defaultSnapshotBytes = 256 << 20
	minSnapshotBytes     = 1 << 20
	// defaultLogSegment is 4MiB, not raft-wal's 64MiB: the first segment
	// is preallocated, and at 64MiB an empty node took 65 MB of disk (a
	// test suite opening hundreds of stores filled a disk); at 4MiB it
	// takes 4.2 MB. A segment holds thousands of entries, so rotating one
	// more often cost nothing measurable (BENCHMARKS.md). raft-wal's
	// segment sizes are 32-bit, so 1GiB leaves room for an entry above
	// the limit.
	defaultLogSegment = 4 << 20
	minLogSegment     = 1 << 20
	maxLogSegment     = 1 << 30

	// minReap keeps _reap above gossip's own failure detection, which takes
	// seconds: a shorter timeout would only make the leader act on the
	// first sign of death instead of on a settled one.
	minReap = time.Second

	minSecretLen = 16
	maxNodeIDLen = 64
	redacted     = "REDACTED"
	filePrefix   = "file:"
)

// MemoryDir is the DataDir of an in-memory node: a single node (no
// _listen) that creates no file at all, whose database, Raft log and
// snapshots live in memory and are gone when it closes. Every opening is a
// node of its own: two sql.Open calls give two independent databases, as
// with SQLite's ":memory:", while the connections of one *sql.DB share
// theirs. For tests.
const MemoryDir = ":memory:"

// inMemory reports whether c is an in-memory node.
func (c *Config) inMemory() bool { return c.DataDir == MemoryDir }

// NewConfig returns a Config holding the defaults of every parameter. Its
// DataDir is empty, so it is not valid until DataDir is set.
func NewConfig() *Config {
	return &Config{
		Consistency: Local,
		Voter:       true,
		Timeout:     defaultTimeout,
		TxIdle:      defaultTxIdle,
		Busy:        defaultBusy,
		Reap:        defaultReap,
		TxLock:      defaultTxLock,

		SnapshotEntries: defaultSnapshotEntries,
		SnapshotBytes:   defaultSnapshotBytes,
		LogSegment:      defaultLogSegment,
	}
}

// ParseDSN parses a DSN of the form DATA_DIR[?param=value&...] and validates
// the result. A leading "file:" is stripped from DATA_DIR. Parameter names
// and values are %-unescaped as in a URL query; unknown and repeated
// parameters are errors.
//
// The forms other SQLite drivers use for an in-memory database open an
// in-memory node (DataDir MemoryDir): ":memory:", "file::memory:", and
// "file:NAME?mode=memory"; SQLite's URI parameters mode=memory and
// cache=shared or cache=private are accepted there and change nothing
// (the NAME is dropped: every opening is a database of its own, and the
// connections of one *sql.DB always share it). Any other mode, and cache
// on a DATA_DIR, is an error.
//
// Errors name the parameter and the offending value, except the value of
// _secret, which never appears in an error.
func ParseDSN(dsn string) (*Config, error) {
	c := NewConfig()
	dir, query, _ := strings.Cut(strings.TrimPrefix(dsn, filePrefix), "?")
	if dir == "" {
		return nil, errors.New("hiqlite: the DSN has an empty data directory")
	}
	c.DataDir = dir

	seen := make(map[string]bool)
	var mode string
	for query != "" {
		var param string
		param, query, _ = strings.Cut(query, "&")
		if param == "" {
			continue // as net/url does with "a=1&&b=2"
		}
		rawName, rawValue, _ := strings.Cut(param, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: invalid DSN parameter name %s: %w", quoteName(rawName), err)
		}
		if !knownParams[name] && !sqliteParams[name] {
			return nil, fmt.Errorf("hiqlite: unknown DSN parameter %s", quoteName(name))
		}
		if seen[name] {
			return nil, fmt.Errorf("hiqlite: DSN parameter %s given twice", name)
		}
		seen[name] = true
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			if name == "_secret" {
				// The unescape error quotes part of the value.
				return nil, errors.New("hiqlite: invalid _secret: malformed %-escape")
			}
			return nil, invalidValue(name, rawValue, err)
		}
		if value == "" {
			return nil, fmt.Errorf("hiqlite: invalid %s \"\": empty value", name)
		}
		if sqliteParams[name] {
			if err := checkSQLiteParam(name, value); err != nil {
				return nil, err
			}
			if name == "mode" {
				mode = value
			}
			continue
		}
		if err := c.setParam(name, value); err != nil {
			return nil, err
		}
	}
	if mode == "memory" {
		c.DataDir = MemoryDir
	} else if seen["cache"] && !c.inMemory() {
		return nil, fmt.Errorf("hiqlite: DSN parameter cache applies to an in-memory database (%s or mode=memory), not to data directory %s", MemoryDir, quotePath(c.DataDir))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// knownParams are the DSN parameter names ParseDSN accepts.
var knownParams = map[string]bool{
	"_node": true, "_listen": true, "_advertise": true, "_gossip": true,
	"_join": true, "_expect": true, "_secret": true, "_secret_file": true,
	"_consistency": true, "_voter": true, "_foreign_keys": true, "_timeout": true, "_txidle": true,
	"_busy": true, "_reap": true, "_snapshot_entries": true,
	"_snapshot_bytes": true, "_log_segment": true,
	"_tls_cert": true, "_tls_key": true, "_tls_ca": true,
	"_txlock": true,
}

// sqliteParams are the SQLite URI parameters ParseDSN accepts, for the
// in-memory forms other drivers take (see ParseDSN).
var sqliteParams = map[string]bool{"mode": true, "cache": true}

// checkSQLiteParam checks the value of one of sqliteParams.
func checkSQLiteParam(name, value string) error {
	switch {
	case name == "mode" && value != "memory":
		return fmt.Errorf("hiqlite: invalid mode %s: only mode=memory (an in-memory node) is accepted; a data directory is always read-write and created if needed", quoteValue(value))
	case name == "cache" && value != "shared" && value != "private":
		return fmt.Errorf("hiqlite: invalid cache %s: want shared or private", quoteValue(value))
	}
	return nil
}

// quoteName quotes a parameter name for an error message. A name that
// contains "secret" is cut after that word, because a DSN missing the "="
// of "_secret=..." would otherwise print the secret as part of the name.
func quoteName(name string) string {
	if i := indexASCIIFold(name, secretWord); i >= 0 && name != "_secret_file" {
		if end := i + len(secretWord); end < len(name) {
			return strconv.Quote(name[:end]) + " (rest withheld)"
		}
	}
	return strconv.Quote(name)
}

// secretWord is what marks text that may hold a secret: a value with a
// mistyped separator ("_node=a?_secret=...", "_node=a;_secret=...") carries
// the secret inside another parameter's value.
const secretWord = "secret"

// quoteValue quotes a value from the DSN or the Config for an error
// message. A value that contains "secret" (in any case) is cut after that
// word, so that a secret carried inside it never reaches an error or a log.
func quoteValue(value string) string {
	if i := indexASCIIFold(value, secretWord); i >= 0 {
		if end := i + len(secretWord); end < len(value) {
			return strconv.Quote(value[:end]) + " (rest withheld)"
		}
	}
	return strconv.Quote(value)
}

// holdsSecretParam reports whether the free text of a path (the data
// directory, _secret_file) holds "_secret" followed by a character that
// would have separated its value in a DSN: such a path comes from a DSN
// whose separators were mistyped and carries the secret in it, so it is
// refused rather than created, logged or echoed.
func holdsSecretParam(path string) bool {
	for {
		i := indexASCIIFold(path, "_"+secretWord)
		if i < 0 {
			return false
		}
		path = path[i+1+len(secretWord):]
		if path == "" || strings.IndexByte("=:;&%?#, \t", path[0]) >= 0 {
			return true
		}
	}
}

// indexASCIIFold is strings.Index with ASCII letters matched in any case. It
// works on bytes, so the index is right for text that is not valid UTF-8
// (strings.ToLower would change its length).
func indexASCIIFold(s, word string) int {
	for i := 0; i+len(word) <= len(s); i++ {
		match := true
		for j := 0; j < len(word) && match; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			match = c == word[j]
		}
		if match {
			return i
		}
	}
	return -1
}

// quotePath quotes a path for an error message: in full, unless it holds a
// _secret parameter (holdsSecretParam), which Validate refuses.
func quotePath(path string) string {
	if holdsSecretParam(path) {
		return quoteValue(path)
	}
	return strconv.Quote(path)
}

// invalidValue is the error for a bad value of the parameter name. The cause
// is kept (and wrapped) only when the value cannot hold a secret: causes such
// as strconv's and net's errors quote the whole value.
func invalidValue(name, value string, cause error) error {
	if indexASCIIFold(value, secretWord) >= 0 {
		return fmt.Errorf("hiqlite: invalid %s %s", name, quoteValue(value))
	}
	return fmt.Errorf("hiqlite: invalid %s %q: %w", name, value, cause)
}

// setParam stores one unescaped, non-empty parameter value. It checks the
// syntax only; Validate checks the meaning.
func (c *Config) setParam(name, value string) error {
	var err error
	switch name {
	case "_node":
		c.NodeID = value
	case "_listen":
		c.Listen = value
	case "_advertise":
		c.Advertise = value
	case "_gossip":
		c.Gossip = value
	case "_join":
		c.Join = strings.Split(value, ",")
		for i, seed := range c.Join {
			c.Join[i] = strings.TrimSpace(seed)
			if c.Join[i] == "" {
				return invalidValue("_join", value, errors.New("empty entry"))
			}
		}
	case "_expect":
		c.Expect, err = strconv.Atoi(value)
		if err == nil && c.Expect < 1 {
			// 0 is the Config's "unset", which a DSN says by leaving
			// _expect out.
			err = errors.New("must be at least 1")
		}
	case "_secret":
		c.Secret = value
	case "_secret_file":
		c.SecretFile = value
	case "_consistency":
		c.Consistency, err = ParseConsistency(value)
		if err != nil {
			return invalidValue("_consistency", value, errors.New("want local or linearizable"))
		}
	case "_voter":
		c.Voter, err = strconv.ParseBool(value)
	case "_foreign_keys":
		c.ForeignKeys, err = strconv.ParseBool(value)
	case "_txlock":
		c.TxLock = strings.ToLower(value)
	case "_timeout":
		c.Timeout, err = time.ParseDuration(value)
	case "_txidle":
		c.TxIdle, err = time.ParseDuration(value)
	case "_busy":
		c.Busy, err = time.ParseDuration(value)
	case "_reap":
		c.Reap, err = time.ParseDuration(value)
	case "_snapshot_entries":
		c.SnapshotEntries, err = strconv.ParseUint(value, 10, 64)
	case "_snapshot_bytes":
		c.SnapshotBytes, err = parseSize(value)
	case "_log_segment":
		c.LogSegment, err = parseSize(value)
	case "_tls_cert":
		c.TLSCert = value
	case "_tls_key":
		c.TLSKey = value
	case "_tls_ca":
		c.TLSCA = value
	}
	if err != nil {
		return invalidValue(name, value, err)
	}
	return nil
}

// FormatDSN returns the canonical DSN of c: DataDir, then "?" and the
// parameters that differ from their defaults, sorted by name, with values
// query-escaped. There is no "?" when every parameter has its default.
//
// The result holds the secret in clear when c.Secret is set; use String for
// anything that may be logged.
func (c *Config) FormatDSN() string {
	return c.format(false)
}

// String returns FormatDSN with the value of _secret replaced by "REDACTED",
// for logs and error messages.
func (c *Config) String() string {
	return c.format(true)
}

func (c *Config) format(redact bool) string {
	var params [][2]string
	add := func(name, value string) { params = append(params, [2]string{name, value}) }
	addString := func(name, value string) {
		if value != "" {
			add(name, value)
		}
	}
	addDuration := func(name string, value, def time.Duration) {
		if value != def {
			add(name, value.String())
		}
	}

	addString("_node", c.NodeID)
	addString("_listen", c.Listen)
	addString("_advertise", c.Advertise)
	addString("_gossip", c.Gossip)
	if len(c.Join) > 0 {
		add("_join", strings.Join(c.Join, ","))
	}
	if c.Expect != 0 {
		add("_expect", strconv.Itoa(c.Expect))
	}
	if c.Secret != "" {
		if redact {
			add("_secret", redacted)
		} else {
			add("_secret", c.Secret)
		}
	}
	addString("_secret_file", c.SecretFile)
	if c.Consistency != Local {
		add("_consistency", c.Consistency.String())
	}
	if !c.Voter {
		add("_voter", "false")
	}
	if c.ForeignKeys {
		add("_foreign_keys", "true")
	}
	addDuration("_timeout", c.Timeout, defaultTimeout)
	addDuration("_txidle", c.TxIdle, defaultTxIdle)
	addDuration("_busy", c.Busy, defaultBusy)
	addDuration("_reap", c.Reap, defaultReap)
	if c.TxLock != defaultTxLock {
		add("_txlock", c.TxLock)
	}
	if c.SnapshotEntries != defaultSnapshotEntries {
		add("_snapshot_entries", strconv.FormatUint(c.SnapshotEntries, 10))
	}
	if c.SnapshotBytes != defaultSnapshotBytes {
		add("_snapshot_bytes", formatSize(c.SnapshotBytes))
	}
	if c.LogSegment != defaultLogSegment {
		add("_log_segment", formatSize(c.LogSegment))
	}
	addString("_tls_cert", c.TLSCert)
	addString("_tls_key", c.TLSKey)
	addString("_tls_ca", c.TLSCA)
	slices.SortFunc(params, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })

	var b strings.Builder
	if strings.HasPrefix(c.DataDir, filePrefix) {
		// ParseDSN strips one "file:", so keep a DataDir that starts
		// with one intact.
		b.WriteString(filePrefix)
	}
	b.WriteString(c.DataDir)
	for i, p := range params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p[1]))
	}
	return b.String()
}

// Validate checks every field and the rules that tie fields together. Its
// errors name the DSN parameters and values involved, never the secret.
func (c *Config) Validate() error {
	if err := c.validateFields(); err != nil {
		return err
	}

	if c.inMemory() && c.Listen != "" {
		return fmt.Errorf("hiqlite: _listen %s: an in-memory node (%s) is a single node with no network; give a data directory to run a cluster node", quoteValue(c.Listen), MemoryDir)
	}
	// A node without _listen is a one-voter cluster with no network.
	if c.Listen == "" {
		switch {
		case c.Advertise != "":
			return fmt.Errorf("hiqlite: _advertise %s requires _listen", quoteValue(c.Advertise))
		case c.Gossip != "":
			return fmt.Errorf("hiqlite: _gossip %s requires _listen", quoteValue(c.Gossip))
		case c.Join != nil:
			return fmt.Errorf("hiqlite: _join %s requires _listen", quoteValue(strings.Join(c.Join, ",")))
		case c.Expect > 1:
			return fmt.Errorf("hiqlite: _expect=%d requires _listen", c.Expect)
		case !c.Voter:
			return errors.New("hiqlite: _voter=false requires _listen (a node without _listen is a one-voter cluster)")
		}
	}
	// Peers find each other through gossip.
	if c.Gossip == "" {
		switch {
		case c.Join != nil:
			return fmt.Errorf("hiqlite: _join %s requires _gossip", quoteValue(strings.Join(c.Join, ",")))
		case c.Expect > 1:
			return fmt.Errorf("hiqlite: _expect=%d requires _gossip", c.Expect)
		}
	}
	if c.Listen == "" && (c.TLSCert != "" || c.TLS != nil) {
		return errors.New("hiqlite: TLS (_tls_cert, _tls_key, _tls_ca or Config.TLS) requires _listen: it protects the node port")
	}
	if c.Listen != "" && c.Gossip != "" && sameListener(c.Listen, c.Gossip) {
		return fmt.Errorf("hiqlite: _listen %s and _gossip %s use the same port", quoteValue(c.Listen), quoteValue(c.Gossip))
	}

	if c.Secret == "" && c.SecretFile == "" {
		addrs := [][2]string{{"_listen", c.Listen}, {"_advertise", c.Advertise}, {"_gossip", c.Gossip}}
		for _, seed := range c.Join {
			addrs = append(addrs, [2]string{"_join", seed})
		}
		for _, a := range addrs {
			if a[1] != "" && !cluster.IsLoopback(a[1]) {
				return fmt.Errorf("hiqlite: %s %s is not a loopback address: set _secret or _secret_file", a[0], quoteValue(a[1]))
			}
		}
	}
	return nil
}

// validateFields checks each field on its own.
func (c *Config) validateFields() error {
	if c.DataDir == "" {
		return errors.New("hiqlite: empty data directory")
	}
	if holdsSecretParam(c.DataDir) {
		return fmt.Errorf("hiqlite: data directory %s holds a _secret parameter: parameters follow a '?' and are separated by '&'", quoteValue(c.DataDir))
	}
	if holdsSecretParam(c.SecretFile) {
		return fmt.Errorf("hiqlite: _secret_file %s holds a _secret parameter: parameters are separated by '&'", quotePath(c.SecretFile))
	}
	if strings.Contains(c.DataDir, "?") {
		return fmt.Errorf("hiqlite: data directory %s contains '?'", quotePath(c.DataDir))
	}
	if c.NodeID != "" && !validNodeID(c.NodeID) {
		return invalidValue("_node", c.NodeID, fmt.Errorf("want 1 to %d characters of [A-Za-z0-9._-]", maxNodeIDLen))
	}
	if c.Listen != "" {
		if err := checkAddr(c.Listen, true); err != nil {
			return invalidValue("_listen", c.Listen, err)
		}
	}
	if c.Advertise != "" {
		if err := checkAddr(c.Advertise, false); err != nil {
			return invalidValue("_advertise", c.Advertise, err)
		}
	}
	if c.Gossip != "" {
		if err := checkAddr(c.Gossip, true); err != nil {
			return invalidValue("_gossip", c.Gossip, err)
		}
	}
	if c.Join != nil && len(c.Join) == 0 {
		// FormatDSN could not tell it from nil.
		return errors.New("hiqlite: _join is an empty list (use nil for no seeds)")
	}
	for _, seed := range c.Join {
		if err := checkAddr(seed, false); err != nil {
			return invalidValue("_join entry", seed, err)
		}
	}
	if c.Expect < 0 {
		return fmt.Errorf("hiqlite: invalid _expect %d: must be at least 1 (0 = unset)", c.Expect)
	}
	if c.Secret != "" && c.SecretFile != "" {
		return fmt.Errorf("hiqlite: _secret and _secret_file %s are mutually exclusive", quotePath(c.SecretFile))
	}
	if c.Secret != "" && len(c.Secret) < minSecretLen {
		return fmt.Errorf("hiqlite: _secret must be at least %d bytes (got %d)", minSecretLen, len(c.Secret))
	}
	if c.Consistency > Linearizable {
		return fmt.Errorf("hiqlite: invalid _consistency %d: want local or linearizable", c.Consistency)
	}
	switch c.TxLock {
	case "deferred", "immediate", "exclusive":
	default:
		return invalidValue("_txlock", c.TxLock, errors.New("want deferred, immediate or exclusive"))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"_timeout", c.Timeout}, {"_txidle", c.TxIdle}, {"_busy", c.Busy}, {"_reap", c.Reap}} {
		if d.value <= 0 {
			return fmt.Errorf("hiqlite: invalid %s %q: must be positive", d.name, d.value.String())
		}
	}
	if c.Reap < minReap {
		return fmt.Errorf("hiqlite: invalid _reap %q: must be at least %v", c.Reap.String(), minReap)
	}
	if c.SnapshotEntries < minSnapshotEntries {
		return fmt.Errorf("hiqlite: invalid _snapshot_entries %d: must be at least %d", c.SnapshotEntries, minSnapshotEntries)
	}
	if c.SnapshotBytes < minSnapshotBytes {
		return fmt.Errorf("hiqlite: invalid _snapshot_bytes %s: must be at least %s", formatSize(c.SnapshotBytes), formatSize(minSnapshotBytes))
	}
	if c.LogSegment < minLogSegment || c.LogSegment > maxLogSegment {
		return fmt.Errorf("hiqlite: invalid _log_segment %s: must be from %s to %s", formatSize(c.LogSegment), formatSize(minLogSegment), formatSize(maxLogSegment))
	}
	return c.validateTLS()
}

// validateTLS checks that the TLS files come together, or that TLS holds
// both sides of mutual TLS.
func (c *Config) validateTLS() error {
	files := [3]struct{ name, path string }{{"_tls_cert", c.TLSCert}, {"_tls_key", c.TLSKey}, {"_tls_ca", c.TLSCA}}
	var set, missing []string
	for _, f := range files {
		if f.path == "" {
			missing = append(missing, f.name)
			continue
		}
		set = append(set, f.name)
		if holdsSecretParam(f.path) {
			return fmt.Errorf("hiqlite: %s %s holds a _secret parameter: parameters are separated by '&'", f.name, quotePath(f.path))
		}
	}
	if len(set) > 0 && len(missing) > 0 {
		return fmt.Errorf("hiqlite: _tls_cert, _tls_key and _tls_ca go together: %s set without %s", strings.Join(set, " and "), strings.Join(missing, " and "))
	}
	if c.TLS != nil {
		if len(set) > 0 {
			return errors.New("hiqlite: Config.TLS and _tls_cert, _tls_key, _tls_ca are mutually exclusive")
		}
		if err := cluster.CheckTLSConfig(c.TLS); err != nil {
			return err
		}
	}
	return nil
}

func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > maxNodeIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; !isAlnum(b) && b != '.' && b != '_' && b != '-' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// checkAddr checks a host:port address. A bind address (_listen, _gossip)
// may have an empty host (all interfaces) and port 0 (ephemeral); an address
// that others dial (_advertise, _join) needs both a host and a port.
//
// The address must be in the form net.JoinHostPort writes, and the host an
// IP literal or a DNS name, so that no address contains "," or spaces, which
// _join could not carry.
func checkAddr(addr string, bind bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if net.JoinHostPort(host, port) != addr {
		return errors.New("not in host:port form")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if n == 0 && !bind {
		return errors.New("port 0 is only allowed for _listen and _gossip")
	}
	if host == "" {
		if !bind {
			return errors.New("empty host")
		}
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" && !validNodeID(ip.Zone()) {
			return fmt.Errorf("invalid IPv6 zone %q", ip.Zone())
		}
		if ip.IsUnspecified() && !bind {
			return fmt.Errorf("%s is not an address others can dial", host)
		}
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	return nil
}

// validHostname reports whether host is a DNS name: dot-separated labels of
// 1 to 63 letters, digits, '-' or '_', 253 bytes at most.
func validHostname(host string) bool {
	if len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			if b := label[i]; !isAlnum(b) && b != '-' && b != '_' {
				return false
			}
		}
	}
	return true
}

// sameListener reports whether two valid bind addresses would claim the same
// port on a shared interface. It only catches the obvious cases: equal hosts,
// or one of them binding all interfaces.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.ParseUint(pa, 10, 16)
	nb, _ := strconv.ParseUint(pb, 10, 16)
	if na == 0 || na != nb {
		return false
	}
	return ha == hb || isWildcard(ha) || isWildcard(hb)
}

func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// loadSecret returns the cluster secret: Secret, or the contents of
// SecretFile with surrounding white space trimmed. It returns nil, nil when
// neither is set. Its errors never contain the secret.
func (c *Config) loadSecret() ([]byte, error) {
	switch {
	case c.Secret != "" && c.SecretFile != "":
		return nil, fmt.Errorf("hiqlite: _secret and _secret_file %s are mutually exclusive", quotePath(c.SecretFile))
	case c.Secret != "":
		if len(c.Secret) < minSecretLen {
			return nil, fmt.Errorf("hiqlite: _secret must be at least %d bytes (got %d)", minSecretLen, len(c.Secret))
		}
		return []byte(c.Secret), nil
	case c.SecretFile != "":
		data, err := os.ReadFile(c.SecretFile)
		if err != nil {
			// The *PathError names the file, never its contents.
			return nil, fmt.Errorf("hiqlite: reading _secret_file: %w", err)
		}
		secret := bytes.TrimSpace(data)
		if len(secret) < minSecretLen {
			return nil, fmt.Errorf("hiqlite: the secret in _secret_file %s must be at least %d bytes (got %d)", quotePath(c.SecretFile), minSecretLen, len(secret))
		}
		return secret, nil
	}
	return nil, nil
}

// sizeUnits are the suffixes parseSize accepts, largest first.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseSize parses a byte count: digits with an optional suffix B, KiB, MiB
// or GiB (powers of 1024).
func parseSize(value string) (uint64, error) {
	digits, shift := value, uint(0)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(value, u.suffix); ok {
			digits, shift = rest, u.shift
			break
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, errors.New("want a byte count such as 1048576, 512KiB, 64MiB or 1GiB")
	}
	if n > math.MaxUint64>>shift {
		return 0, errors.New("too large")
	}
	return n << shift, nil
}

// formatSize writes n in the largest unit that divides it exactly.
func formatSize(n uint64) string {
	for _, u := range sizeUnits {
		if unit := uint64(1) << u.shift; n >= unit && n%unit == 0 && u.shift > 0 {
			return strconv.FormatUint(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}
