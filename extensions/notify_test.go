package extensions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func deliver(h *Hub, channel string, payloads ...string) {
	var ns []Notification
	for _, p := range payloads {
		ns = append(ns, Notification{Channel: channel, Payload: p})
	}
	h.Deliver(ns)
}

func drain(t *testing.T, l *Listener) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out []string
	for {
		n, err := l.Next(ctx)
		if err != nil {
			return out
		}
		s := n.Payload
		if n.Missed > 0 {
			s += fmt.Sprintf("+%d", n.Missed)
		}
		out = append(out, s)
	}
}

func TestListenerBuffer(t *testing.T) {
	for _, tc := range []struct {
		buffer   int
		payloads []string
		want     []string
	}{
		{4, []string{"a", "b"}, []string{"a", "b"}},
		{2, []string{"a", "b", "c"}, []string{"b+1", "c"}},
		{2, []string{"a", "b", "c", "d", "e"}, []string{"d+3", "e"}},
		{1, []string{"a", "b", "c"}, []string{"c+2"}},
		{3, []string{"a", "b", "c", "d"}, []string{"b+1", "c", "d"}},
	} {
		h := NewHub()
		l, err := h.Listen(context.Background(), "ch", tc.buffer)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := h.Listen(context.Background(), "other", tc.buffer)
		deliver(h, "ch", tc.payloads...)
		if got := drain(t, l); !slices.Equal(got, tc.want) {
			t.Errorf("buffer %d, %q: got %q, want %q", tc.buffer, tc.payloads, got, tc.want)
		}
		if got := drain(t, other); len(got) != 0 {
			t.Errorf("another channel got %q", got)
		}
	}
}

func TestListenerClose(t *testing.T) {
	h := NewHub()
	l, _ := h.Listen(context.Background(), "ch", 8)
	deliver(h, "ch", "a", "b")
	h.Close(ErrListenerClosed)
	deliver(h, "ch", "c")
	// What it held is still read, then the error.
	if got := drain(t, l); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after close: %q", got)
	}
	if _, err := l.Next(context.Background()); !errors.Is(err, ErrListenerClosed) {
		t.Fatalf("Next after close: %v", err)
	}
	if _, err := h.Listen(context.Background(), "ch", 8); !errors.Is(err, ErrListenerClosed) {
		t.Fatalf("Listen on a closed hub: %v", err)
	}

	h = NewHub()
	l, _ = h.Listen(context.Background(), "ch", 8)
	l.Close()
	l.Close()
	deliver(h, "ch", "a")
	if _, err := l.Next(context.Background()); !errors.Is(err, ErrListenerClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if len(h.listeners) != 0 {
		t.Fatalf("closed listener still registered: %v", h.listeners)
	}
	if _, err := h.Listen(context.Background(), "", 8); err == nil {
		t.Fatal("empty channel accepted")
	}
}

// Next waits for a notification delivered by another goroutine.
func TestListenerWaits(t *testing.T) {
	h := NewHub()
	l, _ := h.Listen(context.Background(), "ch", 8)
	go deliver(h, "ch", "late")
	n, err := l.Next(context.Background())
	if err != nil || n.Payload != "late" {
		t.Fatalf("Next: %+v, %v", n, err)
	}
}

// TestHubStats: each notification handed to a listener counts once as
// delivered, and each one a full listener drops counts as dropped.
func TestHubStats(t *testing.T) {
	t.Parallel()
	h := NewHub()
	defer h.Close(ErrListenerClosed)
	small, err := h.Listen(context.Background(), "c", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Listen(context.Background(), "c", 8); err != nil {
		t.Fatal(err)
	}
	h.Deliver([]Notification{{Channel: "c", Payload: "1"}, {Channel: "c", Payload: "2"}, {Channel: "c", Payload: "3"}, {Channel: "other"}})
	if d, x := h.Stats(); d != 6 || x != 2 {
		t.Errorf("Stats() = %d delivered, %d dropped; want 6, 2", d, x)
	}
	n, err := small.Next(context.Background())
	if err != nil || n.Payload != "3" || n.Missed != 2 {
		t.Errorf("the small listener's next: %+v, %v; want payload 3 with 2 missed", n, err)
	}
}
