package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// Peer metadata, version 1:
//
//	version   1 byte  peerMetaV1
//	flags     1 byte  metaVoter | metaInCluster | metaLeaving
//	id        1 byte length, then the id (1 to maxPeerIDLen printable ASCII bytes)
//	raft addr 1 byte length, then host:port (at most maxRaftAddrLen bytes)
//
// and, when flags has metaState (added to version 1 by appending), the
// node's Raft state (NodeState):
//
//	role         1 byte  roleUnknown .. roleShutdown
//	applied      uvarint the applied index
//	term         uvarint the current term
//	last contact uvarint milliseconds since the last contact with a
//	                     leader, plus one; 0: none
//
// A version 1 decoder ignores flag bits and trailing bytes it does not know,
// so version 1 may grow by appending; a layout that older nodes cannot read
// takes a new version byte, and they ignore peers that announce it.
const (
	peerMetaV1     = 1
	metaVoter      = 1 << 0
	metaInCluster  = 1 << 1
	metaLeaving    = 1 << 2
	metaState      = 1 << 3
	maxPeerIDLen   = 128
	maxRaftAddrLen = 255
	maxStateLen    = 1 + 3*binary.MaxVarintLen64
	maxPeerMetaLen = 4 + maxPeerIDLen + maxRaftAddrLen + maxStateLen
)

// Roles in the metadata. The numbers are protocol: never reuse one.
const (
	roleUnknown   = 0
	roleFollower  = 1
	roleCandidate = 2
	roleLeader    = 3
	roleShutdown  = 4
)

var roleNames = [...]string{roleUnknown: "unknown", roleFollower: "follower", roleCandidate: "candidate", roleLeader: "leader", roleShutdown: "shutdown"}

// NodeState is a node's Raft state as it gossips it.
type NodeState struct {
	AppliedIndex uint64
	Term         uint64
	// Role is "follower", "candidate", "leader", "shutdown" or "unknown".
	Role string
	// LastContact is how long before the announcement the node last
	// heard from a leader (0 on the leader itself); negative: never.
	LastContact time.Duration
}

func roleCode(role string) byte {
	for i, r := range roleNames {
		if r == role {
			return byte(i)
		}
	}
	return roleUnknown
}

var _ = [memberlist.MetaMaxSize - 1 - maxPeerMetaLen]struct{}{} // the metadata always fits

// encodePeerMeta encodes p, and whether the node is leaving, as memberlist
// node metadata. It fails when p would not decode.
func encodePeerMeta(p Peer, leaving bool) ([]byte, error) {
	return encodeMeta(p, leaving, nil)
}

// encodeMeta is encodePeerMeta with the node's state, when st is not nil.
func encodeMeta(p Peer, leaving bool, st *NodeState) ([]byte, error) {
	if err := checkPeer(p); err != nil {
		return nil, err
	}
	var flags byte
	if p.Voter {
		flags |= metaVoter
	}
	if p.InCluster {
		flags |= metaInCluster
	}
	if leaving {
		flags |= metaLeaving
	}
	if st != nil {
		flags |= metaState
	}
	b := make([]byte, 0, 4+len(p.ID)+len(p.RaftAddr)+maxStateLen)
	b = append(b, peerMetaV1, flags, byte(len(p.ID)))
	b = append(b, p.ID...)
	b = append(b, byte(len(p.RaftAddr)))
	b = append(b, p.RaftAddr...)
	if st != nil {
		b = append(b, roleCode(st.Role))
		b = encoding.AppendUvarint(b, st.AppliedIndex)
		b = encoding.AppendUvarint(b, st.Term)
		var contact uint64
		if st.LastContact >= 0 {
			contact = uint64(st.LastContact.Milliseconds()) + 1
		}
		b = encoding.AppendUvarint(b, contact)
	}
	return b, nil
}

// peerMeta is decoded metadata.
type peerMeta struct {
	Peer
	leaving  bool
	state    NodeState
	hasState bool // the metadata carried state
}

// decodePeerMeta decodes metadata from the network; it never panics.
func decodePeerMeta(b []byte) (p Peer, leaving bool, err error) {
	m, err := decodeMeta(b)
	return m.Peer, m.leaving, err
}

// errStateMeta is what the decoding errors of the state part wrap.
var errStateMeta = errors.New("gossip metadata: node state")

// decodeMeta decodes metadata from the network, with the node's state
// when it has one; it never panics.
func decodeMeta(b []byte) (peerMeta, error) {
	if len(b) < 2 {
		return peerMeta{}, fmt.Errorf("gossip metadata: %d bytes", len(b))
	}
	if b[0] != peerMetaV1 {
		return peerMeta{}, fmt.Errorf("gossip metadata: unknown version %d", b[0])
	}
	flags := b[1]
	rest := b[2:]
	field := func() (string, bool) {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return "", false
		}
		s := string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
		return s, true
	}
	id, ok1 := field()
	addr, ok2 := field()
	if !ok1 || !ok2 {
		return peerMeta{}, errors.New("gossip metadata: truncated")
	}
	m := peerMeta{
		Peer:    Peer{ID: id, RaftAddr: addr, Voter: flags&metaVoter != 0, InCluster: flags&metaInCluster != 0},
		leaving: flags&metaLeaving != 0,
	}
	if err := checkPeer(m.Peer); err != nil {
		return peerMeta{}, err
	}
	if flags&metaState != 0 {
		// Trailing bytes after the state are a later extension.
		d := encoding.NewDecoder(rest, errStateMeta)
		role := d.Byte()
		m.state.AppliedIndex = d.Uvarint()
		m.state.Term = d.Uvarint()
		contact := d.Uvarint()
		if err := d.Err(); err != nil {
			return peerMeta{}, err
		}
		m.state.Role = roleNames[roleUnknown]
		if int(role) < len(roleNames) {
			m.state.Role = roleNames[role]
		}
		m.state.LastContact = -1
		if contact > 0 {
			m.state.LastContact = time.Duration(min(contact-1, math.MaxInt64/uint64(time.Millisecond))) * time.Millisecond
		}
		m.hasState = true
	}
	return m, nil
}

// checkPeer reports whether p can be announced.
func checkPeer(p Peer) error {
	if n := len(p.ID); n == 0 || n > maxPeerIDLen || strings.IndexFunc(p.ID, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return fmt.Errorf("hiqlite: gossip metadata: invalid node id %q: want 1 to %d printable ASCII characters", p.ID, maxPeerIDLen)
	}
	if len(p.RaftAddr) > maxRaftAddrLen || !utf8.ValidString(p.RaftAddr) {
		return fmt.Errorf("hiqlite: gossip metadata: raft address of node %q longer than %d bytes or not UTF-8", p.ID, maxRaftAddrLen)
	}
	host, port, err := net.SplitHostPort(p.RaftAddr)
	if err == nil && host == "" {
		err = errors.New("empty host")
	}
	if err == nil {
		if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n == 0 {
			err = errors.New("want a port from 1 to 65535")
		}
	}
	if err != nil {
		return fmt.Errorf("hiqlite: gossip metadata: raft address %q of node %q: %w", p.RaftAddr, p.ID, err)
	}
	return nil
}
