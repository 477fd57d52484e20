package hiqlite_test

import (
	"database/sql"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
)

func TestParseClientDSN(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	c, err := hiqlite.ParseClientDSN("hiqlite://10.0.0.1:7000,[::1]:7001,db.example:7002?_secret=" + secret + "&_consistency=linearizable&_timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	want := &hiqlite.ClientConfig{
		Hosts:       []string{"10.0.0.1:7000", "[::1]:7001", "db.example:7002"},
		Secret:      secret,
		Consistency: hiqlite.Linearizable,
		Timeout:     3 * time.Second,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed %+v, want %+v", c, want)
	}
	if strings.Contains(c.String(), secret) {
		t.Fatalf("String shows the secret: %s", c)
	}
	for _, dsn := range []string{
		c.FormatDSN(),
		"hiqlite://127.0.0.1:1",
		"hiqlite://127.0.0.1:1?_tls_cert=/c&_tls_key=/k&_tls_ca=/a&_secret_file=/s",
	} {
		c1, err := hiqlite.ParseClientDSN(dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		c2, err := hiqlite.ParseClientDSN(c1.FormatDSN())
		if err != nil || !reflect.DeepEqual(c1, c2) {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", dsn, c2, err, c1)
		}
	}
}

func TestParseClientDSNErrors(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"hiqlite://", "names no host"},
		{"hiqlite://127.0.0.1", `remote host "127.0.0.1"`},
		{"hiqlite://127.0.0.1:1,", `remote host ""`},
		{"hiqlite://127.0.0.1:99999", "99999"},
		{"hiqlite://10.0.0.1:7000", `"10.0.0.1:7000" is not a loopback address: set _secret`},
		{"hiqlite://127.0.0.1:1?_listen=127.0.0.1:2", "_listen is a node's"},
		{"hiqlite://127.0.0.1:1?_bogus=1", `unknown DSN parameter "_bogus"`},
		{"hiqlite://127.0.0.1:1?_consistency=strong", "strong"},
		{"hiqlite://127.0.0.1:1?_timeout=-1s", "_timeout"},
		{"hiqlite://127.0.0.1:1?_secret=short", "at least 16 bytes"},
		{"hiqlite://127.0.0.1:1?_tls_cert=/c", "_tls_cert set without _tls_key and _tls_ca"},
		{"hiqlite://127.0.0.1:1?_timeout=1s&_timeout=2s", "given twice"},
	} {
		_, err := hiqlite.ParseClientDSN(tc.dsn)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.dsn, err, tc.want)
		}
	}
	if _, err := hiqlite.ParseDSN("hiqlite://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "ParseClientDSN") {
		t.Errorf("ParseDSN of a remote DSN: %v, want a pointer to ParseClientDSN", err)
	}
	// sql.Open checks the DSN and dials nothing.
	db, err := sql.Open("hiqlite", "hiqlite://127.0.0.1:1?_nope=1")
	if err == nil {
		db.Close()
		t.Fatal("sql.Open took a remote DSN with an unknown parameter")
	}
}
