package discovery

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Peer metadata, version 1:
//
//	version   1 byte  peerMetaV1
//	flags     1 byte  metaVoter | metaInCluster | metaLeaving
//	id        1 byte length, then the id (1 to maxPeerIDLen printable ASCII bytes)
//	raft addr 1 byte length, then host:port (at most maxRaftAddrLen bytes)
//
// A version 1 decoder ignores flag bits and trailing bytes it does not know,
// so version 1 may grow by appending; a layout that older nodes cannot read
// takes a new version byte, and they ignore peers that announce it.
const (
	peerMetaV1     = 1
	metaVoter      = 1 << 0
	metaInCluster  = 1 << 1
	metaLeaving    = 1 << 2
	maxPeerIDLen   = 128
	maxRaftAddrLen = 255
	maxPeerMetaLen = 4 + maxPeerIDLen + maxRaftAddrLen
)

var _ = [memberlist.MetaMaxSize - 1 - maxPeerMetaLen]struct{}{} // the metadata always fits

// encodePeerMeta encodes p, and whether the node is leaving, as memberlist
// node metadata. It fails when p would not decode.
func encodePeerMeta(p Peer, leaving bool) ([]byte, error) {
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
	b := make([]byte, 0, 4+len(p.ID)+len(p.RaftAddr))
	b = append(b, peerMetaV1, flags, byte(len(p.ID)))
	b = append(b, p.ID...)
	b = append(b, byte(len(p.RaftAddr)))
	b = append(b, p.RaftAddr...)
	return b, nil
}

// decodePeerMeta decodes metadata from the network; it never panics.
func decodePeerMeta(b []byte) (p Peer, leaving bool, err error) {
	if len(b) < 2 {
		return Peer{}, false, fmt.Errorf("gossip metadata: %d bytes", len(b))
	}
	if b[0] != peerMetaV1 {
		return Peer{}, false, fmt.Errorf("gossip metadata: unknown version %d", b[0])
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
		return Peer{}, false, errors.New("gossip metadata: truncated")
	}
	p = Peer{ID: id, RaftAddr: addr, Voter: flags&metaVoter != 0, InCluster: flags&metaInCluster != 0}
	if err := checkPeer(p); err != nil {
		return Peer{}, false, err
	}
	return p, flags&metaLeaving != 0, nil
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
