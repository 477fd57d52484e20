package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// idleConns follows the HTTP server's connections that have not begun a
// request (http.StateNew): one that sent nothing, or part of a request
// header. http.Server.Shutdown would wait up to five seconds for each of
// them; serve closes them when it stops, and from then on closes every new
// one as it arrives.
//
// mu guards conns and stopping.
type idleConns struct {
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	stopping bool
}

// track is the server's ConnState hook.
func (t *idleConns) track(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case s != http.StateNew:
		delete(t.conns, c)
	case t.stopping:
		c.Close()
	default:
		if t.conns == nil {
			t.conns = map[net.Conn]struct{}{}
		}
		t.conns[c] = struct{}{}
	}
}

// stop closes the connections that have not begun a request, and every
// later one.
func (t *idleConns) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopping = true
	for c := range t.conns {
		c.Close()
	}
	clear(t.conns)
}

// stopHTTP stops srv, whose requests in flight were told to end (their
// context is done): it stops accepting, closes the connections that are
// idle or have not begun a request, and waits up to shutdownTimeout for
// the requests in flight. Connections still busy then (a client that does
// not read its response) are closed, with a warning on errOut: a stuck
// client does not keep serve from stopping, nor make it fail.
func stopHTTP(srv *http.Server, conns *idleConns, errOut io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	conns.stop()
	err := <-done
	if errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(errOut, "hiqlite serve: warning: HTTP requests still running %v after the stop; closing their connections\n", shutdownTimeout)
		err = srv.Close()
	}
	return err
}
