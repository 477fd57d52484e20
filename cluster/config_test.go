package cluster

import (
	"crypto/tls"
	"os"
	"strings"
	"testing"
	"time"
)

// TestConfigValidate: DefaultConfig with a Dir is valid, and every field a
// node cannot start with is refused by an error that names the field and
// its value.
func TestConfigValidate(t *testing.T) {
	base := func(f func(*Config)) Config {
		c := DefaultConfig()
		c.Dir = "data"
		if f != nil {
			f(&c)
		}
		return c
	}
	for _, c := range []Config{
		base(nil),
		base(func(c *Config) { c.ID = "node-1.a_b" }),
		base(func(c *Config) { c.Timeout, c.ReapTimeout = 0, 0 }),
		base(func(c *Config) {
			c.Listen = "127.0.0.1:7000"
			c.Gossip = "127.0.0.1:7001"
			c.Join = []string{"127.0.0.1:7101"}
		}),
		base(func(c *Config) { c.Listen = "10.0.0.1:7000"; c.Secret = []byte("0123456789abcdef") }),
		base(func(c *Config) { c.InMemory = true }),
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, tc := range []struct {
		cfg  Config
		want []string // in the error
	}{
		{base(func(c *Config) { c.Dir = "" }), []string{"Dir"}},
		{base(func(c *Config) { c.ID = "a b" }), []string{"ID", `"a b"`, "[A-Za-z0-9._-]"}},
		{base(func(c *Config) { c.ID = strings.Repeat("x", 65) }), []string{"ID", strings.Repeat("x", 65)}},
		{base(func(c *Config) { c.Timeout = -time.Second }), []string{"Timeout", "-1s"}},
		{base(func(c *Config) { c.ReapTimeout = -time.Minute }), []string{"ReapTimeout", "-1m0s"}},
		{base(func(c *Config) { c.SegmentSize = -1 }), []string{"SegmentSize", "-1"}},
		{base(func(c *Config) { c.Expect = -2 }), []string{"Expect", "-2"}},
		{base(func(c *Config) { c.InMemory = true; c.Listen = "127.0.0.1:7000" }), []string{"Listen", "127.0.0.1:7000", "in-memory"}},
		{base(func(c *Config) { c.Gossip = "127.0.0.1:7001" }), []string{"Gossip", "127.0.0.1:7001", "Listen"}},
		{base(func(c *Config) { c.Advertise = "127.0.0.1:7000" }), []string{"Advertise", "127.0.0.1:7000", "Listen"}},
		{base(func(c *Config) { c.Listen = "127.0.0.1:7000"; c.Join = []string{"127.0.0.1:7101"} }), []string{"Join", "127.0.0.1:7101", "Gossip"}},
		{base(func(c *Config) { c.Listen = "10.0.0.1:7000" }), []string{"Listen", "10.0.0.1:7000", "Secret"}},
		{base(func(c *Config) { c.Listen = "127.0.0.1:7000"; c.Gossip = ":7001" }), []string{"Gossip", ":7001", "Secret"}},
		{base(func(c *Config) { c.Listen = "127.0.0.1:7000"; c.TLS = &tls.Config{}; c.TLSCert = "c" }), []string{"TLS", "TLSCert"}},
	} {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: valid, want an error naming %q", tc.cfg, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v; want it to name %q", tc.cfg, err, w)
			}
		}
	}
}

// TestOpenRefusesInvalidConfig: Open checks its Config before it touches
// the directory.
func TestOpenRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(Config{Dir: dir, ID: "no/slash"}); err == nil || !strings.Contains(err.Error(), `"no/slash"`) {
		t.Fatalf("Open with ID no/slash: %v; want an error naming it", err)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("Open left %d entries in the directory (%v)", len(ents), err)
	}
}
