package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hiqlite/hiqlite/internal/logging"
	"github.com/hiqlite/hiqlite/internal/nodeid"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/replication"
)

// Defaults of a Config.
const (
	// defaultTimeout is how long a write may wait to enter the Raft log.
	defaultTimeout = 10 * time.Second
	// defaultReapTimeout is how long a dead node stays a member before the
	// leader removes it.
	defaultReapTimeout = 5 * time.Minute
)

// Config is what a node needs to start. The root package builds it from the
// DSN, starting from DefaultConfig. Open fills a zero Timeout, ReapTimeout
// and Logger with their defaults and refuses a Config that Validate
// refuses.
type Config struct {
	Dir     string        // DATA_DIR
	ID      string        // "" = the persisted id, or a new one; else a valid id (internal/nodeid)
	Timeout time.Duration // how long a write may wait to enter the Raft log; 0 = 10 s
	// Logger receives the node's logs, raft's and memberlist's included,
	// at the levels internal/logging gives them; nil = logging.Default()
	// (stderr, the level HIQLITE_LOG names, warn when unset).
	Logger *slog.Logger
	logger hclog.Logger // Logger as raft takes it; tests may set it instead
	// SnapshotThreshold is how many log entries trigger a snapshot; 0 picks
	// the default.
	SnapshotThreshold uint64
	// SnapshotBytes is how many bytes of log entries applied since the last
	// snapshot trigger one; 0 = by entry count only.
	SnapshotBytes uint64
	// SegmentSize is the size of raft-wal's segment files; 0 = raft-wal's
	// default (64 MiB; the root package's default is 4 MiB). Compaction
	// deletes whole segments only.
	SegmentSize int

	// Cluster mode, when Listen is set. Without Listen the
	// node is a one-voter cluster with no network at all.
	Listen      string        // host:port for Raft and RPC
	Advertise   string        // host:port peers dial; "" = the bound Listen address
	Gossip      string        // memberlist bind host:port
	Join        []string      // gossip seeds
	Expect      int           // voters to see in gossip before the first bootstrap; 0 = 1 without Join, never (join only) with Join
	Voter       bool          // false: a non-voting read replica
	Secret      []byte        // cluster secret; empty only on loopback
	ReapTimeout time.Duration // how long a dead node stays a member; 0 = 5 minutes
	// Mutual TLS on the port (internal/nodeport/tls.go): TLS, or the PEM files TLSCert,
	// TLSKey and TLSCA (re-read when they change); neither = clear text.
	TLS                    *tls.Config
	TLSCert, TLSKey, TLSCA string
	// fastGossip uses memberlist timings for one machine (tests, demo).
	fastGossip bool
	// InMemory keeps everything in memory and creates no file: the
	// database (replication.OpenMemory), the Raft log, its stable store
	// and the snapshots. Dir is then only a name for messages; Listen must
	// be empty.
	InMemory bool
	// ConnInit registers the application's functions and collations on
	// the state machine's connections (replication.Options.ConnInit).
	ConnInit replication.ConnInit
}

// DefaultConfig returns the Config of a voter with every default set; the
// caller adds at least Dir, and Listen (with Gossip, Join and Secret) for
// a cluster node.
func DefaultConfig() Config {
	return Config{
		Timeout:     defaultTimeout,
		ReapTimeout: defaultReapTimeout,
		Voter:       true,
	}
}

// withDefaults returns c with its zero Timeout and ReapTimeout replaced by
// their defaults, and the logger raft takes built from Logger.
func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.ReapTimeout == 0 {
		c.ReapTimeout = defaultReapTimeout
	}
	if c.logger == nil {
		c.logger = logging.New(c.Logger)
	}
	return c
}

// Validate reports the first field of c that a node cannot start with,
// naming the field and its value. Zero values that have a default are
// valid.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("hiqlite: cluster config: empty Dir")
	}
	if c.ID != "" {
		if err := nodeid.Check(c.ID); err != nil {
			return fmt.Errorf("hiqlite: cluster config: invalid ID %q: %w", c.ID, err)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", c.Timeout}, {"ReapTimeout", c.ReapTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("hiqlite: cluster config: invalid %s %v: must not be negative", d.name, d.v)
		}
	}
	if c.SegmentSize < 0 {
		return fmt.Errorf("hiqlite: cluster config: invalid SegmentSize %d: must not be negative", c.SegmentSize)
	}
	if c.Expect < 0 {
		return fmt.Errorf("hiqlite: cluster config: invalid Expect %d: must not be negative", c.Expect)
	}
	if c.InMemory && c.Listen != "" {
		return fmt.Errorf("hiqlite: cluster config: Listen %q: an in-memory node has no network: it takes no Listen address", c.Listen)
	}
	if c.Listen == "" {
		for _, f := range []struct{ name, v string }{{"Advertise", c.Advertise}, {"Gossip", c.Gossip}} {
			if f.v != "" {
				return fmt.Errorf("hiqlite: cluster config: %s %q requires Listen", f.name, f.v)
			}
		}
		if len(c.Join) > 0 {
			return fmt.Errorf("hiqlite: cluster config: Join %q requires Listen and Gossip", c.Join)
		}
		return nil
	}
	if len(c.Join) > 0 && c.Gossip == "" {
		return fmt.Errorf("hiqlite: cluster config: Join %q requires Gossip", c.Join)
	}
	if len(c.Secret) == 0 {
		for _, f := range []struct{ name, v string }{{"Listen", c.Listen}, {"Advertise", c.Advertise}, {"Gossip", c.Gossip}} {
			if f.v != "" && !nodeport.IsLoopback(f.v) {
				return fmt.Errorf("hiqlite: cluster config: %s %q is not loopback: it needs a Secret", f.name, f.v)
			}
		}
	}
	if c.TLS != nil && (c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "") {
		return errors.New("hiqlite: cluster config: TLS and the files TLSCert, TLSKey, TLSCA are exclusive")
	}
	if c.TLS != nil {
		if err := nodeport.CheckTLSConfig(c.TLS); err != nil {
			return fmt.Errorf("hiqlite: cluster config: TLS: %w", err)
		}
	}
	return nil
}
