package hiqlite

import (
	"strings"
	"testing"
)

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

// secretTypos are the ways a DSN is mistyped around a _secret parameter:
// what comes before its name (a separator other than '&', or none) and what
// comes between the name and the value.
var secretTypos = struct{ before, assign []string }{
	before: []string{"&", "?", ";", " ", ",", "", "%26", "%3F", "%3B", "?_secret_file=/run/key;"},
	assign: []string{"=", ":", " ", "%3D", "==", "=%20"},
}

// FuzzParseDSNMistypedSecret builds a DSN in which the secret follows a
// mistyped separator, e.g. "data?_node=a?_secret=SECRET" or
// "data;_secret:SECRET&_listen=...", and checks that no error, no
// Config.String and no error from reading the secret file contains it.
func FuzzParseDSNMistypedSecret(f *testing.F) {
	f.Add("?_node=a", uint8(1), uint8(0), "s3cretValue1234567", "")
	f.Add("?_node=a", uint8(2), uint8(0), "s3cretValue1234567", "&_listen=127.0.0.1:7000")
	f.Add("", uint8(2), uint8(0), "s3cretValue1234567", "")
	f.Add("?_listen=127.0.0.1:7000&_timeout=1s", uint8(2), uint8(1), "s3cretValue1234567", "")
	f.Add("?_listen=127.0.0.1:7000&_join=127.0.0.1:1", uint8(4), uint8(0), "s3cretValue1234567", "")
	f.Add("?_listen=127.0.0.1:7000", uint8(0), uint8(0), "s3cret&Value1234567", "")
	f.Add("?_expect=3", uint8(9), uint8(0), "s3cretValue1234567", "")
	f.Add("?_voter=true", uint8(5), uint8(2), "s3cretValue1234567", "")
	f.Fuzz(func(t *testing.T, pre string, before, assign uint8, secret, post string) {
		if !distinctiveSecret(secret) {
			return
		}
		dsn := "data" + pre + secretTypos.before[int(before)%len(secretTypos.before)] +
			"_secret" + secretTypos.assign[int(assign)%len(secretTypos.assign)] + secret + post
		if strings.Count(strings.ToLower(dsn), strings.ToLower(secret)) != 1 {
			return // the same text is in the DSN twice: an error may quote the other
		}
		cfg, err := ParseDSN(dsn)
		if err != nil {
			if containsFold(err.Error(), secret) {
				t.Fatalf("ParseDSN(%q) error contains the secret: %v", dsn, err)
			}
			return
		}
		if s := cfg.String(); containsFold(s, secret) {
			t.Fatalf("ParseDSN(%q).String() contains the secret: %s", dsn, s)
		}
		if cfg.Secret == "" {
			if _, err := cfg.loadSecret(); err != nil && containsFold(err.Error(), secret) {
				t.Fatalf("ParseDSN(%q).loadSecret() error contains the secret: %v", dsn, err)
			}
		}
	})
}

// distinctiveSecret reports whether s is a secret the fuzz target can look
// for in errors: 8 or more letters, digits and the ASCII punctuation secrets
// use, with at least one letter and one digit, so that no fixed text of an
// error message can equal it.
func distinctiveSecret(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	var letter, digit bool
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letter = true
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune("+/&!*.~-", r):
		default:
			return false
		}
	}
	return letter && digit
}

func containsFold(s, sub string) bool {
	return indexASCIIFold(s, strings.ToLower(sub)) >= 0
}
