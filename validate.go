package hiqlite

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeid"
	"github.com/hiqlite/hiqlite/internal/nodeport"
)

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
			if a[1] != "" && !nodeport.IsLoopback(a[1]) {
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
	if c.NodeID != "" {
		if err := nodeid.Check(c.NodeID); err != nil {
			return invalidValue("_node", c.NodeID, err)
		}
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
	if err := c.validateBackup(); err != nil {
		return err
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
		if err := nodeport.CheckTLSConfig(c.TLS); err != nil {
			return err
		}
	}
	return nil
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
		// A zone takes the characters of a node id: none that _join
		// could not carry.
		if ip.Zone() != "" && !nodeid.Valid(ip.Zone()) {
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

// validateBackup checks the scheduled backup's settings (_backup ...).
func (c *Config) validateBackup() error {
	if c.Backup == "" {
		switch {
		case c.BackupEvery != defaultBackupEvery:
			return fmt.Errorf("hiqlite: _backup_every %v requires _backup (the destination)", c.BackupEvery)
		case c.BackupKeep != defaultBackupKeep:
			return fmt.Errorf("hiqlite: _backup_keep %d requires _backup (the destination)", c.BackupKeep)
		case c.BackupKeyFile != "":
			return fmt.Errorf("hiqlite: _backup_key_file %s requires _backup (the destination)", quotePath(c.BackupKeyFile))
		}
		return nil
	}
	if scheme, _, ok := strings.Cut(c.Backup, "://"); ok && scheme != "file" && scheme != "s3" {
		return invalidValue("_backup", c.Backup, fmt.Errorf("unknown scheme %q: want a directory path, file:// or s3://", scheme))
	}
	if c.BackupEvery < minBackupEvery {
		return invalidValue("_backup_every", c.BackupEvery.String(), fmt.Errorf("must be at least %v", minBackupEvery))
	}
	if c.BackupKeep < 1 {
		return invalidValue("_backup_keep", strconv.Itoa(c.BackupKeep), errors.New("must be at least 1"))
	}
	return nil
}
