package replication

import (
	"errors"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// TestEveryCode rebuilds every extended code SQLite can have (primary codes
// ERROR to WARNING, any extension byte): the text and errors.Is always hold;
// errors.As to *sqlite3.Error holds except for the codes SQLite or ncruces
// treat specially.
func TestEveryCode(t *testing.T) {
	t.Parallel()
	special := map[sqlite3.ExtendedErrorCode]bool{sqlite3.IOERR_NOMEM: true, sqlite3.IOERR_CORRUPTFS: true}
	for i := 1; i <= 0xffff; i++ {
		c := sqlite3.ExtendedErrorCode(i)
		p := c.Code()
		if p < sqlite3.ERROR || p > sqlite3.WARNING {
			continue
		}
		const msg = "message: ☃"
		got := newSQLiteError(c, msg)
		if got.Error() != c.Error()+": "+msg || !errors.Is(got, c) || !errors.Is(got, p) {
			t.Fatalf("code %d: got %q, errors.Is code %v, primary %v", c, got, errors.Is(got, c), errors.Is(got, p))
		}
		var e *sqlite3.Error
		if ok := errors.As(got, &e); ok == (special[c] || p == sqlite3.NOMEM) {
			t.Fatalf("code %d: errors.As(*sqlite3.Error) = %v", c, ok)
		}
	}
}

// TestMessageTrimFallback: a message that ncruces would trim again (it
// starts with the code's text) falls back to a wrapper with the same text.
func TestMessageTrimFallback(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{"constraint failed: x", "sqlite3: x", "not an error", "nul\x00byte"} {
		got := newSQLiteError(sqlite3.CONSTRAINT_UNIQUE, msg)
		if want := sqlite3.CONSTRAINT_UNIQUE.Error() + ": " + msg; got.Error() != want {
			t.Errorf("got %q, want %q", got, want)
		}
		if !errors.Is(got, sqlite3.CONSTRAINT_UNIQUE) {
			t.Errorf("%q does not match CONSTRAINT_UNIQUE", got)
		}
	}
}

func BenchmarkSQLiteErrorRebuild(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := newSQLiteError(sqlite3.CONSTRAINT_UNIQUE, "UNIQUE constraint failed: users.email").(*sqlite3.Error); !ok {
			b.Fatal("not a *sqlite3.Error")
		}
	}
}
