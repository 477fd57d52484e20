package nodeport

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// TestDialerClientStream: a Dialer with the cluster secret gets a client
// session that the mux hands to AcceptClient, not to the RPC side; one
// with another secret is refused before it sends anything; after Close,
// AcceptClient ends.
func TestDialerClientStream(t *testing.T) {
	m := muxTestListen(t, muxTestSecret, muxFastOpts, nil)
	rpc := muxEcho(t, m)
	accepted := make(chan error, 1)
	go func() {
		c, err := m.AcceptClient()
		if err == nil {
			defer c.Close()
			_, err = io.Copy(c, c)
		}
		accepted <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := NewDialer([]byte(muxTestSecret), nil).Dial(ctx, m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	muxRoundTrip(t, c)
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("the client session's server side: %v", err)
	}
	if n := rpc.Load(); n != 0 {
		t.Fatalf("the RPC side accepted %d connections", n)
	}

	_, err = NewDialer([]byte("another-secret-0123456789"), nil).Dial(ctx, m.Addr().String())
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "cluster secret") {
		t.Fatalf("a dialer with another secret: %v, want ErrAuth naming the secret", err)
	}

	m.Close()
	if _, err := m.AcceptClient(); !errors.Is(err, nodeerr.ErrClosed) {
		t.Fatalf("AcceptClient after Close: %v, want ErrClosed", err)
	}
}
