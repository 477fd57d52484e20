package backup

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

// A key file holds either age keys or a passphrase:
//
//   - age keys, one per line (blank lines and lines starting with # are
//     ignored): public keys "age1..." (recipients: they can encrypt a
//     backup, not restore it) and secret keys "AGE-SECRET-KEY-1..."
//     (identities: they restore, and encrypt to their own public key), as
//     age-keygen writes them;
//   - anything else: a passphrase, the whole first line (without its line
//     end), for age's scrypt encryption.
//
// So one file of secret keys serves both backup and restore; a file of
// public keys lets nodes take backups that only the holder of the secret
// key can read.

// keyLines returns the non-comment lines of a key file and whether they
// are all age keys.
func keyLines(data []byte) (lines []string, keys bool) {
	keys = true
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
		if !strings.HasPrefix(l, "age1") && !strings.HasPrefix(l, "AGE-SECRET-KEY-1") {
			keys = false
		}
	}
	return lines, keys && len(lines) > 0
}

// passphrase is the first line of data, without its line end.
func passphrase(path string, data []byte) (string, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	p := strings.TrimSuffix(string(line), "\r")
	if p == "" {
		return "", fmt.Errorf("hiqlite: key file %s: no age key and an empty first line (want age keys, one per line, or a passphrase on the first line)", path)
	}
	return p, nil
}

// LoadRecipients reads the key file path for taking backups.
func LoadRecipients(path string) ([]age.Recipient, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: key file: %w", err)
	}
	lines, keys := keyLines(data)
	if !keys {
		p, err := passphrase(path, data)
		if err != nil {
			return nil, err
		}
		r, err := age.NewScryptRecipient(p)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: key file %s: %w", path, err)
		}
		return []age.Recipient{r}, nil
	}
	var out []age.Recipient
	for i, l := range lines {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-1") {
			id, err := age.ParseX25519Identity(l)
			if err != nil {
				return nil, fmt.Errorf("hiqlite: key file %s: key %d: %w", path, i+1, err)
			}
			out = append(out, id.Recipient())
			continue
		}
		r, err := age.ParseX25519Recipient(l)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: key file %s: key %d: %w", path, i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// LoadIdentities reads the key file path for reading backups.
func LoadIdentities(path string) ([]age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: identity file: %w", err)
	}
	lines, keys := keyLines(data)
	if !keys {
		p, err := passphrase(path, data)
		if err != nil {
			return nil, err
		}
		id, err := age.NewScryptIdentity(p)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: identity file %s: %w", path, err)
		}
		// age writes work factor 18; up to 22 it would spend about 4 GiB
		// and seconds on what a crafted header asks for.
		id.SetMaxWorkFactor(20)
		return []age.Identity{id}, nil
	}
	var out []age.Identity
	for i, l := range lines {
		if strings.HasPrefix(l, "age1") {
			continue // a public key: reads nothing
		}
		id, err := age.ParseX25519Identity(l)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: identity file %s: key %d: %w", path, i+1, err)
		}
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("hiqlite: identity file %s holds only public keys (age1...): reading a backup needs a secret key (AGE-SECRET-KEY-1...)", path)
	}
	return out, nil
}

// RemoteKeys reads the key file path for a backup that another process
// (a member, for a remote client) encrypts: the age public keys of its
// keys, as strings ("age1..."; a secret key gives its public key, never
// itself), or else its passphrase.
func RemoteKeys(path string) (recipients []string, pass string, err error) {
	rs, err := LoadRecipients(path)
	if err != nil {
		return nil, "", err
	}
	for _, r := range rs {
		x, ok := r.(*age.X25519Recipient)
		if !ok {
			// Not age keys: the file holds a passphrase.
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, "", fmt.Errorf("hiqlite: key file: %w", err)
			}
			p, err := passphrase(path, data)
			return nil, p, err
		}
		recipients = append(recipients, x.String())
	}
	return recipients, "", nil
}

// ParseRecipients makes the recipients of a backup from age public keys
// ("age1...") or a passphrase, as RemoteKeys returns them; none of either:
// no encryption.
func ParseRecipients(keys []string, passphrase string) ([]age.Recipient, error) {
	if passphrase != "" {
		if len(keys) > 0 {
			return nil, fmt.Errorf("hiqlite: backup: a passphrase cannot be combined with age public keys (%d given)", len(keys))
		}
		r, err := age.NewScryptRecipient(passphrase)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: backup: passphrase: %w", err)
		}
		return []age.Recipient{r}, nil
	}
	var out []age.Recipient
	for i, k := range keys {
		r, err := age.ParseX25519Recipient(k)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: backup: age public key %d %q: %w", i+1, k, err)
		}
		out = append(out, r)
	}
	return out, nil
}
