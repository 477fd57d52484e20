package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/durable"
)

// fileStable is a raft.StableStore in one small file, rewritten (and
// fsynced) on every change. Raft keeps only its current term and vote
// there, which change once per election, so a whole-file rewrite costs
// nothing that matters; it is what lets the cache group keep its log in
// memory and still never vote twice in a term.
//
// mu guards kv and the file.
type fileStable struct {
	path string
	mu   sync.Mutex
	kv   map[string][]byte
}

var _ raft.StableStore = (*fileStable)(nil)

// errNotFound is the error raft expects for a missing key: it compares the
// text.
var errNotFound = errors.New("not found")

// openFileStable loads path, or starts empty when it does not exist.
func openFileStable(path string) (*fileStable, error) {
	s := &fileStable{path: path, kv: map[string][]byte{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hiqlite: read %s: %w", path, err)
	}
	for len(b) > 0 {
		var k, v []byte
		if k, b, err = readField(b); err == nil {
			v, b, err = readField(b)
		}
		if err != nil {
			return nil, fmt.Errorf("hiqlite: %s is corrupt: %w", path, err)
		}
		s.kv[string(k)] = v
	}
	return s, nil
}

func readField(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errors.New("bad length")
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], nil
}

// saveLocked writes every key to the file, durably.
func (s *fileStable) saveLocked() error {
	var b []byte
	for k, v := range s.kv {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return durable.WriteFile(s.path, b, privateFile)
}

func (s *fileStable) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[string(key)] = append([]byte(nil), val...)
	return s.saveLocked()
}

func (s *fileStable) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return append([]byte(nil), v...), nil
}

func (s *fileStable) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

func (s *fileStable) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("hiqlite: %s: key %q holds %d bytes, not a uint64", s.path, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
