package nodeport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Dialer opens sessions of a remote client: a process that holds the
// cluster secret (and, under mutual TLS, a certificate the nodes' CA signed)
// but runs no node and has no listener. Its connections carry
// StreamClient and go through the same handshakes as a member's, so a
// node counts and bounds them like any other handshake until they are
// authenticated.
type Dialer struct {
	key     []byte
	tls     *TLS
	timeout time.Duration
}

// NewDialer returns a dialer for the cluster secret (empty: loopback only,
// as for a node) and t (nil: clear text).
func NewDialer(secret []byte, t *TLS) *Dialer {
	return &Dialer{key: authKey(secret), tls: t, timeout: HandshakeTimeout}
}

// Dial connects to the node port at addr and authenticates a client
// session. ctx bounds the dial and the handshake. An error means no byte
// beyond the handshake was sent; one that matches ErrAuth is a wrong
// secret, on either side.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var nd net.Dialer
	if _, ok := ctx.Deadline(); !ok {
		nd.Timeout = d.timeout
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: dial %s: %w", addr, err)
	}
	hc, err := dialHandshake(ctx, c, addr, StreamClient, d.key, d.tls, d.timeout, "this client's")
	if err != nil {
		c.Close()
		if cerr := dialCtxErr(ctx); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return nil, fmt.Errorf("hiqlite: connect to %s: %w", addr, err)
	}
	return hc, nil
}

// dialHandshake runs the client handshakes on c, dialed to addr, for
// stream st: TLS (if t is set) then HMAC with key, under a deadline (the
// handshake timeout or ctx's deadline, whichever is sooner). Cancelling ctx
// interrupts it. It returns the connection to use: c, or the TLS
// connection over it.
//
// who names the dialing side in a refusal of its certificate.
func dialHandshake(ctx context.Context, c net.Conn, addr string, st StreamType, key []byte, t *TLS, timeout time.Duration, who string) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	conn, err := dialHandshakes(c, addr, st, key, t, who)
	if !stop() {
		// ctx is done, and its func may yet expire the deadline.
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return conn, c.SetDeadline(time.Time{})
}

func dialHandshakes(c net.Conn, addr string, st StreamType, key []byte, t *TLS, who string) (net.Conn, error) {
	conn := c
	if t != nil {
		cfg, err := t.client(addr)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, err // crypto/tls's errors begin with "tls: "
		}
		conn = tc
	}
	// In TLS 1.3 the server checks the client's certificate after the
	// client's handshake is over: a refusal arrives as an alert on the
	// first read, here.
	if err := clientHandshake(conn, key, st); err != nil {
		if r, ok := tlsRefusal(err); ok && t != nil && r == dropTLSRefusedOurs {
			return nil, fmt.Errorf("the peer refused %s TLS certificate: %w", who, err)
		}
		if errors.Is(err, ErrAuth) {
			return nil, fmt.Errorf("%w (is the cluster secret the same on both sides?)", err)
		}
		return nil, err
	}
	return conn, nil
}
