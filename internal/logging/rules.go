package logging

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// RepeatEvery is how often a failure raft keeps retrying against one peer
// (a heartbeat, an AppendEntries, a vote request) is reported again, with
// the number of times it failed since.
const RepeatEvery = time.Minute

// Rules gives each warning or error of raft and memberlist the level an
// operator should see it at:
//
//   - while the node shuts down (Closing), a failure on a connection or to
//     a peer is DEBUG: the node closed it;
//   - a failure involving a peer known to be gone (Gone: it left or gossip
//     found it dead) is DEBUG: the leader removes it, or it comes back;
//   - a failure raft retries against one peer is WARN the first time, then
//     DEBUG, with a WARN every RepeatEvery counting the failures since
//     (raft retries with backoff, thousands of times while a peer is away);
//   - a connection a peer opened that is closed or reset is DEBUG: the
//     peer closed it or went away, and dials again when it needs to;
//   - any other closed, reset or refused connection is at most a WARN;
//   - raft's routine warnings (a follower catching up, the first election
//     of a new cluster) are INFO.
//
// Other lines keep their level. A nil *Rules records nothing. Its methods are safe for concurrent use.
type Rules struct {
	mu      sync.Mutex
	closing bool
	gone    map[string]bool       // ids and addresses of peers known gone
	repeats map[repeatKey]*repeat // retried failures, by message and peer
	now     func() time.Time
	every   time.Duration
}

type repeatKey struct{ msg, peer string }

type repeat struct {
	last   time.Time // when it was last logged at WARN
	missed int       // failures since, logged at DEBUG
}

// NewRules returns Rules for a running node with no peer gone.
func NewRules() *Rules {
	return &Rules{gone: make(map[string]bool), repeats: make(map[repeatKey]*repeat), now: time.Now, every: RepeatEvery}
}

// Closing records that the node is shutting down.
func (r *Rules) Closing() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
}

// Gone records that a peer, named by its id and addresses, left or died.
func (r *Rules) Gone(names ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		if n != "" {
			r.gone[n] = true
		}
	}
}

// Back records that a peer is alive again: its failures are warnings again.
func (r *Rules) Back(names ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		if !r.gone[n] {
			continue
		}
		delete(r.gone, n)
		for k := range r.repeats {
			if containsName(k.peer, n) {
				delete(r.repeats, k)
			}
		}
	}
}

// retried lists the messages of failures raft retries against one peer.
var retried = [...]string{
	"failed to heartbeat to",
	"failed to appendEntries to",
	"failed to pipeline appendEntries",
	"failed to start pipeline replication to",
	"failed to make requestVote RPC",
	"failed to send snapshot to",
	"failed to contact",
}

// connGone lists texts of errors that mean a connection or the transport
// is closed, on this side or the other.
var connGone = [...]string{
	"use of closed network connection",
	"transport shutdown",
	"raft is already shutdown",
	"EOF",
	"connection reset",
	"connection refused",
	"broken pipe",
	"i/o timeout",
	"no route to host",
}

// routine lists warnings raft logs in normal operation: a follower
// catching up from an older entry, the first election of a new cluster.
// They are INFO.
var routine = [...]string{
	"appendEntries rejected, sending older logs",
	"failed to get previous log",
}

// firstElection is raft's warning when a node starts an election; with no
// last leader it is the first election of a cluster (or this node).
const firstElection = "heartbeat timeout reached, starting election"

// incoming lists raft's failures on a connection a peer opened: when the
// connection is closed or reset, the peer closed it or went away, and it
// dials again when it needs to.
var incoming = [...]string{
	"failed to decode incoming command",
	"failed to flush response",
	"failed to accept connection",
}

// peerKeys are the attribute keys raft and memberlist name a peer with.
var peerKeys = [...]string{"peer", "target", "server-id", "id", "address", "from"}

// level returns the level msg with args is logged at, and attributes to
// add.
func (r *Rules) level(level slog.Level, msg string, args []any) (slog.Level, []any) {
	if level < slog.LevelWarn {
		return level, nil
	}
	text := msg
	var peer, lastLeader string
	for i := 0; i+1 < len(args); i += 2 {
		v := fmt.Sprint(args[i+1])
		text += " " + v
		if args[i] == "last-leader-id" {
			lastLeader = v
		}
		if k, ok := args[i].(string); ok && peer == "" {
			for _, pk := range peerKeys {
				if k == pk {
					peer = v
				}
			}
		}
	}
	// "failed to get previous log" is routine only for an entry that is
	// not there (the follower is behind); raft logs any read error of the
	// log store with it, and a disk or corruption error must stay a warning.
	if level == slog.LevelWarn && (containsAny(msg, routine[:]) && (!strings.Contains(msg, "failed to get previous log") || strings.Contains(text, "log not found")) ||
		msg == firstElection && lastLeader == "") {
		return slog.LevelInfo, nil
	}
	closed := containsAny(text, connGone[:])
	// A leader stepping down for want of a quorum is not a retried
	// failure against one peer: each one is a warning.
	isRetried := containsAny(msg, retried[:]) && !strings.Contains(msg, "quorum")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing && (closed || isRetried || peer != "") {
		return slog.LevelDebug, nil
	}
	for g := range r.gone {
		if containsName(text, g) {
			return slog.LevelDebug, nil
		}
	}
	if isRetried {
		key := repeatKey{msg, peer}
		now := r.now()
		rp := r.repeats[key]
		switch {
		case rp == nil:
			r.repeats[key] = &repeat{last: now}
			return slog.LevelWarn, nil
		case now.Sub(rp.last) < r.every:
			rp.missed++
			return slog.LevelDebug, nil
		default:
			missed := rp.missed
			rp.last, rp.missed = now, 0
			return slog.LevelWarn, []any{"repeated", missed, "over", r.every.String()}
		}
	}
	if closed && containsAny(msg, incoming[:]) {
		return slog.LevelDebug, nil
	}
	if closed && level > slog.LevelWarn {
		return slog.LevelWarn, nil
	}
	return level, nil
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// containsName reports whether name occurs in s as a whole word: not
// followed or preceded by a letter, digit, '-' or '_' ("node-1" is not in
// "node-10", nor "127.0.0.1:400" in "127.0.0.1:4001").
func containsName(s, name string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		if (start == 0 || !wordByte(s[start-1])) && (end == len(s) || !wordByte(s[end])) {
			return true
		}
		i = start + 1
	}
}

func wordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
}
