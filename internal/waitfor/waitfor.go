// Package waitfor holds the one way tests here wait: poll a condition
// until it holds or a deadline passes. It imports nothing of hiqlite, so
// tests of every package can use it.
package waitfor

import (
	"testing"
	"time"
)

// Cond polls cond every few milliseconds until it holds; after timeout the
// test fails naming what it waited for.
func Cond(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(delay) // polling interval, not synchronisation: cond decides
		delay = min(2*delay, 50*time.Millisecond)
	}
}
