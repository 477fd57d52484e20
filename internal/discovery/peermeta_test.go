package discovery

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestPeerMetaRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range peerMetaCases {
		b, err := encodePeerMeta(tc.p, tc.leaving)
		if err != nil {
			t.Fatalf("encode %+v: %v", tc.p, err)
		}
		if len(b) >= memberlist.MetaMaxSize {
			t.Errorf("%+v: %d bytes of metadata", tc.p, len(b))
		}
		p, leaving, err := decodePeerMeta(b)
		if err != nil || p != tc.p || leaving != tc.leaving {
			t.Errorf("decode(encode(%+v, %v)) = %+v, %v, %v", tc.p, tc.leaving, p, leaving, err)
		}
		// Version 1 grows by appending: old decoders ignore the rest.
		b = append(b, 0xff, 0xfe)
		b[1] |= 0x80
		if p, leaving, err := decodePeerMeta(b); err != nil || p != tc.p || leaving != tc.leaving {
			t.Errorf("with an extension: %+v, %v, %v", p, leaving, err)
		}
	}
}

func TestPeerMetaMalformed(t *testing.T) {
	t.Parallel()
	good := mustPeerMeta(t, Peer{ID: "node-1", RaftAddr: "127.0.0.1:7000"})
	for _, b := range [][]byte{
		nil,
		{peerMetaV1},
		{2, 0, 1, 'a', 3, 'a', ':', '1'}, // unknown version
		{peerMetaV1, 0, 0, 10, '1', '2', '7', '.', '0'},      // empty id
		{peerMetaV1, 0, 1, 'a', 2, ':', '1'},                 // no host
		{peerMetaV1, 0, 1, 'a', 3, 'a', ':', 'x'},            // bad port
		{peerMetaV1, 0, 1, 'a', 0},                           // no raft address
		{peerMetaV1, 0, 1, 0x01, 3, 'a', ':', '1'},           // control character in id
		{peerMetaV1, 0, 2, 0xc3, 0xa9, 3, 'a', ':', '1'},     // non-ASCII id
		{peerMetaV1, 0, 1, 'a', 5, 'a', ':', '1', 0xff, ':'}, // not host:port
		good[:len(good)-1],
		good[:3],
	} {
		if p, _, err := decodePeerMeta(b); err == nil {
			t.Errorf("decodePeerMeta(%q) = %+v, want an error", b, p)
		}
	}
}

// peerMetaCases feeds the round-trip test and the fuzz corpus.
var peerMetaCases = []struct {
	p       Peer
	leaving bool
}{
	{Peer{ID: "node-1", RaftAddr: "127.0.0.1:7000", Voter: true}, false},
	{Peer{ID: "n", RaftAddr: "[::1]:1", InCluster: true}, true},
	{Peer{ID: "node-0123456789abcdef", RaftAddr: "db-1.example.internal:65535", Voter: true, InCluster: true}, false},
	{Peer{ID: strings.Repeat("x", maxPeerIDLen), RaftAddr: strings.Repeat("h", maxRaftAddrLen-6) + ":65535", Voter: true, InCluster: true}, true},
}

// FuzzPeerMeta: the decoder never panics, and what it accepts re-encodes to
// metadata that decodes to the same peer and fits memberlist.
func FuzzPeerMeta(f *testing.F) {
	for _, tc := range peerMetaCases {
		b, err := encodePeerMeta(tc.p, tc.leaving)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{peerMetaV1, 0xff, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, leaving, err := decodePeerMeta(b)
		if err != nil {
			return
		}
		again, err := encodePeerMeta(p, leaving)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", p, err)
		}
		if len(again) >= memberlist.MetaMaxSize {
			t.Fatalf("%d bytes of metadata", len(again))
		}
		p2, leaving2, err := decodePeerMeta(again)
		if err != nil || p2 != p || leaving2 != leaving {
			t.Fatalf("round trip of %+v: %+v, %v, %v", p, p2, leaving2, err)
		}
	})
}

// The state extension round-trips at its largest, fits memberlist, and a
// truncated one is refused rather than read as zeros.
func TestPeerMetaState(t *testing.T) {
	t.Parallel()
	p := Peer{ID: strings.Repeat("x", maxPeerIDLen), RaftAddr: strings.Repeat("h", maxRaftAddrLen-6) + ":65535", Voter: true, InCluster: true}
	for _, st := range []NodeState{
		{AppliedIndex: math.MaxUint64, Term: math.MaxUint64, Role: "candidate", LastContact: time.Duration(math.MaxInt64/int64(time.Millisecond)-1) * time.Millisecond},
		{Role: "shutdown", LastContact: -1},
		{AppliedIndex: 5, Term: 2, Role: "leader"},
	} {
		b, err := encodeMeta(p, true, &st)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) >= memberlist.MetaMaxSize {
			t.Errorf("%d bytes of metadata", len(b))
		}
		m, err := decodeMeta(b)
		if err != nil || m.Peer != p || !m.leaving || !m.hasState || m.state != st {
			t.Errorf("decodeMeta(encodeMeta(%+v)) = %+v, %v", st, m, err)
		}
		if _, err := decodeMeta(b[:len(b)-1]); err == nil {
			t.Errorf("%+v truncated: no error", st)
		}
	}
	// A role this version does not know reads as unknown.
	b, _ := encodeMeta(Peer{ID: "a", RaftAddr: "h:1"}, false, &NodeState{Role: "leader"})
	b[len("\x01\x08\x01a\x03h:1")] = 200
	if m, err := decodeMeta(b); err != nil || m.state.Role != "unknown" {
		t.Errorf("unknown role: %+v, %v", m.state, err)
	}
}
