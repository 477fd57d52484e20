package hiqlite

import (
	"fmt"
	"strconv"
	"strings"
)

// How values of a DSN appear in errors: never with the secret, however
// the DSN was mistyped.

// quoteName quotes a parameter name for an error message. A name that
// contains "secret" is cut after that word, because a DSN missing the "="
// of "_secret=..." would otherwise print the secret as part of the name.
func quoteName(name string) string {
	if i := indexASCIIFold(name, secretWord); i >= 0 && name != "_secret_file" {
		if end := i + len(secretWord); end < len(name) {
			return strconv.Quote(name[:end]) + " (rest withheld)"
		}
	}
	return strconv.Quote(name)
}

// secretWord is what marks text that may hold a secret: a value with a
// mistyped separator ("_node=a?_secret=...", "_node=a;_secret=...") carries
// the secret inside another parameter's value.
const secretWord = "secret"

// quoteValue quotes a value from the DSN or the Config for an error
// message. A value that contains "secret" (in any case) is cut after that
// word, so that a secret carried inside it never reaches an error or a log.
func quoteValue(value string) string {
	if i := indexASCIIFold(value, secretWord); i >= 0 {
		if end := i + len(secretWord); end < len(value) {
			return strconv.Quote(value[:end]) + " (rest withheld)"
		}
	}
	return strconv.Quote(value)
}

// holdsSecretParam reports whether the free text of a path (the data
// directory, _secret_file) holds "_secret" followed by a character that
// would have separated its value in a DSN: such a path comes from a DSN
// whose separators were mistyped and carries the secret in it, so it is
// refused rather than created, logged or echoed.
func holdsSecretParam(path string) bool {
	for {
		i := indexASCIIFold(path, "_"+secretWord)
		if i < 0 {
			return false
		}
		path = path[i+1+len(secretWord):]
		if path == "" || strings.IndexByte("=:;&%?#, \t", path[0]) >= 0 {
			return true
		}
	}
}

// indexASCIIFold is strings.Index with ASCII letters matched in any case. It
// works on bytes, so the index is right for text that is not valid UTF-8
// (strings.ToLower would change its length).
func indexASCIIFold(s, word string) int {
	for i := 0; i+len(word) <= len(s); i++ {
		match := true
		for j := 0; j < len(word) && match; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			match = c == word[j]
		}
		if match {
			return i
		}
	}
	return -1
}

// quotePath quotes a path for an error message: in full, unless it holds a
// _secret parameter (holdsSecretParam), which Validate refuses.
func quotePath(path string) string {
	if holdsSecretParam(path) {
		return quoteValue(path)
	}
	return strconv.Quote(path)
}

// invalidValue is the error for a bad value of the parameter name. The cause
// is kept (and wrapped) only when the value cannot hold a secret: causes such
// as strconv's and net's errors quote the whole value.
func invalidValue(name, value string, cause error) error {
	if indexASCIIFold(value, secretWord) >= 0 {
		return fmt.Errorf("hiqlite: invalid %s %s", name, quoteValue(value))
	}
	return fmt.Errorf("hiqlite: invalid %s %q: %w", name, value, cause)
}
