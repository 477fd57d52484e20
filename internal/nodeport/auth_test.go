package nodeport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// muxPipe is a net.Pipe whose ends give up after a while, so that a broken
// handshake fails the test instead of hanging it.
func muxPipe(t testing.TB) (client, server net.Conn) {
	client, server = net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// muxBothSides runs the two handshakes concurrently over a pipe.
func muxBothSides(t *testing.T, clientKey, serverKey []byte, st StreamType) (clientErr error, got StreamType, serverErr error) {
	t.Helper()
	c, s := muxPipe(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		got, serverErr = serverHandshake(s, serverKey, nil)
		if serverErr != nil {
			s.Close() // as the mux does: the client sees EOF
		}
	}()
	clientErr = clientHandshake(c, clientKey, st)
	if clientErr != nil {
		c.Close()
	}
	<-done
	return clientErr, got, serverErr
}

func TestAuthHandshake(t *testing.T) {
	secret := []byte("s3cret")
	tests := []struct {
		name                 string
		clientKey, serverKey []byte
		st                   StreamType
		ok                   bool
	}{
		{"raft", authKey(secret), authKey(secret), StreamRaft, true},
		{"rpc", authKey(secret), authKey(secret), StreamRPC, true},
		{"no secret", authKey(nil), authKey([]byte{}), StreamRPC, true},
		{"other secret", authKey([]byte("other")), authKey(secret), StreamRPC, false},
		{"client without secret", authKey(nil), authKey(secret), StreamRaft, false},
		{"server without secret", authKey(secret), authKey(nil), StreamRaft, false},
		{"unknown stream", authKey(secret), authKey(secret), 'X', false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cerr, got, serr := muxBothSides(t, tt.clientKey, tt.serverKey, tt.st)
			if tt.ok {
				if cerr != nil || serr != nil {
					t.Fatalf("client: %v, server: %v", cerr, serr)
				}
				if got != tt.st {
					t.Fatalf("server got stream %v, want %v", got, tt.st)
				}
				return
			}
			if cerr == nil || serr == nil {
				t.Fatalf("authenticated: client %v, server %v", cerr, serr)
			}
			// A key mismatch is caught by the client, verifying the server.
			if !bytes.Equal(tt.clientKey, tt.serverKey) && !errors.Is(cerr, ErrAuth) {
				t.Errorf("client error %v, want ErrAuth", cerr)
			}
		})
	}
}

// TestAuthKey: the key never aliases the caller's secret, and an empty
// secret has a key all the same.
func TestAuthKey(t *testing.T) {
	secret := []byte("s3cret")
	key := authKey(secret)
	secret[0] = 'x'
	if string(key) != "s3cret" {
		t.Errorf("authKey aliases the secret: %q", key)
	}
	if len(authKey(nil)) == 0 {
		t.Error("no key for an empty secret")
	}
}

// TestAuthMACBinds: every field changes the proof.
func TestAuthMACBinds(t *testing.T) {
	key, nc, ns := []byte("k"), bytes.Repeat([]byte{1}, nonceSize), bytes.Repeat([]byte{2}, nonceSize)
	base := handshakeMAC(key, labelClient, StreamRPC, nc, ns)
	for name, mac := range map[string][]byte{
		"key":    handshakeMAC([]byte("K"), labelClient, StreamRPC, nc, ns),
		"label":  handshakeMAC(key, labelServer, StreamRPC, nc, ns),
		"stream": handshakeMAC(key, labelClient, StreamRaft, nc, ns),
		"nonces": handshakeMAC(key, labelClient, StreamRPC, ns, nc),
	} {
		if bytes.Equal(mac, base) {
			t.Errorf("the proof does not depend on the %s", name)
		}
	}
}

// TestAuthHandshakeStreamSplice: a man in the middle who rewrites the
// stream byte of the hello makes the client reject the server's proof.
func TestAuthHandshakeStreamSplice(t *testing.T) {
	key := authKey([]byte("s3cret"))
	c, m1 := muxPipe(t)
	m2, s := muxPipe(t)
	var wg sync.WaitGroup
	wg.Go(func() { // client → server, rewriting the first byte
		hello := make([]byte, helloSize)
		if _, err := io.ReadFull(m1, hello); err != nil {
			return
		}
		hello[0] = byte(StreamRPC)
		m2.Write(hello)
		io.Copy(m2, m1)
		m2.Close()
	})
	wg.Go(func() { io.Copy(m1, m2); m1.Close() })
	var serr error
	wg.Go(func() {
		_, serr = serverHandshake(s, key, nil)
		s.Close()
	})
	cerr := clientHandshake(c, key, StreamRaft)
	c.Close()
	wg.Wait()
	if !errors.Is(cerr, ErrAuth) {
		t.Errorf("client: %v, want ErrAuth", cerr)
	}
	if serr == nil {
		t.Error("server authenticated a spliced handshake")
	}
}

// muxFuzzSeeds are inputs close to the protocol.
func muxFuzzSeeds(f *testing.F) {
	nc := bytes.Repeat([]byte{7}, nonceSize)
	for _, seed := range [][]byte{
		nil,
		{byte(StreamRaft)},
		{byte(StreamRPC), ProtoVersion},
		muxHello(StreamRPC, ProtoVersion, nc),
		muxHello(StreamRaft, ProtoVersion, nc),
		muxHello(StreamRPC, ProtoVersion+1, nc),
		muxHello('X', ProtoVersion, nc),
		append(muxHello(StreamRPC, ProtoVersion, nc), make([]byte, macSize)...),
		append(muxHello(StreamRaft, ProtoVersion, nc), bytes.Repeat([]byte{0xff}, macSize+10)...),
		append(make([]byte, nonceSize+macSize), handshakeOK),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	} {
		f.Add(seed)
	}
}

// muxFeed plays a peer that sends data and reads whatever comes back, then
// hangs up. The returned func waits for it.
func muxFeed(peer net.Conn, data []byte) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(io.Discard, peer) })
	wg.Go(func() {
		peer.Write(data)
		peer.Close()
	})
	return wg.Wait
}

// FuzzHandshake feeds arbitrary bytes to the server side: it must never
// panic and never authenticate (the proof depends on its fresh nonce).
func FuzzHandshake(f *testing.F) {
	muxFuzzSeeds(f)
	key := authKey([]byte("fuzz-secret"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, s := muxPipe(t)
		wait := muxFeed(c, data)
		st, err := serverHandshake(s, key, nil)
		s.Close()
		wait()
		if err == nil {
			t.Fatalf("authenticated stream %v from %x", st, data)
		}
	})
}

// FuzzClientHandshake feeds arbitrary bytes to the client side, as a
// hostile server would.
func FuzzClientHandshake(f *testing.F) {
	muxFuzzSeeds(f)
	key := authKey([]byte("fuzz-secret"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, s := muxPipe(t)
		wait := muxFeed(s, data)
		err := clientHandshake(c, key, StreamRPC)
		c.Close()
		wait()
		if err == nil {
			t.Fatalf("authenticated a server from %x", data)
		}
	})
}
