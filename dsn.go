package hiqlite

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
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

	// Backup (_backup) turns on scheduled backups: the leader writes one to
	// this destination, a directory or an s3://bucket/prefix URL, every
	// BackupEvery (_backup_every, default 24h, at least 1s) and then
	// removes the oldest backups there beyond BackupKeep (_backup_keep,
	// default 7). A destination holds the backups of one cluster: every
	// backup named as one there counts towards BackupKeep. BackupKeyFile
	// (_backup_key_file) encrypts them: a file of age keys, one per line
	// (public "age1..." or secret "AGE-SECRET-KEY-1..." keys), or else a
	// passphrase on its first line. Without Backup the other three must
	// keep their defaults.
	Backup        string
	BackupEvery   time.Duration
	BackupKeep    int
	BackupKeyFile string

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
	// Logger receives the node's logs: its own, Raft's and memberlist's,
	// at levels an operator can act on (expected events, such as a peer
	// closing, a node leaving or a shutdown, are not errors; a failure
	// Raft retries against one peer is a warning once, then summarised
	// every minute). A DSN cannot carry it. nil = text lines on stderr at
	// the level the environment variable HIQLITE_LOG names: debug, info,
	// warn (the default) or error, or off. The node of a data directory
	// takes the Logger of the Config that starts it.
	Logger *slog.Logger

	// ConnInit registers the application's SQL functions, collations and
	// extensions (the ncruces driver's ext/ packages, such as
	// ext/regexp.Register) on every connection of the node, the writer
	// and every read connection; a DSN cannot carry it. An error fails the
	// opening, wrapped. On the writer hiqlite's own functions (random(),
	// the date and UUID functions, ...) replace any of the hook's of the
	// same name. Every node replays each write, so a write may call only
	// functions registered with sqlite3.DETERMINISTIC: on the writer, the
	// others fail in writes with an error naming them, and stay callable
	// in reads. The node runs the ConnInit of the first Config that opens
	// its DATA_DIR in the process, for the connectors that share it too.
	// Every node of a cluster must register the same functions and
	// collations.
	ConnInit func(*sqlite3.Conn) error
}

// Defaults of the parameters FormatDSN leaves out when unchanged.
const (
	defaultTimeout = 10 * time.Second
	defaultTxIdle  = 5 * time.Second
	defaultBusy    = 5 * time.Second
	defaultReap    = 5 * time.Minute
	defaultTxLock  = "deferred"
	// Scheduled backups: daily, the last week kept.
	defaultBackupEvery = 24 * time.Hour
	defaultBackupKeep  = 7
	minBackupEvery     = time.Second
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

		BackupEvery: defaultBackupEvery,
		BackupKeep:  defaultBackupKeep,
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
	if IsRemoteDSN(dsn) {
		return nil, fmt.Errorf("hiqlite: %s... is a remote client's DSN (it attaches to a running cluster), not a node's: sql.Open takes either; ParseClientDSN parses it", RemotePrefix)
	}
	c := NewConfig()
	dir, query, _ := strings.Cut(strings.TrimPrefix(dsn, filePrefix), "?")
	if dir == "" {
		return nil, errors.New("hiqlite: the DSN has an empty data directory")
	}
	c.DataDir = dir

	var mode string
	seen, err := walkParams(query, func(name string) error {
		if !knownParams[name] && !sqliteParams[name] {
			return fmt.Errorf("hiqlite: unknown DSN parameter %s", quoteName(name))
		}
		return nil
	}, func(name, value string) error {
		if sqliteParams[name] {
			if name == "mode" {
				mode = value
			}
			return checkSQLiteParam(name, value)
		}
		return c.setParam(name, value)
	})
	if err != nil {
		return nil, err
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

// walkParams walks the parameters of a DSN's query: it unescapes each
// name and asks known whether it is one, refuses one given twice or with
// an empty or malformed value, and passes the unescaped value to set. It
// returns the names seen. Errors never show the value of _secret.
func walkParams(query string, known func(name string) error, set func(name, value string) error) (map[string]bool, error) {
	seen := make(map[string]bool)
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
		if err := known(name); err != nil {
			return nil, err
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
		if err := set(name, value); err != nil {
			return nil, err
		}
	}
	return seen, nil
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
	"_backup": true, "_backup_every": true, "_backup_keep": true, "_backup_key_file": true,
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
	case "_backup":
		c.Backup = value
	case "_backup_every":
		c.BackupEvery, err = time.ParseDuration(value)
	case "_backup_keep":
		c.BackupKeep, err = strconv.Atoi(value)
	case "_backup_key_file":
		c.BackupKeyFile = value
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
	addString("_backup", c.Backup)
	addDuration("_backup_every", c.BackupEvery, defaultBackupEvery)
	if c.BackupKeep != defaultBackupKeep {
		add("_backup_keep", strconv.Itoa(c.BackupKeep))
	}
	addString("_backup_key_file", c.BackupKeyFile)
	addString("_tls_cert", c.TLSCert)
	addString("_tls_key", c.TLSKey)
	addString("_tls_ca", c.TLSCA)
	var b strings.Builder
	if strings.HasPrefix(c.DataDir, filePrefix) {
		// ParseDSN strips one "file:", so keep a DataDir that starts
		// with one intact.
		b.WriteString(filePrefix)
	}
	b.WriteString(c.DataDir)
	writeQuery(&b, params)
	return b.String()
}

// writeQuery writes params, sorted by name and escaped, as a DSN's query.
func writeQuery(b *strings.Builder, params [][2]string) {
	slices.SortFunc(params, func(x, y [2]string) int { return strings.Compare(x[0], y[0]) })
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
