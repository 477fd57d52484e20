package extensions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ErrListenerClosed ends a Listener: closed by its owner, by the end of the
// context it was made with, or by the node closing.
var ErrListenerClosed = errors.New("hiqlite: listener closed")

// DefaultListenBuffer is how many notifications a Listener holds for its
// reader before it drops the oldest.
const DefaultListenBuffer = 256

// MaxListenBuffer bounds a listener's buffer: it is allocated whole, and a
// remote client chooses its size.
const MaxListenBuffer = 1 << 20

// Notification is one message on a channel, raised by Node.Notify or by
// hiqlite_notify in a write that committed.
type Notification struct {
	Channel string
	Payload string
	// Index is the Raft index of the write that raised it: once a read on
	// the node sees that index, it sees the write.
	Index uint64
	// Missed counts the notifications of the listener's channel that were
	// dropped just before this one because the listener's buffer was full.
	Missed uint64
}

// Hub fans the notifications of committed writes out to the listeners of
// one node.
//
// The state machine calls Deliver on its apply goroutine; Deliver never
// blocks: each listener has a bounded buffer and a full one drops its
// oldest notification, counting it in the Missed of the next.
//
// Lock protocol: mu guards listeners and closed; each Listener has its own
// lock for its buffer. Deliver holds mu for reading while it locks each
// listener in turn; nothing blocks under either lock.
type Hub struct {
	delivered atomic.Uint64 // notifications pushed to a listener
	dropped   atomic.Uint64 // notifications a full listener dropped

	mu        sync.RWMutex
	listeners map[string]map[*Listener]struct{}
	closed    error
}

// NewHub returns a hub without listeners.
func NewHub() *Hub {
	return &Hub{listeners: map[string]map[*Listener]struct{}{}}
}

// Listen subscribes to channel. The listener receives every notification
// of channel delivered after Listen returns, in log order, until it is
// closed: by Close, by the end of ctx, or by the hub closing. buffer bounds
// what it holds for its reader (DefaultListenBuffer if not positive).
func (h *Hub) Listen(ctx context.Context, channel string, buffer int) (*Listener, error) {
	if channel == "" {
		return nil, errors.New("hiqlite: listen: the channel must not be empty")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if buffer > MaxListenBuffer {
		return nil, fmt.Errorf("hiqlite: listen: a buffer of %d notifications is more than the %d allowed", buffer, MaxListenBuffer)
	}
	if buffer <= 0 {
		buffer = DefaultListenBuffer
	}
	l := &Listener{h: h, channel: channel, buf: make([]Notification, buffer), wake: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.closed != nil {
		h.mu.Unlock()
		return nil, h.closed
	}
	set := h.listeners[channel]
	if set == nil {
		set = map[*Listener]struct{}{}
		h.listeners[channel] = set
	}
	set[l] = struct{}{}
	h.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		l.close(fmt.Errorf("%w: %w", ErrListenerClosed, context.Cause(ctx)))
	})
	l.mu.Lock()
	l.stop = stop
	l.mu.Unlock()
	return l, nil
}

// Deliver hands ns, in order, to the listeners of their channels. It never
// blocks. The hub keeps no reference to ns.
func (h *Hub) Deliver(ns []Notification) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, n := range ns {
		for l := range h.listeners[n.Channel] {
			if l.push(n) {
				h.dropped.Add(1)
			}
			h.delivered.Add(1)
		}
	}
}

// Stats returns how many notifications the hub has handed to listeners,
// and how many of them were dropped since by a full listener (each
// listener that receives one counts once).
func (h *Hub) Stats() (delivered, dropped uint64) {
	return h.delivered.Load(), h.dropped.Load()
}

// Close closes every listener with err (which should match
// ErrListenerClosed) and refuses new ones.
func (h *Hub) Close(err error) {
	h.mu.Lock()
	if h.closed != nil {
		h.mu.Unlock()
		return
	}
	h.closed = err
	var all []*Listener
	for _, set := range h.listeners {
		for l := range set {
			all = append(all, l)
		}
	}
	h.mu.Unlock()
	for _, l := range all {
		l.close(err)
	}
}

func (h *Hub) remove(l *Listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.listeners[l.channel]; set != nil {
		delete(set, l)
		if len(set) == 0 {
			delete(h.listeners, l.channel)
		}
	}
}

// Listener receives the notifications of one channel on one node. Read
// them with Next from one goroutine at a time; Close may be called from
// any.
//
// mu guards the ring buffer (buf, head, n), err and stop.
type Listener struct {
	h       *Hub
	channel string
	stop    func() bool // stops the context's AfterFunc
	wake    chan struct{}

	mu   sync.Mutex
	buf  []Notification
	head int
	n    int
	err  error // set once closed
}

// Channel is the channel the listener receives.
func (l *Listener) Channel() string { return l.channel }

// push appends n, dropping the oldest notification when the buffer is
// full; the drop is counted in the Missed of what follows it. It reports
// whether it dropped one.
func (l *Listener) push(n Notification) (dropped bool) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return false
	}
	if l.n == len(l.buf) {
		dropped = true
		old := l.buf[l.head]
		l.buf[l.head] = Notification{}
		l.head = (l.head + 1) % len(l.buf)
		l.n--
		if l.n > 0 {
			l.buf[l.head].Missed += 1 + old.Missed
		} else {
			n.Missed += 1 + old.Missed
		}
	}
	l.buf[(l.head+l.n)%len(l.buf)] = n
	l.n++
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return dropped
}

// Next returns the next notification, waiting for one until ctx ends. Once
// the listener is closed, Next returns what it still holds, then an error
// matching ErrListenerClosed.
func (l *Listener) Next(ctx context.Context) (Notification, error) {
	for {
		l.mu.Lock()
		if l.n > 0 {
			n := l.buf[l.head]
			l.buf[l.head] = Notification{}
			l.head = (l.head + 1) % len(l.buf)
			l.n--
			l.mu.Unlock()
			return n, nil
		}
		err := l.err
		l.mu.Unlock()
		if err != nil {
			return Notification{}, err
		}
		select {
		case <-l.wake:
		case <-ctx.Done():
			return Notification{}, ctx.Err()
		}
	}
}

// Close stops the listener. It is idempotent.
func (l *Listener) Close() error {
	l.close(ErrListenerClosed)
	return nil
}

func (l *Listener) close(err error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	stop := l.stop
	l.mu.Unlock()
	if stop != nil {
		stop()
	}
	l.h.remove(l)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
