package nodeport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
)

// # Connection handshake
//
// Every connection to a node's listener (see [Mux]) begins with a mutual
// HMAC-SHA256 challenge-response that names the stream the connection
// carries and proves, in both directions, knowledge of the cluster secret K
// without sending it:
//
//	client → server  hello   stream (1) | version (1) | Nc (32 random bytes)
//	server → client  proof   Ns (32 random bytes) | HMAC(K, "hiqlite mux v1 server" | stream | version | Nc | Ns)
//	client → server  proof   HMAC(K, "hiqlite mux v1 client" | stream | version | Nc | Ns)
//	server → client  ok      0x01
//
// after which both ends hold an authenticated stream of the named type.
//
//   - Both sides contribute a fresh nonce, so a recorded handshake cannot be
//     replayed against either side.
//   - The direction labels differ, so a server's proof cannot be reflected
//     back to it as a client's proof; the stream type and version are under
//     the MAC, so a proof made for one stream does not open another.
//   - Proofs are compared in constant time (hmac.Equal).
//   - The client verifies the server before it proves itself, so a node with
//     a different secret learns nothing it can use from a connection.
//   - The final ok byte means Dial returns only after the server accepted
//     the client: an authentication failure is an error of the dial, before
//     any request was sent, and so is safe to retry.
//   - An unknown stream byte or version, a wrong proof, a short read or the
//     handshake deadline closes the connection; nothing is sent back.
//   - An empty secret (allowed only on loopback; validated by the caller)
//     uses a fixed, public key so the code path stays the same.
//
// The handshake authenticates the endpoints when the connection opens; it
// neither encrypts nor integrity-protects what follows, so an on-path
// attacker could read or hijack an established stream. Networks that are not
// trusted need TLS underneath (tls.go).

// ErrAuth reports a peer that failed the handshake: it does not know the
// cluster secret (or this node does not).
var ErrAuth = errors.New("hiqlite: peer authentication failed")

// StreamType is the first byte of every connection.
type StreamType byte

// The streams one listener carries.
const (
	StreamRaft  StreamType = 'R'
	StreamRPC   StreamType = 'Q'
	StreamCache StreamType = 'C' // the cache group's Raft (extensions)
	// StreamClient is a remote client's session: a process that is no
	// member runs SQL and the extensions through a member (Dialer).
	StreamClient StreamType = 'S'
)

func (s StreamType) String() string {
	switch s {
	case StreamRaft:
		return "raft"
	case StreamRPC:
		return "rpc"
	case StreamCache:
		return "cache"
	case StreamClient:
		return "client"
	}
	return fmt.Sprintf("stream(0x%02x)", byte(s))
}

func (s StreamType) valid() bool {
	return s == StreamRaft || s == StreamRPC || s == StreamCache || s == StreamClient
}

// ProtoVersion is the second byte of every connection, after the stream
// byte: the version of the handshake.
const ProtoVersion byte = 1

// Wire constants of the handshake.
const (
	nonceSize        = 32
	macSize          = sha256.Size
	helloSize        = 2 + nonceSize
	handshakeOK byte = 0x01
)

var (
	labelServer = []byte("hiqlite mux v1 server")
	labelClient = []byte("hiqlite mux v1 client")
	// noSecretKey is the key with an empty cluster secret. It is public: it
	// only keeps the code path uniform and rejects strays speaking other
	// protocols.
	noSecretKey = []byte("hiqlite: no cluster secret (loopback only)")
)

// authKey returns the HMAC key for a cluster secret, never sharing the
// caller's slice.
func authKey(secret []byte) []byte {
	if len(secret) == 0 {
		return noSecretKey
	}
	return append([]byte(nil), secret...)
}

// handshakeMAC is a proof: the MAC of label, the stream type, the version
// and both nonces. Every field has a fixed size, so the message is
// unambiguous.
func handshakeMAC(key, label []byte, st StreamType, nc, ns []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(label)
	h.Write([]byte{byte(st), ProtoVersion})
	h.Write(nc)
	h.Write(ns)
	return h.Sum(nil)
}

// clientHandshake runs the client side on c for stream st. The caller sets
// the deadline and closes c on error.
func clientHandshake(c net.Conn, key []byte, st StreamType) error {
	var hello [helloSize]byte
	hello[0], hello[1] = byte(st), ProtoVersion
	nc := hello[2:]
	if _, err := rand.Read(nc); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	if _, err := c.Write(hello[:]); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	var reply [nonceSize + macSize]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return fmt.Errorf("read server proof: %w", err)
	}
	ns := reply[:nonceSize]
	if !hmac.Equal(reply[nonceSize:], handshakeMAC(key, labelServer, st, nc, ns)) {
		return fmt.Errorf("server proof: %w", ErrAuth)
	}
	if _, err := c.Write(handshakeMAC(key, labelClient, st, nc, ns)); err != nil {
		return fmt.Errorf("send client proof: %w", err)
	}
	var ok [1]byte
	if _, err := io.ReadFull(c, ok[:]); err != nil {
		// The server closes the connection when it rejects the proof.
		return fmt.Errorf("read verdict: %w", err)
	}
	if ok[0] != handshakeOK {
		return fmt.Errorf("verdict 0x%02x: %w", ok[0], ErrAuth)
	}
	return nil
}

// serverHandshake runs the server side on c and returns the stream the
// client asked for. serving, if not nil, says whether a stream is still
// served; a closed one is refused at once. The caller sets the deadline and
// closes c on error.
func serverHandshake(c net.Conn, key []byte, serving func(StreamType) bool) (StreamType, error) {
	var hello [helloSize]byte
	// The header first, so that a stranger is turned away before it can
	// make us compute or send anything.
	if _, err := io.ReadFull(c, hello[:2]); err != nil {
		return 0, fmt.Errorf("read hello: %w", err)
	}
	st := StreamType(hello[0])
	if !st.valid() {
		return 0, fmt.Errorf("unknown stream type 0x%02x", hello[0])
	}
	if hello[1] != ProtoVersion {
		return 0, fmt.Errorf("unsupported protocol version %d (want %d)", hello[1], ProtoVersion)
	}
	if serving != nil && !serving(st) {
		return 0, fmt.Errorf("%s stream closed", st)
	}
	if _, err := io.ReadFull(c, hello[2:]); err != nil {
		return 0, fmt.Errorf("read client nonce: %w", err)
	}
	nc := hello[2:]

	var reply [nonceSize + macSize]byte
	ns := reply[:nonceSize]
	if _, err := rand.Read(ns); err != nil {
		return 0, fmt.Errorf("nonce: %w", err)
	}
	copy(reply[nonceSize:], handshakeMAC(key, labelServer, st, nc, ns))
	if _, err := c.Write(reply[:]); err != nil {
		return 0, fmt.Errorf("send server proof: %w", err)
	}
	var proof [macSize]byte
	if _, err := io.ReadFull(c, proof[:]); err != nil {
		return 0, fmt.Errorf("read client proof: %w", err)
	}
	if !hmac.Equal(proof[:], handshakeMAC(key, labelClient, st, nc, ns)) {
		return 0, fmt.Errorf("client proof: %w", ErrAuth)
	}
	if _, err := c.Write([]byte{handshakeOK}); err != nil {
		return 0, fmt.Errorf("send verdict: %w", err)
	}
	return st, nil
}
