package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite/internal/encoding"
	"github.com/hiqlite/hiqlite/internal/golden"
)

func goldenHeader() Header {
	return Header{
		Node:       "n1",
		Index:      1234,
		Term:       5,
		Time:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		SchemaHash: sha256.Sum256([]byte("CREATE TABLE t(x)\x00")),
		Encrypted:  true,
	}
}

// The start of a backup object is pinned; the body's bytes depend on the
// compressor and on age's random keys, so it is checked by decoding.
func TestGoldenBackupHeader(t *testing.T) {
	h := goldenHeader()
	b := AppendHeader(nil, h)
	want := golden.Bytes(t, "backup_v1_header", `Backup object, version 1: "HIQLBKUP", version byte, header length, header:
no cluster id, node n1, Raft index 1234, term 5, 2026-01-02T03:04:05Z,
schema hash sha256("CREATE TABLE t(x)\0"), flags: encrypted; the age-encrypted
zstd body and the SHA-256 trailer follow`, b)
	if !bytes.Equal(b, want) {
		t.Fatalf("header changed:\n got %x\nwant %x", b, want)
	}
	got, err := ReadHeader(bytes.NewReader(want))
	if err != nil || got != h {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, h)
	}
	// A newer version is refused as such, never guessed at.
	newer := bytes.Clone(want)
	newer[len(magic)] = formatVersion + 1
	var ve *encoding.VersionError
	if _, err := Decode(context.Background(), bytes.NewReader(newer), nil, io.Discard); !errors.As(err, &ve) || !errors.Is(err, encoding.ErrUnknownVersion) {
		t.Fatalf("a newer version: %v, want a VersionError", err)
	}
}

// testBody is a database-like body: compressible text with a distinctive
// row in it.
func testBody(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	marked := false
	for b.Len() < n {
		b.WriteString("row ")
		b.WriteString(strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(40)))
		if b.Len() > n/2 && !marked {
			b.WriteString(secretRow)
			marked = true
		}
	}
	return b.Bytes()
}

const secretRow = "zebra-quartz-plaintext-marker-7761"

func encodeObject(t *testing.T, body []byte, recipients []age.Recipient) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Encode(context.Background(), &out, goldenHeader(), bytes.NewReader(body), recipients); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestRoundTrip(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	body := testBody(3 << 20)
	for _, tc := range []struct {
		name string
		rs   []age.Recipient
		ids  []age.Identity
	}{
		{"plain", nil, nil},
		{"x25519", []age.Recipient{id.Recipient()}, []age.Identity{id}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := encodeObject(t, body, tc.rs)
			if len(obj) >= len(body)/2 {
				t.Errorf("object of %d bytes for a body of %d: not compressed", len(obj), len(body))
			}
			if enc := len(tc.rs) > 0; enc && bytes.Contains(obj, []byte(secretRow)) {
				t.Errorf("the encrypted object holds the row text")
			}
			var out bytes.Buffer
			h, err := Decode(context.Background(), bytes.NewReader(obj), tc.ids, &out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), body) {
				t.Fatalf("decoded %d bytes, want the %d written", out.Len(), len(body))
			}
			if h.Encrypted != (len(tc.rs) > 0) || h.Index != 1234 || h.Node != "n1" {
				t.Fatalf("header %+v", h)
			}
		})
	}
}

func TestPassphrase(t *testing.T) {
	r, err := age.NewScryptRecipient("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10) // cheap for the test
	obj := encodeObject(t, testBody(1<<16), []age.Recipient{r})
	good, _ := age.NewScryptIdentity("correct horse")
	if _, err := Decode(context.Background(), bytes.NewReader(obj), []age.Identity{good}, io.Discard); err != nil {
		t.Fatalf("right passphrase: %v", err)
	}
	bad, _ := age.NewScryptIdentity("wrong horse")
	if _, err := Decode(context.Background(), bytes.NewReader(obj), []age.Identity{bad}, io.Discard); !errors.Is(err, ErrKey) {
		t.Fatalf("wrong passphrase: %v, want ErrKey", err)
	}
}

// Every bad input is refused with an error that says what is wrong.
func TestBadObjects(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	body := testBody(256 << 10)
	enc := encodeObject(t, body, []age.Recipient{id.Recipient()})
	plain := encodeObject(t, body, nil)
	headerLen := len(AppendHeader(nil, goldenHeader()))
	decode := func(obj []byte, ids ...age.Identity) error {
		_, err := Decode(context.Background(), bytes.NewReader(obj), ids, io.Discard)
		return err
	}
	if err := decode(enc, other); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "wrong identity") {
		t.Errorf("wrong key: %v", err)
	}
	if err := decode(enc); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("no key: %v", err)
	}
	if err := decode([]byte("SQLite format 3\x00 and more bytes than a header")); !errors.Is(err, ErrNotBackup) {
		t.Errorf("not a backup: %v", err)
	}
	for _, obj := range []struct {
		name string
		b    []byte
		ids  []age.Identity
	}{{"encrypted", enc, []age.Identity{id}}, {"plain", plain, nil}} {
		for _, cut := range []int{len(obj.b) - 1, len(obj.b) - trailerSize, len(obj.b) - trailerSize - 1, len(obj.b) / 2, headerLen + 3, headerLen - 1, len(magic) + 2} {
			if err := decode(obj.b[:cut], obj.ids...); !errors.Is(err, ErrDamaged) {
				t.Errorf("%s truncated to %d of %d bytes: %v, want ErrDamaged", obj.name, cut, len(obj.b), err)
			}
		}
		for _, at := range []int{len(magic) + 3, headerLen - 1, headerLen + 10, len(obj.b) / 2, len(obj.b) - trailerSize - 1, len(obj.b) - trailerSize, len(obj.b) - 1} {
			b := bytes.Clone(obj.b)
			b[at] ^= 0x20
			err := decode(b, obj.ids...)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "checksum") {
				t.Errorf("%s with byte %d of %d flipped: %v, want ErrDamaged naming the checksum", obj.name, at, len(b), err)
			}
		}
	}
	b := bytes.Clone(plain)
	b[0] ^= 0x20
	if err := decode(b); !errors.Is(err, ErrNotBackup) {
		t.Errorf("magic flipped: %v, want ErrNotBackup", err)
	}
}

// FuzzDecode: no input makes Decode panic or allocate beyond its bounds;
// whatever it accepts has a trailer that matches.
func FuzzDecode(f *testing.F) {
	f.Add(AppendHeader(nil, goldenHeader()))
	var plain bytes.Buffer
	h := goldenHeader()
	if err := Encode(context.Background(), &plain, h, strings.NewReader("database"), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(plain.Bytes())
	f.Add([]byte(magic + "\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		if _, err := Decode(context.Background(), bytes.NewReader(b), nil, &out); err == nil {
			sum := sha256.Sum256(b[:len(b)-trailerSize])
			if !bytes.Equal(sum[:], b[len(b)-trailerSize:]) {
				t.Fatal("accepted an object whose trailer does not match")
			}
		}
	})
}

// TestPlainWithIdentity: a plain object read with an identity is refused,
// as one put in place of an encrypted backup may be; without the identity
// it reads.
func TestPlainWithIdentity(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	obj := encodeObject(t, testBody(64<<10), nil)
	if _, err := Decode(context.Background(), bytes.NewReader(obj), []age.Identity{id}, io.Discard); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("a plain backup read with an identity: %v, want ErrKey saying it is not encrypted", err)
	}
	if _, err := Decode(context.Background(), bytes.NewReader(obj), nil, io.Discard); err != nil {
		t.Fatalf("the plain backup without an identity: %v", err)
	}
}
