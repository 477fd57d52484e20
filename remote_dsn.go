package hiqlite

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hiqlite/hiqlite/internal/nodeport"
)

// RemotePrefix begins the DSN of a remote client.
const RemotePrefix = "hiqlite://"

// IsRemoteDSN reports whether dsn opens a remote client (hiqlite://...)
// rather than a node.
func IsRemoteDSN(dsn string) bool { return strings.HasPrefix(dsn, RemotePrefix) }

// ClientConfig is a parsed remote-client DSN:
//
//	hiqlite://HOST:PORT[,HOST:PORT...][?param=value&...]
//
// The hosts are members' node ports (their _advertise, or _listen). A
// remote client opens no node and stores nothing locally: every statement
// runs on a member, which forwards writes to the leader. Parameters:
//
//	_secret, _secret_file        the cluster secret (required unless every host is a loopback address)
//	_tls_cert, _tls_key, _tls_ca the client's certificate, its key and the nodes' CA, when the cluster runs mutual TLS
//	_consistency                 default read consistency: local (the member's replica) or linearizable
//	_timeout                     how long connecting tries the hosts, and settling an interrupted COMMIT; default 10s
//
// For every valid ClientConfig c, ParseClientDSN(c.FormatDSN()) equals c.
type ClientConfig struct {
	Hosts                  []string
	Secret                 string // never printed in errors or String()
	SecretFile             string
	TLSCert, TLSKey, TLSCA string
	Consistency            Consistency
	Timeout                time.Duration
}

// clientParams are the parameters of a remote DSN.
var clientParams = map[string]bool{
	"_secret": true, "_secret_file": true, "_tls_cert": true, "_tls_key": true, "_tls_ca": true,
	"_consistency": true, "_timeout": true,
}

// ParseClientDSN parses and validates a remote client's DSN (see
// ClientConfig). Errors name the parameter and the value, except the
// secret's.
func ParseClientDSN(dsn string) (*ClientConfig, error) {
	if !IsRemoteDSN(dsn) {
		return nil, fmt.Errorf("hiqlite: a remote client's DSN begins with %s, not %s", RemotePrefix, quoteValue(dsn))
	}
	hosts, query, _ := strings.Cut(strings.TrimPrefix(dsn, RemotePrefix), "?")
	c := &ClientConfig{Timeout: defaultTimeout}
	if hosts == "" {
		return nil, errors.New("hiqlite: the remote DSN names no host (want hiqlite://host:port[,host:port...])")
	}
	c.Hosts = strings.Split(hosts, ",")
	_, err := walkParams(query, func(name string) error {
		if clientParams[name] {
			return nil
		}
		if knownParams[name] || sqliteParams[name] {
			return fmt.Errorf("hiqlite: DSN parameter %s is a node's; a remote DSN (%s) takes _secret, _secret_file, _tls_cert, _tls_key, _tls_ca, _consistency and _timeout", name, RemotePrefix)
		}
		return fmt.Errorf("hiqlite: unknown DSN parameter %s", quoteName(name))
	}, func(name, value string) (err error) {
		switch name {
		case "_secret":
			c.Secret = value
		case "_secret_file":
			c.SecretFile = value
		case "_tls_cert":
			c.TLSCert = value
		case "_tls_key":
			c.TLSKey = value
		case "_tls_ca":
			c.TLSCA = value
		case "_consistency":
			if c.Consistency, err = ParseConsistency(value); err != nil {
				return invalidValue(name, value, err)
			}
		case "_timeout":
			if c.Timeout, err = time.ParseDuration(value); err != nil {
				return invalidValue(name, value, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks c: hosts in host:port form, a secret unless every host
// is a loopback address, TLS files together, a positive timeout.
func (c *ClientConfig) Validate() error {
	if len(c.Hosts) == 0 {
		return errors.New("hiqlite: a remote client needs at least one host")
	}
	for _, h := range c.Hosts {
		if err := checkAddr(h, false); err != nil {
			return fmt.Errorf("hiqlite: remote host %s: %w", quoteValue(h), err)
		}
	}
	if c.Consistency != Local && c.Consistency != Linearizable {
		return fmt.Errorf("hiqlite: invalid _consistency %s", c.Consistency)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("hiqlite: invalid _timeout %s: must be positive", c.Timeout)
	}
	if c.SecretFile == "" {
		// The file is read when the connector is made.
		if _, err := c.secret(); err != nil {
			return err
		}
	} else if c.Secret != "" {
		return fmt.Errorf("hiqlite: _secret and _secret_file %s are mutually exclusive", quotePath(c.SecretFile))
	}
	if c.Secret == "" && c.SecretFile == "" {
		for _, h := range c.Hosts {
			if !nodeport.IsLoopback(h) {
				return fmt.Errorf("hiqlite: remote host %s is not a loopback address: set _secret or _secret_file", quoteValue(h))
			}
		}
	}
	return (&Config{TLSCert: c.TLSCert, TLSKey: c.TLSKey, TLSCA: c.TLSCA}).validateTLS()
}

// secret is the cluster secret, read from SecretFile if need be.
func (c *ClientConfig) secret() ([]byte, error) {
	return (&Config{Secret: c.Secret, SecretFile: c.SecretFile}).loadSecret()
}

// FormatDSN returns c's canonical DSN: the hosts in their order, then the
// parameters that differ from the defaults, sorted.
func (c *ClientConfig) FormatDSN() string { return c.format(false) }

// String is FormatDSN with the secret replaced by "REDACTED".
func (c *ClientConfig) String() string { return c.format(true) }

func (c *ClientConfig) format(redact bool) string {
	var params [][2]string
	add := func(name, value string) {
		if value != "" {
			params = append(params, [2]string{name, value})
		}
	}
	if c.Secret != "" && redact {
		add("_secret", redacted)
	} else {
		add("_secret", c.Secret)
	}
	add("_secret_file", c.SecretFile)
	add("_tls_cert", c.TLSCert)
	add("_tls_key", c.TLSKey)
	add("_tls_ca", c.TLSCA)
	if c.Consistency != Local {
		add("_consistency", c.Consistency.String())
	}
	if c.Timeout != defaultTimeout {
		add("_timeout", c.Timeout.String())
	}
	var b strings.Builder
	b.WriteString(RemotePrefix)
	b.WriteString(strings.Join(c.Hosts, ","))
	writeQuery(&b, params)
	return b.String()
}
