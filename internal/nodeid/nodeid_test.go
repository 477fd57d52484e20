package nodeid

import (
	"strings"
	"testing"
)

// TestValid: the ids the DSN and cluster accept, and those they refuse.
func TestValid(t *testing.T) {
	for _, id := range []string{"n1", "node-0123abcd", "a.b_c-D", "7", strings.Repeat("x", MaxLen)} {
		if !Valid(id) || Check(id) != nil {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "a b", "a,b", "a/b", "a:b", "é", "n1\n", strings.Repeat("x", MaxLen+1)} {
		if Valid(id) {
			t.Errorf("%q accepted", id)
		}
		if err := Check(id); err == nil || !strings.Contains(err.Error(), "[A-Za-z0-9._-]") {
			t.Errorf("Check(%q) = %v, want the rule", id, err)
		}
	}
}
