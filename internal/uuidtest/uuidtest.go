// Package uuidtest checks the UUIDs that hiqlite's SQL functions make, for
// the tests of every package.
package uuidtest

import (
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

var form = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// Check fails t unless s is a well-formed UUID of version ver with the
// RFC 9562 variant, and returns its 16 bytes.
func Check(t testing.TB, s string, ver byte) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if !form.MatchString(s) || err != nil || b[6]>>4 != ver || b[8]>>6 != 2 {
		t.Fatalf("%q is not a version %d UUID", s, ver)
	}
	return b
}

// Millis is the timestamp of a version 7 UUID.
func Millis(b []byte) int64 {
	var ms int64
	for _, c := range b[:6] {
		ms = ms<<8 | int64(c)
	}
	return ms
}
