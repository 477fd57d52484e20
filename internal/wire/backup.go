package wire

import (
	"time"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// The frames of a backup taken through a remote client's session. The
// client sends ClientBackup in place of a ClientRequest; the member answers
// with BackupChunk frames, the bytes of the backup object in order (the
// first one names the object), then one BackupDone, or an ErrorResponse at
// any point, which ends the backup. A ClientCancel stops it: the answer
// that follows is an ErrorResponse (or BackupDone, when the backup was
// whole already). The member writes the chunks only as fast as the client
// reads them, so the connection's own flow control bounds what is in
// flight; nothing waits for a per-chunk acknowledgement.

// ClientBackup asks the member for a backup of its database. Recipients
// are age public keys ("age1...") to encrypt to; Passphrase, instead, is a
// passphrase for age's scrypt encryption; with neither the backup is not
// encrypted. Timeout is what is left of the caller's deadline (0: none).
type ClientBackup struct {
	Recipients []string
	Passphrase string
	Timeout    time.Duration
}

func (*ClientBackup) Type() Type { return TypeClientBackup }

func (m *ClientBackup) appendBody(b []byte) ([]byte, error) {
	b = encoding.AppendStrings(b, m.Recipients)
	b = encoding.AppendString(b, m.Passphrase)
	return appendDuration(b, m.Timeout), nil
}

func (m *ClientBackup) decodeBody(d decoder) {
	m.Recipients = d.Strings()
	m.Passphrase = d.String()
	m.Timeout = d.duration()
}

// BackupChunk is the next piece of the backup object. Name, in the first
// chunk only, is the object's name; Read and Size tell how far the member
// has read its copy of the database, for progress reports.
type BackupChunk struct {
	Name       string
	Data       []byte
	Read, Size int64
}

func (*BackupChunk) Type() Type { return TypeBackupChunk }

func (m *BackupChunk) appendBody(b []byte) ([]byte, error) {
	b = encoding.AppendString(b, m.Name)
	b = encoding.AppendBytes(b, m.Data)
	b = encoding.AppendVarint(b, m.Read)
	return encoding.AppendVarint(b, m.Size), nil
}

func (m *BackupChunk) decodeBody(d decoder) {
	m.Name = d.String()
	if p := d.Bytes(); len(p) > 0 {
		m.Data = p
	}
	m.Read = d.Varint()
	m.Size = d.Varint()
}

// BackupDone ends a backup whose chunks all went out: the object's name,
// the Raft index and term it holds the database as of, and its size, the
// sum of the chunks' lengths.
type BackupDone struct {
	Name        string
	Index, Term uint64
	Size        int64
}

func (*BackupDone) Type() Type { return TypeBackupDone }

func (m *BackupDone) appendBody(b []byte) ([]byte, error) {
	b = encoding.AppendString(b, m.Name)
	b = encoding.AppendUvarint(b, m.Index)
	b = encoding.AppendUvarint(b, m.Term)
	return encoding.AppendVarint(b, m.Size), nil
}

func (m *BackupDone) decodeBody(d decoder) {
	m.Name = d.String()
	m.Index = d.Uvarint()
	m.Term = d.Uvarint()
	m.Size = d.Varint()
}
