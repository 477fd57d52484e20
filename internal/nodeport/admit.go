package nodeport

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// This file holds what a Mux lets an unauthenticated connection hold
// (unauthenticated connections must not starve the members): a place
// among the handshakes in flight, bounded per source and overall, and the
// log of the strangers it dropped.

// handshake is an accepted connection in handshake.
type handshake struct {
	c   net.Conn
	src netip.Prefix
	seq uint64
}

// admit records c as in handshake. When c's source, or the mux, has no
// place left, it takes the place of the oldest handshake of its source, or
// of the source with the most: victim, which the caller closes, and why. It
// reports false once the mux is closed.
func (m *Mux) admit(c net.Conn) (victim net.Conn, why dropReason, ok bool) {
	src := sourceOf(c.RemoteAddr())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, 0, false
	}
	var v *handshake
	switch {
	case len(m.sources[src]) >= m.opts.maxPerSource:
		v, why = m.sources[src][0], dropSourceFull
	case len(m.pending) >= m.opts.maxHandshakes:
		v, why = m.busiestOldest(), dropMuxFull
	}
	if v != nil {
		m.forgetLocked(v.c)
		victim = v.c
	}
	m.seq++
	h := &handshake{c: c, src: src, seq: m.seq}
	m.pending[c] = h
	m.sources[src] = append(m.sources[src], h)
	return victim, why, true
}

// busiestOldest is the oldest handshake of the source with the most (the
// oldest among equals). m.mu is held and pending is not empty.
func (m *Mux) busiestOldest() *handshake {
	var v *handshake
	n := 0
	for _, hs := range m.sources {
		if len(hs) > n || len(hs) == n && hs[0].seq < v.seq {
			v, n = hs[0], len(hs)
		}
	}
	return v
}

// forgetLocked removes c from the handshakes and reports whether it was
// there. m.mu is held.
func (m *Mux) forgetLocked(c net.Conn) bool {
	h, ok := m.pending[c]
	if !ok {
		return false
	}
	delete(m.pending, c)
	hs := m.sources[h.src]
	for i, x := range hs {
		if x == h {
			hs = slices.Delete(hs, i, i+1)
			break
		}
	}
	if len(hs) == 0 {
		delete(m.sources, h.src)
	} else {
		m.sources[h.src] = hs
	}
	return true
}

// sourceOf is the source a connection counts against: its IPv4 address,
// or the /64 of its IPv6 address (one host's usual share).
func sourceOf(a net.Addr) netip.Prefix {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	ip := ta.AddrPort().Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// dropReason is why a mux closed an unauthenticated connection.
type dropReason int

const (
	dropFailed     dropReason = iota // the handshake failed: garbage, a wrong proof, a hang-up
	dropTimedOut                     // the handshake outlived handshakeTimeout
	dropSourceFull                   // displaced by a newer one from its source
	dropMuxFull                      // displaced by a newer one from a quieter source
	// TLS refusals (tls.go): the peer's certificate was
	dropTLSNoCert      // missing
	dropTLSExpired     // expired
	dropTLSUnknownCA   // signed by an authority this node does not trust
	dropTLSBadCert     // invalid otherwise (wrong use, not valid yet, ...)
	dropTLSRefusedOurs // fine, but the peer refused this node's certificate
	numDropReasons
)

func (r dropReason) String() string {
	switch r {
	case dropFailed:
		return "handshake failed"
	case dropTimedOut:
		return "handshake timed out"
	case dropSourceFull:
		return "too many handshakes from its source"
	case dropMuxFull:
		return "too many handshakes in flight"
	case dropTLSNoCert:
		return "no TLS certificate"
	case dropTLSExpired:
		return "TLS certificate expired"
	case dropTLSUnknownCA:
		return "TLS certificate of an unknown authority"
	case dropTLSBadCert:
		return "TLS certificate invalid"
	case dropTLSRefusedOurs:
		return "the peer refused this node's TLS certificate"
	}
	return "unknown"
}

// dropLog counts the unauthenticated connections a mux closed and logs
// them at WARN, one line per every at most: the first drop after a quiet
// spell at once, the later ones summed up in the next line (or at Close).
// A line holds counts and the last source address; nothing the peer sent
// and nothing of the key.
//
// Lock protocol: mu guards the fields below it and is held while a line is
// written, so lines come out in order; the mux's own lock is never held
// when add is called.
type dropLog struct {
	logger hclog.Logger
	every  time.Duration

	mu     sync.Mutex
	last   time.Time // of the last line
	since  time.Time // of the first drop counted now
	counts [numDropReasons]int
	remote net.Addr   // of the last drop
	why    dropReason // of the last drop
}

// add counts a dropped connection from remote.
func (d *dropLog) add(why dropReason, remote net.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if d.counts == [numDropReasons]int{} {
		d.since = now
	}
	d.counts[why]++
	d.remote, d.why = remote, why
	if now.Sub(d.last) >= d.every {
		d.logLocked(now)
	}
}

// flush logs what add has counted since the last line.
func (d *dropLog) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts != [numDropReasons]int{} {
		d.logLocked(time.Now())
	}
}

func (d *dropLog) logLocked(now time.Time) {
	c := d.counts
	args := []any{"failed", c[dropFailed], "timed-out", c[dropTimedOut],
		"displaced-source-full", c[dropSourceFull], "displaced-mux-full", c[dropMuxFull]}
	// TLS refusals only when there are some: most nodes never see one.
	for _, r := range []struct {
		why  dropReason
		name string
	}{
		{dropTLSNoCert, "tls-no-certificate"}, {dropTLSExpired, "tls-expired"},
		{dropTLSUnknownCA, "tls-unknown-authority"}, {dropTLSBadCert, "tls-invalid-certificate"},
		{dropTLSRefusedOurs, "tls-peer-refused-ours"},
	} {
		if c[r.why] > 0 {
			args = append(args, r.name, c[r.why])
		}
	}
	args = append(args, "last-reason", d.why.String(), "last-remote", d.remote, "over", now.Sub(d.since).Round(time.Millisecond))
	d.logger.Warn("closed unauthenticated connections", args...)
	d.counts = [numDropReasons]int{}
	d.last = now
}
