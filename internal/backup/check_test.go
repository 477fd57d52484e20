package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func encodeTest(t *testing.T, data string) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := Header{Node: "n1", Index: 7, Term: 2, Time: time.Unix(1700000000, 0).UTC()}
	if err := Encode(context.Background(), &buf, h, strings.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// CheckedStream passes a whole object on byte for byte, and fails, as
// ErrDamaged, where it is truncated or a byte changed.
func TestCheckedStream(t *testing.T) {
	obj := encodeTest(t, strings.Repeat("row text ", 10000))
	got, err := io.ReadAll(CheckedStream(iotest.OneByteReader(bytes.NewReader(obj))))
	if err != nil || !bytes.Equal(got, obj) {
		t.Fatalf("a whole object: %d of %d bytes, %v", len(got), len(obj), err)
	}
	for _, bad := range [][]byte{
		obj[:len(obj)-1],
		obj[:len(obj)/2],
		obj[:10],
		{},
		func() []byte { b := bytes.Clone(obj); b[len(b)/2] ^= 1; return b }(),
		func() []byte { b := bytes.Clone(obj); b[len(b)-1] ^= 1; return b }(),
	} {
		_, err := io.ReadAll(CheckedStream(bytes.NewReader(bad)))
		if !errors.Is(err, ErrDamaged) {
			t.Errorf("an object of %d bytes (of %d), damaged: %v, want ErrDamaged", len(bad), len(obj), err)
		}
	}
	boom := errors.New("the connection broke")
	_, err = io.ReadAll(CheckedStream(io.MultiReader(bytes.NewReader(obj[:100]), iotest.ErrReader(boom))))
	if !errors.Is(err, boom) {
		t.Errorf("a failing reader: %v, want its error", err)
	}
}
