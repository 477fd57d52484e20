package hiqlite

import "testing"

// FuzzParseDSN checks, for any input, that ParseDSN does not panic, that a
// DSN it accepts survives FormatDSN and ParseDSN unchanged, and that nothing
// it prints depends on the content of a _secret value. The seed corpus is
// the DSN table of dsn_test.go.
func FuzzParseDSN(f *testing.F) {
	for _, tc := range dsnTests {
		f.Add(tc.dsn)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		checkSecretHidden(t, dsn)
		cfg, err := ParseDSN(dsn)
		if err != nil {
			if cfg != nil {
				t.Fatalf("ParseDSN(%q) returned a Config along with error %q", dsn, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseDSN(%q) returned a Config that fails Validate: %v", dsn, err)
		}
		checkRoundTrip(t, cfg)
	})
}
