package discovery

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Configuration: what Start takes (Config), memberlist's settings and Discovery's
// timings, the gossip key derived from the cluster secret, the bind
// address, and memberlist's log routed to hclog.

// Config configures Start.
type Config struct {
	// Bind is the host:port memberlist listens on (UDP and TCP). Port 0 picks
	// a free port (tests); Addr reports the real one. A host name is resolved
	// once, to its first address.
	Bind string
	// Join lists seeds, host:port. Seeds that are not up yet are retried;
	// listing this node itself is fine.
	Join []string
	// Secret is the cluster secret; gossip is encrypted and authenticated
	// with a key derived from it. Empty means no gossip encryption, which
	// the caller allows on loopback only.
	Secret []byte
	Self   Peer
	Logger hclog.Logger // nil: no logs
	// OnChange is called after any join, leave, metadata update or status
	// change, on Discovery's own goroutine: never concurrently with itself,
	// coalescing bursts. It must not block long nor call Close.
	OnChange func()
	// State, when set, is the node's Raft state, which Discovery gossips
	// (see stateLoop). It is called on Discovery's own goroutine and must
	// not block.
	State func() NodeState

	// Fast uses timings for one machine (tests, demo); see
	// discoverySettings.
	Fast bool
}

// discoveryTiming holds Discovery's own timings; memberlist's are in its
// Config.
type discoveryTiming struct {
	joinMin, joinMax time.Duration // backoff between failed join attempts
	aloneCheck       time.Duration // how often the join loop counts members
	aloneAfter       time.Duration // how long alone before the seeds are retried
	update           time.Duration // how long Update waits for its broadcast; Leave's default timeout
	strayWarn        time.Duration // how often a node out of any cluster warns why (cluster/identity.go)
	state            time.Duration // how often stateLoop looks at the node's state
	stateRefresh     time.Duration // how often stateLoop gossips it unchanged
}

// discoverySettings returns the memberlist configuration and Discovery's
// timings. The default is memberlist's LAN profile: every node probes one
// peer a second (500 ms timeout); a peer that fails a probe is suspect and
// declared dead 4 s later (in clusters under 10 nodes; memberlist waits up to
// 24 s when fewer peers than it expects confirm the suspicion); a full state
// sync every 30 s. fast is for nodes on one machine (tests, demo): the same
// protocol five times faster, so a crash shows within one to two seconds.
func discoverySettings(fast bool) (*memberlist.Config, discoveryTiming) {
	if !fast {
		c := memberlist.DefaultLANConfig()
		// A node that comes back under the same id at a new address (a
		// rescheduled container) may take over its dead entry after this
		// long, instead of waiting for memberlist to forget it.
		c.DeadNodeReclaimTime = 10 * time.Second
		return c, discoveryTiming{
			joinMin:      100 * time.Millisecond,
			joinMax:      5 * time.Second,
			aloneCheck:   time.Second,
			aloneAfter:   10 * time.Second,
			update:       5 * time.Second,
			strayWarn:    15 * time.Second,
			state:        time.Second,
			stateRefresh: 10 * time.Second,
		}
	}
	c := memberlist.DefaultLocalConfig()
	c.TCPTimeout = time.Second
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 3
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 2 * time.Second
	c.GossipToTheDeadTime = 2 * time.Second
	c.DeadNodeReclaimTime = time.Second
	return c, discoveryTiming{
		joinMin:      20 * time.Millisecond,
		joinMax:      500 * time.Millisecond,
		aloneCheck:   100 * time.Millisecond,
		aloneAfter:   time.Second,
		update:       2 * time.Second,
		strayWarn:    time.Second,
		state:        100 * time.Millisecond,
		stateRefresh: time.Second,
	}
}

// gossipKeyInfo labels the gossip key in HKDF, so it never equals a key that
// the same secret yields for another purpose.
const gossipKeyInfo = "hiqlite gossip key v1"

// gossipKey derives memberlist's AES-256 key from the cluster secret.
func gossipKey(secret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, gossipKeyInfo, 32)
}

// resolveBind splits a gossip bind address into the IP and port memberlist
// takes. memberlist listens on every interface when the IP does not parse,
// so a host name is resolved here.
func resolveBind(bind string) (string, int, error) {
	host, sport, err := net.SplitHostPort(bind)
	if err != nil {
		return "", 0, fmt.Errorf("hiqlite: gossip bind address %q: %w", bind, err)
	}
	port, err := strconv.ParseUint(sport, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("hiqlite: gossip bind address %q: invalid port", bind)
	}
	switch {
	case host == "":
		host = "0.0.0.0"
	case net.ParseIP(host) == nil:
		ips, err := net.LookupIP(host)
		if err == nil && len(ips) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			return "", 0, fmt.Errorf("hiqlite: gossip bind address %q: %w", bind, err)
		}
		ip := ips[0]
		for _, c := range ips {
			if c.To4() != nil {
				ip = c
				break
			}
		}
		host = ip.String()
	}
	return host, int(port), nil
}

// memberlistLog carries memberlist's log lines ("[LEVEL] memberlist: ...")
// into hclog one level quieter where it matters: memberlist reports routine
// events (every stream connection) at DEBUG and INFO, and failures it
// recovers from (a lost packet, an unreachable peer) at ERR. Errors become
// warnings, INFO debug, DEBUG trace.
type memberlistLog struct{ l hclog.Logger }

func (w memberlistLog) Write(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	level := hclog.Debug
	for _, p := range [...]struct {
		prefix string
		level  hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Trace}, {"[INFO]", hclog.Debug},
		{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Warn}, {"[ERROR]", hclog.Warn},
	} {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			s, level = strings.TrimSpace(rest), p.level
			break
		}
	}
	w.l.Log(level, strings.TrimPrefix(s, "memberlist: "))
	return len(b), nil
}
