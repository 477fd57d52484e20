package wire

import "github.com/hiqlite/hiqlite/internal/encoding"

// CacheRequest carries a command of the cache Raft group (caches and
// locks, package extensions) to that group's leader, which stamps and
// applies it. Cmd is the command's encoding, opaque here. Answered by
// CacheResponse.
type CacheRequest struct {
	Cmd []byte
}

func (*CacheRequest) Type() Type { return TypeCacheRequest }

func (m *CacheRequest) appendBody(b []byte) ([]byte, error) {
	return encoding.AppendBytes(b, m.Cmd), nil
}

func (m *CacheRequest) decodeBody(d decoder) { m.Cmd = d.opaque() }

// CacheResponse answers CacheRequest: the cache group's Raft index of the
// command and its encoded result.
type CacheResponse struct {
	Index  uint64
	Result []byte
}

func (*CacheResponse) Type() Type { return TypeCacheResponse }

func (m *CacheResponse) appendBody(b []byte) ([]byte, error) {
	b = encoding.AppendUvarint(b, m.Index)
	return encoding.AppendBytes(b, m.Result), nil
}

func (m *CacheResponse) decodeBody(d decoder) {
	m.Index = d.Uvarint()
	m.Result = d.opaque()
}

// opaque reads bytes that the message carries for another layer: nil when
// empty.
func (d decoder) opaque() []byte {
	b := d.Bytes()
	if len(b) == 0 {
		return nil
	}
	return b
}
