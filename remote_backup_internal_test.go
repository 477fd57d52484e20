package hiqlite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/wire"
)

// fakeMember answers one ClientBackup, on a loopback TCP connection, with
// the frames answer writes; then, unless hangUp, it reads what else comes
// (a ClientCancel) until the client closes. It returns the client's side.
func fakeMember(t *testing.T, hangUp bool, answer func(w *bufio.Writer)) *remoteConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		member, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer member.Close()
		r, w := bufio.NewReader(member), bufio.NewWriter(member)
		if m, err := wire.ReadMessage(r); err != nil || m.Type() != wire.TypeClientBackup {
			t.Errorf("the member read %v, %v; want a ClientBackup", m, err)
			return
		}
		answer(w)
		w.Flush()
		for !hangUp {
			if _, err := wire.ReadMessage(r); err != nil {
				return
			}
		}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		<-done
	})
	return &remoteConn{rc: &RemoteConnector{}, nc: client, r: bufio.NewReader(client), w: bufio.NewWriter(client)}
}

// noise is n bytes that do not compress, the same each run.
func noise(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testObject is a whole backup object and its name.
func testObject(t *testing.T) (string, []byte) {
	t.Helper()
	h := backup.Header{Node: "n1", Index: 9, Term: 1, Time: time.Unix(1700000000, 0).UTC()}
	var buf bytes.Buffer
	if err := backup.Encode(context.Background(), &buf, h, bytes.NewReader(noise(64<<10)), nil); err != nil {
		t.Fatal(err)
	}
	return backup.ObjectName(h), buf.Bytes()
}

// What a member sends is checked before the client's store keeps it: a
// byte changed in transit, a short object, a name that is not a backup's
// all fail and leave nothing; a whole object is kept byte for byte.
func TestRemoteBackupChecksTransfer(t *testing.T) {
	name, obj := testObject(t)
	send := func(w *bufio.Writer, name string, obj []byte, size int64) {
		for i := 0; i < len(obj); i += 1000 {
			m := &wire.BackupChunk{Data: obj[i:min(i+1000, len(obj))]}
			if i == 0 {
				m.Name = name
			}
			wire.WriteMessage(w, m)
		}
		wire.WriteMessage(w, &wire.BackupDone{Name: name, Index: 9, Term: 1, Size: size})
	}
	flipped := bytes.Clone(obj)
	flipped[len(flipped)/2] ^= 0x10
	for _, tc := range []struct {
		what   string
		answer func(w *bufio.Writer)
		want   string
	}{
		{"a byte changed", func(w *bufio.Writer) { send(w, name, flipped, int64(len(flipped))) }, "checksum does not match"},
		{"the object cut short", func(w *bufio.Writer) { send(w, name, obj[:len(obj)-40], int64(len(obj)-40)) }, "backup damaged"},
		{"a size that differs", func(w *bufio.Writer) { send(w, name, obj, int64(len(obj)+1)) }, "but ends"},
		{"a path for a name", func(w *bufio.Writer) { send(w, "../"+name, obj, int64(len(obj))) }, "not a backup's name"},
		{"the member's error", func(w *bufio.Writer) {
			wire.WriteMessage(w, &wire.BackupChunk{Name: name, Data: obj[:100]})
			wire.WriteMessage(w, &wire.ErrorResponse{Err: errors.New("disk full on the member")})
		}, "disk full on the member"},
		{"the member gone", func(w *bufio.Writer) {
			wire.WriteMessage(w, &wire.BackupChunk{Name: name, Data: obj[:100]})
			w.Flush()
		}, "the session with the member broke"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			c := fakeMember(t, tc.what == "the member gone", tc.answer)
			dir := t.TempDir()
			_, err := c.backup(context.Background(), &wire.ClientBackup{}, backup.NewDirStore(dir), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the destination holds %v after a failed transfer", entries)
			}
		})
	}

	dir := t.TempDir()
	c := fakeMember(t, false, func(w *bufio.Writer) { send(w, name, obj, int64(len(obj))) })
	info, err := c.backup(context.Background(), &wire.ClientBackup{}, backup.NewDirStore(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dir + "/" + name)
	if err != nil || !bytes.Equal(got, obj) || info.Size != int64(len(obj)) || info.Index != 9 || c.bad {
		t.Fatalf("a whole object: %d of %d bytes, %v, info %+v, session bad %v", len(got), len(obj), err, info, c.bad)
	}
}
