package hiqlite

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Secrets used by the DSN table. Tests check that neither ever shows up in
// an error or in Config.String.
const (
	testSecret  = "s3cr3t-VALUE-for-tests" // long enough to be valid
	shortSecret = "sh0rt"                  // too short
)

// conf returns the defaults with DataDir set, changed by set.
func conf(dir string, set func(c *Config)) *Config {
	c := NewConfig()
	c.DataDir = dir
	if set != nil {
		set(c)
	}
	return c
}

// dsnTests drives TestParseDSN, TestFormatDSNRoundTrip,
// TestDSNErrorsHideSecret and the FuzzParseDSN seed corpus. A valid DSN has
// want (and optionally format, its canonical form); an invalid one has err,
// a substring of the error.
var dsnTests = []struct {
	dsn    string
	want   *Config
	format string
	err    string
}{
	// Data directory.
	{dsn: "/var/lib/hiqlite", want: conf("/var/lib/hiqlite", nil), format: "/var/lib/hiqlite"},
	{dsn: "file:/var/lib/hiqlite", want: conf("/var/lib/hiqlite", nil), format: "/var/lib/hiqlite"},
	{dsn: "data?", want: conf("data", nil), format: "data"},
	{dsn: "data?&&", want: conf("data", nil), format: "data"},
	{dsn: "file:file:odd", want: conf("file:odd", nil), format: "file:file:odd"},
	{dsn: "/tmp/my data=x&y#z", want: conf("/tmp/my data=x&y#z", nil), format: "/tmp/my data=x&y#z"},
	{dsn: `C:\hiqlite\data?_node=win`, want: conf(`C:\hiqlite\data`, func(c *Config) { c.NodeID = "win" })},
	{dsn: "", err: "empty data directory"},
	{dsn: "file:", err: "empty data directory"},
	{dsn: "?_node=n1", err: "empty data directory"},
	{dsn: "data?x?_node=n1", err: `unknown DSN parameter "x?_node"`},

	// Parameter syntax.
	{dsn: "data?%5Fnode=n1&_listen=127.0.0.1%3A7000",
		want:   conf("data", func(c *Config) { c.NodeID = "n1"; c.Listen = "127.0.0.1:7000" }),
		format: "data?_listen=127.0.0.1%3A7000&_node=n1"},
	{dsn: "data?_foo=1", err: `hiqlite: unknown DSN parameter "_foo"`},
	{dsn: "data?node=n1", err: `unknown DSN parameter "node"`},
	{dsn: "data?%zz=1", err: `invalid DSN parameter name "%zz"`},
	{dsn: "data?_node=a&_node=b", err: "_node given twice"},
	{dsn: "data?_node=a&%5Fnode=a", err: "_node given twice"},
	{dsn: "data?_node=", err: `invalid _node "": empty value`},
	{dsn: "data?_node", err: `invalid _node "": empty value`},
	{dsn: "data?_timeout=%zz", err: `invalid _timeout "%zz"`},

	// _node.
	{dsn: "data?_node=Node-1.a_b", want: conf("data", func(c *Config) { c.NodeID = "Node-1.a_b" })},
	{dsn: "data?_node=" + strings.Repeat("n", 64), want: conf("data", func(c *Config) { c.NodeID = strings.Repeat("n", 64) })},
	{dsn: "data?_node=" + strings.Repeat("n", 65), err: `invalid _node "nnnn`},
	{dsn: "data?_node=bad+id", err: `invalid _node "bad id"`},
	{dsn: "data?_node=caf%C3%A9", err: `invalid _node "café"`},

	// Durations.
	{dsn: "data?_txidle=250ms&_timeout=1m30s&_busy=1h",
		want: conf("data", func(c *Config) {
			c.Timeout = 90 * time.Second
			c.TxIdle = 250 * time.Millisecond
			c.Busy = time.Hour
		}),
		format: "data?_busy=1h0m0s&_timeout=1m30s&_txidle=250ms"},
	{dsn: "data?_timeout=10s&_txidle=5s&_busy=5000ms", want: conf("data", nil), format: "data"},
	{dsn: "data?_timeout=abc", err: `invalid _timeout "abc": time: invalid duration`},
	{dsn: "data?_timeout=0s", err: `invalid _timeout "0s": must be positive`},
	{dsn: "data?_txidle=-1s", err: `invalid _txidle "-1s": must be positive`},
	{dsn: "data?_busy=5", err: `invalid _busy "5": time: missing unit`},

	// _reap.
	{dsn: "data?_reap=90s", want: conf("data", func(c *Config) { c.Reap = 90 * time.Second }), format: "data?_reap=1m30s"},
	{dsn: "data?_reap=1s", want: conf("data", func(c *Config) { c.Reap = time.Second }), format: "data?_reap=1s"},
	{dsn: "data?_reap=1000ms&_busy=2s", want: conf("data", func(c *Config) { c.Reap = time.Second; c.Busy = 2 * time.Second }), format: "data?_busy=2s&_reap=1s"},
	{dsn: "data?_reap=24h", want: conf("data", func(c *Config) { c.Reap = 24 * time.Hour }), format: "data?_reap=24h0m0s"},
	{dsn: "data?_reap=5m", want: conf("data", nil), format: "data"},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_reap=10s",
		want:   conf("data", func(c *Config) { c.Listen = "127.0.0.1:7000"; c.Gossip = "127.0.0.1:7946"; c.Reap = 10 * time.Second }),
		format: "data?_gossip=127.0.0.1%3A7946&_listen=127.0.0.1%3A7000&_reap=10s"},
	{dsn: "data?_reap=", err: `invalid _reap "": empty value`},
	{dsn: "data?_reap=soon", err: `invalid _reap "soon": time: invalid duration`},
	{dsn: "data?_reap=30", err: `invalid _reap "30": time: missing unit`},
	{dsn: "data?_reap=0s", err: `invalid _reap "0s": must be positive`},
	{dsn: "data?_reap=-5m", err: `invalid _reap "-5m0s": must be positive`},
	{dsn: "data?_reap=999ms", err: `invalid _reap "999ms": must be at least 1s`},
	{dsn: "data?_reap=1s&_reap=2s", err: "_reap given twice"},
	// _snapshot_entries.
	{dsn: "data?_snapshot_entries=1000", want: conf("data", func(c *Config) { c.SnapshotEntries = 1000 }), format: "data?_snapshot_entries=1000"},
	{dsn: "data?_snapshot_entries=16&_reap=1m", want: conf("data", func(c *Config) { c.SnapshotEntries = 16; c.Reap = time.Minute }), format: "data?_reap=1m0s&_snapshot_entries=16"},
	{dsn: "data?_snapshot_entries=8192", want: conf("data", nil), format: "data"},
	{dsn: "data?_snapshot_entries=15", err: "invalid _snapshot_entries 15: must be at least 16"},
	{dsn: "data?_snapshot_entries=-1", err: `invalid _snapshot_entries "-1"`},
	{dsn: "data?_snapshot_entries=lots", err: `invalid _snapshot_entries "lots"`},
	{dsn: "data?_snapshot_entries=", err: `invalid _snapshot_entries "": empty value`},
	// _foreign_keys.
	{dsn: "data?_foreign_keys=true", want: conf("data", func(c *Config) { c.ForeignKeys = true }), format: "data?_foreign_keys=true"},
	{dsn: "data?_foreign_keys=1", want: conf("data", func(c *Config) { c.ForeignKeys = true }), format: "data?_foreign_keys=true"},
	{dsn: "data?_foreign_keys=false", want: conf("data", nil), format: "data"},
	{dsn: "data?_foreign_keys=on", err: `invalid _foreign_keys "on"`},
	// _txlock.
	{dsn: "data?_txlock=immediate", want: conf("data", func(c *Config) { c.TxLock = "immediate" }), format: "data?_txlock=immediate"},
	{dsn: "data?_txlock=EXCLUSIVE&_busy=2s", want: conf("data", func(c *Config) { c.TxLock = "exclusive"; c.Busy = 2 * time.Second }), format: "data?_busy=2s&_txlock=exclusive"},
	{dsn: "data?_txlock=deferred", want: conf("data", nil), format: "data"},
	{dsn: "data?_txlock=", err: `invalid _txlock "": empty value`},
	{dsn: "data?_txlock=write", err: `invalid _txlock "write": want deferred, immediate or exclusive`},
	{dsn: "data?_txlock=immediate&_txlock=deferred", err: "_txlock given twice"},
	// _backup, _backup_every, _backup_keep, _backup_key_file.
	{dsn: "data?_backup=/var/backups/hq", want: conf("data", func(c *Config) { c.Backup = "/var/backups/hq" }), format: "data?_backup=%2Fvar%2Fbackups%2Fhq"},
	{dsn: "data?_backup=s3%3A%2F%2Fbucket%2Fprefix&_backup_every=1h&_backup_keep=3&_backup_key_file=%2Fetc%2Fhq.key",
		want: conf("data", func(c *Config) {
			c.Backup, c.BackupEvery, c.BackupKeep, c.BackupKeyFile = "s3://bucket/prefix", time.Hour, 3, "/etc/hq.key"
		}),
		format: "data?_backup=s3%3A%2F%2Fbucket%2Fprefix&_backup_every=1h0m0s&_backup_keep=3&_backup_key_file=%2Fetc%2Fhq.key"},
	{dsn: "data?_backup=b&_backup_every=24h&_backup_keep=7", want: conf("data", func(c *Config) { c.Backup = "b" }), format: "data?_backup=b"},
	{dsn: "data?_backup_every=1h", err: "_backup_every 1h0m0s requires _backup"},
	{dsn: "data?_backup_keep=2", err: "_backup_keep 2 requires _backup"},
	{dsn: "data?_backup_key_file=k", err: "_backup_key_file \"k\" requires _backup"},
	{dsn: "data?_backup=b&_backup_every=10ms", err: `invalid _backup_every "10ms": must be at least 1s`},
	{dsn: "data?_backup=b&_backup_every=daily", err: `invalid _backup_every "daily"`},
	{dsn: "data?_backup=b&_backup_keep=0", err: `invalid _backup_keep "0": must be at least 1`},
	{dsn: "data?_backup=ftp%3A%2F%2Fhost%2Fx", err: `invalid _backup "ftp://host/x": unknown scheme "ftp"`},
	// _snapshot_bytes and _log_segment.
	{dsn: "data?_snapshot_bytes=64MiB&_log_segment=1MiB",
		want:   conf("data", func(c *Config) { c.SnapshotBytes = 64 << 20; c.LogSegment = 1 << 20 }),
		format: "data?_log_segment=1MiB&_snapshot_bytes=64MiB"},
	{dsn: "data?_snapshot_bytes=1048577", want: conf("data", func(c *Config) { c.SnapshotBytes = 1<<20 + 1 }), format: "data?_snapshot_bytes=1048577"},
	{dsn: "data?_snapshot_bytes=3072KiB", want: conf("data", func(c *Config) { c.SnapshotBytes = 3 << 20 }), format: "data?_snapshot_bytes=3MiB"},
	{dsn: "data?_snapshot_bytes=2GiB", want: conf("data", func(c *Config) { c.SnapshotBytes = 2 << 30 }), format: "data?_snapshot_bytes=2GiB"},
	{dsn: "data?_snapshot_bytes=268435456B&_log_segment=4MiB", want: conf("data", nil), format: "data"},
	{dsn: "data?_snapshot_bytes=1023KiB", err: "invalid _snapshot_bytes 1023KiB: must be at least 1MiB"},
	{dsn: "data?_snapshot_bytes=1MB", err: `invalid _snapshot_bytes "1MB": want a byte count`},
	{dsn: "data?_snapshot_bytes=-1MiB", err: `invalid _snapshot_bytes "-1MiB": want a byte count`},
	{dsn: "data?_snapshot_bytes=99999999999GiB", err: `invalid _snapshot_bytes "99999999999GiB": too large`},
	{dsn: "data?_snapshot_bytes=", err: `invalid _snapshot_bytes "": empty value`},
	{dsn: "data?_log_segment=512KiB", err: "invalid _log_segment 512KiB: must be from 1MiB to 1GiB"},
	{dsn: "data?_log_segment=2GiB", err: "invalid _log_segment 2GiB: must be from 1MiB to 1GiB"},
	{dsn: "data?_log_segment=big", err: `invalid _log_segment "big": want a byte count`},

	// In-memory nodes: the forms other SQLite drivers take.
	{dsn: ":memory:", want: conf(MemoryDir, nil), format: ":memory:"},
	{dsn: "file::memory:", want: conf(MemoryDir, nil), format: ":memory:"},
	{dsn: "file::memory:?cache=shared&_busy=1s", want: conf(MemoryDir, func(c *Config) { c.Busy = time.Second }), format: ":memory:?_busy=1s"},
	{dsn: "file:app?mode=memory&cache=shared", want: conf(MemoryDir, nil), format: ":memory:"},
	{dsn: ":memory:?cache=private", want: conf(MemoryDir, nil), format: ":memory:"},
	{dsn: ":memory:?_listen=127.0.0.1:7001", err: "_listen \"127.0.0.1:7001\": an in-memory node (:memory:) is a single node"},
	{dsn: "file:app?mode=ro", err: `invalid mode "ro": only mode=memory`},
	{dsn: ":memory:?cache=none", err: `invalid cache "none": want shared or private`},
	{dsn: "data?cache=shared", err: `cache applies to an in-memory database`},
	{dsn: ":memory:?mode=memory&mode=memory", err: "mode given twice"},

	// _consistency and _voter.
	{dsn: "data?_consistency=LINEARIZABLE",
		want:   conf("data", func(c *Config) { c.Consistency = Linearizable }),
		format: "data?_consistency=linearizable"},
	{dsn: "data?_consistency=local", want: conf("data", nil), format: "data"},
	{dsn: "data?_consistency=strong", err: `invalid _consistency "strong": want local or linearizable`},
	{dsn: "data?_listen=127.0.0.1:7000&_voter=0",
		want:   conf("data", func(c *Config) { c.Listen = "127.0.0.1:7000"; c.Voter = false }),
		format: "data?_listen=127.0.0.1%3A7000&_voter=false"},
	{dsn: "data?_voter=true", want: conf("data", nil), format: "data"},
	{dsn: "data?_voter=maybe", err: `invalid _voter "maybe"`},
	{dsn: "data?_voter=false", err: "_voter=false requires _listen"},

	// Addresses.
	{dsn: "data?_listen=localhost:0&_gossip=localhost:0",
		want: conf("data", func(c *Config) { c.Listen = "localhost:0"; c.Gossip = "localhost:0" })},
	{dsn: "data?_listen=[::1]:7000", want: conf("data", func(c *Config) { c.Listen = "[::1]:7000" })},
	{dsn: "data?_listen=[::ffff:127.0.0.1]:7000", want: conf("data", func(c *Config) { c.Listen = "[::ffff:127.0.0.1]:7000" })},
	{dsn: "data?_listen=127.9.9.9:7000&_advertise=LOCALHOST:7001",
		want: conf("data", func(c *Config) { c.Listen = "127.9.9.9:7000"; c.Advertise = "LOCALHOST:7001" })},
	{dsn: "data?_listen=[fe80::1%25eth0]:7000&_secret=" + testSecret,
		want: conf("data", func(c *Config) { c.Listen = "[fe80::1%eth0]:7000"; c.Secret = testSecret })},
	{dsn: "data?_listen=node-1.example.com:7000&_secret=" + testSecret,
		want: conf("data", func(c *Config) { c.Listen = "node-1.example.com:7000"; c.Secret = testSecret })},
	{dsn: "data?_listen=127.0.0.1", err: `invalid _listen "127.0.0.1": address 127.0.0.1: missing port in address`},
	{dsn: "data?_listen=127.0.0.1:http", err: `invalid _listen "127.0.0.1:http": port "http" is not a number`},
	{dsn: "data?_listen=127.0.0.1:65536", err: `invalid _listen "127.0.0.1:65536": port "65536"`},
	{dsn: "data?_listen=::1:7000", err: `invalid _listen "::1:7000"`},
	{dsn: "data?_listen=[localhost]:7000", err: `invalid _listen "[localhost]:7000": not in host:port form`},
	{dsn: "data?_listen=bad!host:7000", err: `invalid _listen "bad!host:7000": host "bad!host" is neither`},
	{dsn: "data?_listen=[fe80::1%25a,b]:7000", err: `invalid IPv6 zone "a,b"`},
	{dsn: "data?_listen=127.0.0.1:7000&_advertise=127.0.0.1:0", err: `invalid _advertise "127.0.0.1:0": port 0 is only allowed for _listen and _gossip`},
	{dsn: "data?_listen=127.0.0.1:7000&_advertise=:7000", err: `invalid _advertise ":7000": empty host`},
	{dsn: "data?_listen=127.0.0.1:7000&_advertise=0.0.0.0:7000", err: `invalid _advertise "0.0.0.0:7000": 0.0.0.0 is not an address others can dial`},
	{dsn: "data?_advertise=127.0.0.1:7000", err: `_advertise "127.0.0.1:7000" requires _listen`},
	{dsn: "data?_gossip=127.0.0.1:7946", err: `_gossip "127.0.0.1:7946" requires _listen`},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7000", err: `_listen "127.0.0.1:7000" and _gossip "127.0.0.1:7000" use the same port`},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=:7000&_secret=" + testSecret, err: "use the same port"},

	// _join and _expect.
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_join=localhost:7947,+127.0.0.2:7946+&_expect=2",
		want: conf("data", func(c *Config) {
			c.Listen = "127.0.0.1:7000"
			c.Gossip = "127.0.0.1:7946"
			c.Join = []string{"localhost:7947", "127.0.0.2:7946"}
			c.Expect = 2
		}),
		format: "data?_expect=2&_gossip=127.0.0.1%3A7946&_join=localhost%3A7947%2C127.0.0.2%3A7946&_listen=127.0.0.1%3A7000"},
	// Without _expect a node with _join only joins; an explicit _expect
	// (even 1, which lets it bootstrap alone) stays in the canonical DSN.
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_join=127.0.0.1:7947",
		want: conf("data", func(c *Config) {
			c.Listen = "127.0.0.1:7000"
			c.Gossip = "127.0.0.1:7946"
			c.Join = []string{"127.0.0.1:7947"}
		}),
		format: "data?_gossip=127.0.0.1%3A7946&_join=127.0.0.1%3A7947&_listen=127.0.0.1%3A7000"},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_join=127.0.0.1:7947&_expect=1",
		want: conf("data", func(c *Config) {
			c.Listen = "127.0.0.1:7000"
			c.Gossip = "127.0.0.1:7946"
			c.Join = []string{"127.0.0.1:7947"}
			c.Expect = 1
		}),
		format: "data?_expect=1&_gossip=127.0.0.1%3A7946&_join=127.0.0.1%3A7947&_listen=127.0.0.1%3A7000"},
	{dsn: "data?_expect=1", want: conf("data", func(c *Config) { c.Expect = 1 }), format: "data?_expect=1"},
	{dsn: "data?_expect=0", err: `invalid _expect "0": must be at least 1`},
	{dsn: "data?_expect=-2", err: `invalid _expect "-2": must be at least 1`},
	{dsn: "data?_expect=three", err: `invalid _expect "three"`},
	{dsn: "data?_expect=3", err: "_expect=3 requires _listen"},
	{dsn: "data?_listen=127.0.0.1:7000&_expect=3", err: "_expect=3 requires _gossip"},
	{dsn: "data?_join=127.0.0.1:7946", err: `_join "127.0.0.1:7946" requires _listen`},
	{dsn: "data?_listen=127.0.0.1:7000&_join=127.0.0.1:7946", err: `_join "127.0.0.1:7946" requires _gossip`},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_join=127.0.0.1:7947,,127.0.0.1:7948", err: `invalid _join "127.0.0.1:7947,,127.0.0.1:7948": empty entry`},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_join=127.0.0.1:0", err: `invalid _join entry "127.0.0.1:0": port 0`},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_join=:7947", err: `invalid _join entry ":7947": empty host`},

	// Secrets.
	{dsn: "data?_node=n1&_listen=0.0.0.0:7000&_advertise=10.0.0.1:7000&_gossip=:7946&_join=10.0.0.2:7946,10.0.0.3:7946&_expect=3&_secret=" + testSecret,
		want: conf("data", func(c *Config) {
			c.NodeID = "n1"
			c.Listen = "0.0.0.0:7000"
			c.Advertise = "10.0.0.1:7000"
			c.Gossip = ":7946"
			c.Join = []string{"10.0.0.2:7946", "10.0.0.3:7946"}
			c.Expect = 3
			c.Secret = testSecret
		}),
		format: "data?_advertise=10.0.0.1%3A7000&_expect=3&_gossip=%3A7946&_join=10.0.0.2%3A7946%2C10.0.0.3%3A7946&_listen=0.0.0.0%3A7000&_node=n1&_secret=" + testSecret},
	{dsn: "data?_listen=:7000&_secret=p%40ss+w0rd%26%3D%25%2F%2Bsecret%21",
		want:   conf("data", func(c *Config) { c.Listen = ":7000"; c.Secret = "p@ss w0rd&=%/+secret!" }),
		format: "data?_listen=%3A7000&_secret=p%40ss+w0rd%26%3D%25%2F%2Bsecret%21"},
	{dsn: "data?_listen=:7000&_secret_file=/run/secrets/hiqlite+key",
		want: conf("data", func(c *Config) { c.Listen = ":7000"; c.SecretFile = "/run/secrets/hiqlite key" })},
	{dsn: "data?_listen=0.0.0.0:7000", err: `hiqlite: _listen "0.0.0.0:7000" is not a loopback address: set _secret or _secret_file`},
	{dsn: "data?_listen=:7000", err: `_listen ":7000" is not a loopback address`},
	{dsn: "data?_listen=127.0.0.1:7000&_advertise=10.0.0.1:7000", err: `_advertise "10.0.0.1:7000" is not a loopback address`},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=[::]:7946", err: `_gossip "[::]:7946" is not a loopback address`},
	{dsn: "data?_listen=127.0.0.1:7000&_gossip=127.0.0.1:7946&_join=db2.example.com:7946", err: `_join "db2.example.com:7946" is not a loopback address`},
	{dsn: "data?_secret=" + shortSecret, err: "_secret must be at least 16 bytes (got 5)"},
	{dsn: "data?_secret=", err: `invalid _secret "": empty value`},
	{dsn: "data?_secret=" + testSecret + "&_secret_file=/run/secret", err: `_secret and _secret_file "/run/secret" are mutually exclusive`},
	{dsn: "data?_secret=" + testSecret + "&_secret=" + testSecret, err: "_secret given twice"},
	{dsn: "data?_secret=" + testSecret + "%zz", err: "invalid _secret: malformed %-escape"},
	{dsn: "data?_secret" + testSecret, err: `unknown DSN parameter "_secret" (rest withheld)`},
	{dsn: "data?_secret:" + testSecret, err: `unknown DSN parameter "_secret" (rest withheld)`},
	{dsn: "data?_secret_file=", err: `invalid _secret_file "": empty value`},

	// TLS.
	{dsn: "data?_listen=127.0.0.1:7000&_tls_key=/etc/hiqlite/node.key&_tls_cert=/etc/hiqlite/node.crt&_tls_ca=/etc/hiqlite/ca+1.crt",
		want: conf("data", func(c *Config) {
			c.Listen = "127.0.0.1:7000"
			c.TLSCert, c.TLSKey, c.TLSCA = "/etc/hiqlite/node.crt", "/etc/hiqlite/node.key", "/etc/hiqlite/ca 1.crt"
		}),
		format: "data?_listen=127.0.0.1%3A7000&_tls_ca=%2Fetc%2Fhiqlite%2Fca+1.crt&_tls_cert=%2Fetc%2Fhiqlite%2Fnode.crt&_tls_key=%2Fetc%2Fhiqlite%2Fnode.key"},
	{dsn: "data?_listen=10.0.0.1:7000&_secret=" + testSecret + "&_tls_cert=c.pem&_tls_key=k.pem&_tls_ca=ca.pem",
		want: conf("data", func(c *Config) {
			c.Listen = "10.0.0.1:7000"
			c.Secret = testSecret
			c.TLSCert, c.TLSKey, c.TLSCA = "c.pem", "k.pem", "ca.pem"
		}),
		format: "data?_listen=10.0.0.1%3A7000&_secret=" + testSecret + "&_tls_ca=ca.pem&_tls_cert=c.pem&_tls_key=k.pem"},
	{dsn: "data?_listen=127.0.0.1:7000&_tls_cert=c.pem", err: "_tls_cert, _tls_key and _tls_ca go together: _tls_cert set without _tls_key and _tls_ca"},
	{dsn: "data?_listen=127.0.0.1:7000&_tls_cert=c.pem&_tls_key=k.pem", err: "_tls_cert and _tls_key set without _tls_ca"},
	{dsn: "data?_listen=127.0.0.1:7000&_tls_ca=ca.pem&_tls_key=k.pem", err: "_tls_key and _tls_ca set without _tls_cert"},
	{dsn: "data?_tls_cert=c.pem&_tls_key=k.pem&_tls_ca=ca.pem", err: "requires _listen"},
	{dsn: "data?_listen=10.0.0.1:7000&_tls_cert=c.pem&_tls_key=k.pem&_tls_ca=ca.pem", err: `_listen "10.0.0.1:7000" is not a loopback address: set _secret or _secret_file`},
	{dsn: "data?_listen=127.0.0.1:7000&_tls_cert=", err: `invalid _tls_cert "": empty value`},
	{dsn: "data?_listen=127.0.0.1:7000&_tls_ca=a&_tls_ca=b", err: "_tls_ca given twice"},
	{dsn: "data?_listen=127.0.0.1:7000&_tls_cert=c.pem&_tls_key=k.pem&_tls_ca=ca.pem;_secret=" + testSecret, err: "_tls_ca"},
}

func TestParseDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range dsnTests {
		got, err := ParseDSN(tc.dsn)
		switch {
		case tc.want != nil && err != nil:
			t.Errorf("ParseDSN(%q): %v", tc.dsn, err)
		case tc.want != nil && !reflect.DeepEqual(got, tc.want):
			t.Errorf("ParseDSN(%q)\n got %#v\nwant %#v", tc.dsn, got, tc.want)
		case tc.want == nil && err == nil:
			t.Errorf("ParseDSN(%q) = %#v, want an error containing %q", tc.dsn, got, tc.err)
		case tc.want == nil && !strings.Contains(err.Error(), tc.err):
			t.Errorf("ParseDSN(%q) error %q, want it to contain %q", tc.dsn, err, tc.err)
		case tc.want == nil && got != nil:
			t.Errorf("ParseDSN(%q) returned a Config along with error %q", tc.dsn, err)
		}
	}
}

func TestFormatDSNRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range dsnTests {
		if tc.want == nil {
			continue
		}
		formatted := tc.want.FormatDSN()
		if tc.format != "" && formatted != tc.format {
			t.Errorf("FormatDSN of %q = %q, want %q", tc.dsn, formatted, tc.format)
		}
		checkRoundTrip(t, tc.want)

		// Canonical: the order of the parameters does not matter.
		reordered := reverseParams(tc.dsn)
		cfg, err := ParseDSN(reordered)
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", reordered, err)
			continue
		}
		if got := cfg.FormatDSN(); got != formatted {
			t.Errorf("FormatDSN(ParseDSN(%q)) = %q, want %q as for %q", reordered, got, formatted, tc.dsn)
		}
	}
}

// checkRoundTrip checks that cfg survives FormatDSN and ParseDSN unchanged,
// and that formatting again gives the same DSN.
func checkRoundTrip(t *testing.T, cfg *Config) {
	t.Helper()
	formatted := cfg.FormatDSN()
	again, err := ParseDSN(formatted)
	if err != nil {
		t.Errorf("ParseDSN(FormatDSN()) of %#v: ParseDSN(%q): %v", cfg, formatted, err)
		return
	}
	if !reflect.DeepEqual(again, cfg) {
		t.Errorf("ParseDSN(%q)\n got %#v\nwant %#v", formatted, again, cfg)
	}
	if f := again.FormatDSN(); f != formatted {
		t.Errorf("FormatDSN is not stable: %q, then %q", formatted, f)
	}
}

// reverseParams returns dsn with its parameters in reverse order.
func reverseParams(dsn string) string {
	prefix := ""
	if strings.HasPrefix(dsn, "file:") {
		prefix, dsn = "file:", dsn[len("file:"):]
	}
	dir, query, ok := strings.Cut(dsn, "?")
	if !ok {
		return prefix + dsn
	}
	params := strings.Split(query, "&")
	slices.Reverse(params)
	return prefix + dir + "?" + strings.Join(params, "&")
}

// replaceSecrets returns dsn with the value of every well-formed _secret
// parameter replaced by "x"s of the same unescaped length, and the values it
// replaced. Parsing must not tell the two DSNs apart except through the
// secret's length, so their errors and Config.String must be equal.
func replaceSecrets(dsn string) (control string, secrets []string) {
	prefix := ""
	if strings.HasPrefix(dsn, "file:") {
		prefix, dsn = "file:", dsn[len("file:"):]
	}
	dir, query, ok := strings.Cut(dsn, "?")
	if !ok {
		return prefix + dsn, nil
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		rawName, rawValue, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(rawName); err != nil || name != "_secret" {
			continue
		}
		secret, err := url.QueryUnescape(rawValue)
		if err != nil {
			continue
		}
		secrets = append(secrets, secret)
		params[i] = rawName + "=" + strings.Repeat("x", len(secret))
	}
	return prefix + dir + "?" + strings.Join(params, "&"), secrets
}

// checkSecretHidden checks that nothing ParseDSN(dsn) prints depends on the
// content of a _secret value, which implies that no error and no String()
// output contains it (unless the same text is there anyway, such as another
// parameter's value that happens to equal the secret).
func checkSecretHidden(t *testing.T, dsn string) {
	t.Helper()
	control, secrets := replaceSecrets(dsn)
	if len(secrets) == 0 {
		return
	}
	cfg, err := ParseDSN(dsn)
	ctrl, ctrlErr := ParseDSN(control)
	if errString(err) != errString(ctrlErr) {
		t.Fatalf("ParseDSN error depends on the secret's content:\n%q gives %q\n%q gives %q", dsn, errString(err), control, errString(ctrlErr))
	}
	if err == nil && cfg.String() != ctrl.String() {
		t.Fatalf("Config.String depends on the secret's content: %q, %q", cfg.String(), ctrl.String())
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestDSNErrorsHideSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range dsnTests {
		checkSecretHidden(t, tc.dsn)
		cfg, err := ParseDSN(tc.dsn)
		var printed string
		if err != nil {
			printed = err.Error()
		} else {
			printed = cfg.String()
		}
		for _, secret := range []string{testSecret, shortSecret} {
			if strings.Contains(printed, secret) {
				t.Errorf("ParseDSN(%q) printed the secret: %q", tc.dsn, printed)
			}
		}
	}
}

func TestConfigString(t *testing.T) {
	t.Parallel()
	cfg := conf("/data", func(c *Config) {
		c.Listen = "127.0.0.1:7000"
		c.Secret = testSecret
	})
	if got, want := cfg.String(), "/data?_listen=127.0.0.1%3A7000&_secret=REDACTED"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := cfg.FormatDSN(); !strings.Contains(got, "_secret="+testSecret) {
		t.Errorf("FormatDSN() = %q, want it to hold the secret", got)
	}

	// A secret file is a path, not a secret: String shows it.
	cfg = conf("/data", func(c *Config) { c.SecretFile = "/run/secret" })
	if got, want := cfg.String(), "/data?_secret_file=%2Frun%2Fsecret"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := cfg.String(); got != cfg.FormatDSN() {
		t.Errorf("String() = %q differs from FormatDSN() = %q without a secret", got, cfg.FormatDSN())
	}
}

// TestConfigValidate covers configs built by hand, including ones that no
// DSN can express.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cluster := func(c *Config) {
		c.Listen = "127.0.0.1:7000"
		c.Gossip = "127.0.0.1:7946"
	}
	tests := []struct {
		name string
		cfg  *Config
		err  string // "" when valid
	}{
		{"defaults", conf("d", nil), ""},
		{"cluster", conf("d", func(c *Config) {
			cluster(c)
			c.Join = []string{"127.0.0.1:7947"}
			c.Expect = 3
			c.Consistency = Linearizable
		}), ""},
		{"no data dir", NewConfig(), "empty data directory"},
		{"question mark", conf("a?b", nil), `data directory "a?b" contains '?'`},
		{"empty join", conf("d", func(c *Config) { cluster(c); c.Join = []string{} }), "_join is an empty list"},
		{"comma in join", conf("d", func(c *Config) { cluster(c); c.Join = []string{"a,b:7947"} }), `invalid _join entry "a,b:7947"`},
		{"space in join", conf("d", func(c *Config) { cluster(c); c.Join = []string{" 127.0.0.1:7947"} }), `invalid _join entry " 127.0.0.1:7947"`},
		{"empty join entry", conf("d", func(c *Config) { cluster(c); c.Join = []string{""} }), `invalid _join entry ""`},
		{"consistency", conf("d", func(c *Config) { c.Consistency = 9 }), "invalid _consistency 9"},
		{"empty txlock", conf("d", func(c *Config) { c.TxLock = "" }), `invalid _txlock "": want deferred, immediate or exclusive`},
		{"upper-case txlock", conf("d", func(c *Config) { c.TxLock = "IMMEDIATE" }), `invalid _txlock "IMMEDIATE"`},
		{"zero timeout", conf("d", func(c *Config) { c.Timeout = 0 }), `invalid _timeout "0s": must be positive`},
		{"negative busy", conf("d", func(c *Config) { c.Busy = -1 }), `invalid _busy "-1ns": must be positive`},
		{"zero reap", conf("d", func(c *Config) { c.Reap = 0 }), `invalid _reap "0s": must be positive`},
		{"short reap", conf("d", func(c *Config) { c.Reap = time.Second - 1 }), `invalid _reap "999.999999ms": must be at least 1s`},
		{"odd reap", conf("d", func(c *Config) { c.Reap = time.Minute + time.Nanosecond }), ""},
		{"unset expect", conf("d", func(c *Config) { cluster(c); c.Join = []string{"127.0.0.1:7947"}; c.Expect = 0 }), ""},
		{"negative expect", conf("d", func(c *Config) { c.Expect = -1 }), "invalid _expect -1"},
		{"short secret", conf("d", func(c *Config) { c.Secret = shortSecret }), "_secret must be at least 16 bytes (got 5)"},
		{"both secrets", conf("d", func(c *Config) { c.Secret = testSecret; c.SecretFile = "f" }), `_secret and _secret_file "f" are mutually exclusive`},
		{"TLS and files", conf("d", func(c *Config) {
			cluster(c)
			c.TLS = testTLSConfig()
			c.TLSCert, c.TLSKey, c.TLSCA = "c", "k", "ca"
		}), "Config.TLS and _tls_cert, _tls_key, _tls_ca are mutually exclusive"},
		{"TLS without listen", conf("d", func(c *Config) { c.TLS = testTLSConfig() }), "requires _listen"},
		{"TLS without ClientCAs", conf("d", func(c *Config) { cluster(c); c.TLS = testTLSConfig(); c.TLS.ClientCAs = nil }), "no ClientCAs"},
		{"TLS without RootCAs", conf("d", func(c *Config) { cluster(c); c.TLS = testTLSConfig(); c.TLS.RootCAs = nil }), "no RootCAs"},
		{"TLS without certificates", conf("d", func(c *Config) { cluster(c); c.TLS = testTLSConfig(); c.TLS.Certificates = nil }), "no server certificate"},
		{"TLS 1.2 only", conf("d", func(c *Config) { cluster(c); c.TLS = testTLSConfig(); c.TLS.MaxVersion = tls.VersionTLS12 }), "below TLS 1.3"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: Validate(): %v", tc.name, err)
		case tc.err == "":
			checkRoundTrip(t, tc.cfg)
		case err == nil:
			t.Errorf("%s: Validate() = nil, want an error containing %q", tc.name, tc.err)
		case !strings.Contains(err.Error(), tc.err):
			t.Errorf("%s: Validate() = %q, want it to contain %q", tc.name, err, tc.err)
		case strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), shortSecret):
			t.Errorf("%s: Validate() printed the secret: %q", tc.name, err)
		}
	}
}

// testTLSConfig is a tls.Config with both sides of mutual TLS, for
// Validate; its certificate is never used.
func testTLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	return &tls.Config{Certificates: []tls.Certificate{{}}, RootCAs: pool, ClientCAs: pool}
}

// TestConfigTLSValid: a Config with TLS validates, and its DSN leaves TLS
// out (no DSN can carry it).
func TestConfigTLSValid(t *testing.T) {
	t.Parallel()
	c := conf("d", func(c *Config) { c.Listen = "127.0.0.1:7000"; c.TLS = testTLSConfig() })
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.FormatDSN(), "d?_listen=127.0.0.1%3A7000"; got != want {
		t.Errorf("FormatDSN() = %q, want %q", got, want)
	}
}

func TestNewConfigDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	for _, check := range []struct {
		field     string
		got, want any
	}{
		{"DataDir", c.DataDir, ""},
		{"NodeID", c.NodeID, ""},
		{"Listen", c.Listen, ""},
		{"Advertise", c.Advertise, ""},
		{"Gossip", c.Gossip, ""},
		{"Join", c.Join, []string(nil)},
		{"Expect", c.Expect, 0},
		{"Secret", c.Secret, ""},
		{"SecretFile", c.SecretFile, ""},
		{"Consistency", c.Consistency, Local},
		{"Voter", c.Voter, true},
		{"Timeout", c.Timeout, 10 * time.Second},
		{"TxIdle", c.TxIdle, 5 * time.Second},
		{"Busy", c.Busy, 5 * time.Second},
		{"Reap", c.Reap, 5 * time.Minute},
		{"TxLock", c.TxLock, "deferred"},
	} {
		if !reflect.DeepEqual(check.got, check.want) {
			t.Errorf("NewConfig().%s = %#v, want %#v", check.field, check.got, check.want)
		}
	}
	if NewConfig() == c {
		t.Error("NewConfig returned the same *Config twice")
	}
	c.DataDir = "d"
	if got := c.FormatDSN(); got != "d" {
		t.Errorf("FormatDSN() of the defaults = %q, want %q", got, "d")
	}
}

func TestLoadSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good", testSecret+"\n")
	short := write("short", shortSecret+"\n")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name string
		set  func(c *Config)
		want string // the secret; "" for nil
		err  string // a substring of the error; "" for none
	}{
		{"none", nil, "", ""},
		{"inline", func(c *Config) { c.Secret = testSecret }, testSecret, ""},
		{"inline keeps white space", func(c *Config) { c.Secret = " " + testSecret + "\n" }, " " + testSecret + "\n", ""},
		{"inline too short", func(c *Config) { c.Secret = shortSecret }, "", "at least 16 bytes (got 5)"},
		{"file", func(c *Config) { c.SecretFile = good }, testSecret, ""},
		{"file too short", func(c *Config) { c.SecretFile = short }, "", `_secret_file "` + short + `" must be at least 16 bytes (got 5)`},
		{"file missing", func(c *Config) { c.SecretFile = missing }, "", missing},
		{"both", func(c *Config) { c.Secret = testSecret; c.SecretFile = good }, "", "mutually exclusive"},
	}
	for _, tc := range tests {
		got, err := conf("d", tc.set).loadSecret()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: loadSecret(): %v", tc.name, err)
		case tc.err == "" && tc.want == "" && got != nil:
			t.Errorf("%s: loadSecret() = %q, want nil", tc.name, got)
		case tc.err == "" && string(got) != tc.want:
			t.Errorf("%s: loadSecret() = %q, want %q", tc.name, got, tc.want)
		case tc.err != "" && err == nil:
			t.Errorf("%s: loadSecret() = %q, want an error containing %q", tc.name, got, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("%s: loadSecret() error %q, want it to contain %q", tc.name, err, tc.err)
		case tc.err != "" && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), shortSecret)):
			t.Errorf("%s: loadSecret() error printed the secret: %q", tc.name, err)
		}
	}
}

func TestConsistency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Consistency
		name string
	}{{Local, "local"}, {Linearizable, "linearizable"}} {
		if got := tc.c.String(); got != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.c, got, tc.name)
		}
		for _, s := range []string{tc.name, strings.ToUpper(tc.name)} {
			if got, err := ParseConsistency(s); err != nil || got != tc.c {
				t.Errorf("ParseConsistency(%q) = %v, %v; want %v", s, got, err, tc.c)
			}
		}
	}
	if got, want := Consistency(7).String(), "Consistency(7)"; got != want {
		t.Errorf("Consistency(7).String() = %q, want %q", got, want)
	}
	for _, s := range []string{"", "strong", "local "} {
		if _, err := ParseConsistency(s); err == nil || !strings.Contains(err.Error(), `"`+s+`"`) {
			t.Errorf("ParseConsistency(%q) error = %v, want one naming the value", s, err)
		}
	}
}
