// Package waitfor holds the one way tests here wait: poll a condition
// until it holds or a deadline passes. It imports nothing of hiqlite, so
// tests of every package (the conformance module's too) can use it.
package waitfor

import (
	"testing"
	"time"
)

// Until polls cond, every millisecond at first and then every 50 at most,
// until it holds (true) or timeout passes (false).
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay) // polling interval, not synchronisation: cond decides
	}
	return true
}

// Cond is Until that fails the test, naming what it waited for, on timeout.
func Cond(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
