package cluster

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestWarnClearText: a node without TLS on an address that is not loopback
// warns at start; on loopback, or with TLS, it does not.
func TestWarnClearText(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		tls  bool
		warn bool
	}{
		{Config{Listen: "127.0.0.1:7000", Gossip: "127.0.0.1:7001"}, false, false},
		{Config{Listen: "localhost:7000", Advertise: "[::1]:7000"}, false, false},
		{Config{Listen: "127.0.0.1:7000", Advertise: "10.0.0.1:7000"}, false, true},
		{Config{Listen: ":7000", Advertise: "127.0.0.1:7000"}, false, true},
		{Config{Listen: "127.0.0.1:7000", Gossip: "0.0.0.0:7001"}, false, true},
		{Config{Listen: "10.0.0.1:7000"}, true, false},
	} {
		var log strings.Builder
		tc.cfg.logger = hclog.New(&hclog.LoggerOptions{Output: &log})
		warnClearText(tc.cfg, tc.tls)
		if got := strings.Contains(log.String(), "without TLS"); got != tc.warn {
			t.Errorf("%+v, TLS %v: warned %v, want %v:\n%s", tc.cfg, tc.tls, got, tc.warn, log.String())
		}
	}
}
