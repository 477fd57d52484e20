package encoding

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

var errTest = errors.New("hiqlite: test format")

var values = []any{nil, int64(0), int64(-1 << 63), int64(math.MaxInt64), 0.0, math.Inf(-1), 1.5, "", "héllo ☃", []byte(nil), []byte{}, []byte{0, 0xff}}

func TestValueRoundTrip(t *testing.T) {
	var b []byte
	for _, v := range values {
		var err error
		if b, err = AppendValue(b, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, copyBlobs := range []bool{false, true} {
		d := NewDecoder(b, errTest)
		d.CopyBlobs = copyBlobs
		for i, want := range values {
			if got := d.Value(); !reflect.DeepEqual(got, want) {
				t.Errorf("value %d: got %#v, want %#v", i, got, want)
			}
		}
		d.Done()
		if d.Err() != nil {
			t.Fatal(d.Err())
		}
	}
	if _, err := AppendValue(nil, 3); err == nil || !strings.Contains(err.Error(), "int") {
		t.Errorf("an int value: %v, want an error naming the type", err)
	}
}

// The value tags are protocol: their numbers never change.
func TestValueTags(t *testing.T) {
	for v, tag := range map[any]byte{nil: TagNull, int64(1): TagInt, 1.0: TagFloat, "x": TagText} {
		if b, _ := AppendValue(nil, v); b[0] != tag {
			t.Errorf("%#v: tag %d, want %d", v, b[0], tag)
		}
	}
	if b, _ := AppendValue(nil, []byte{1}); b[0] != 4 || TagBlob != 4 {
		t.Errorf("blob tag %d", b[0])
	}
	if b, _ := AppendValue(nil, []byte(nil)); b[0] != 5 || TagNilBlob != 5 {
		t.Errorf("nil blob tag %d", b[0])
	}
}

// A decoder keeps its first error, which wraps the format's sentinel and
// says at which byte it failed.
func TestDecoderFirstErrorAndOffset(t *testing.T) {
	d := NewDecoder([]byte{1, 2, 0xff}, errTest)
	d.Byte()
	d.Byte()
	d.Uvarint() // 0xff: a truncated uvarint at byte 2
	d.Fail("later")
	err := d.Err()
	if !errors.Is(err, errTest) || !strings.Contains(err.Error(), "bad uvarint at byte 2") {
		t.Fatalf("err = %v, want the first error at byte 2", err)
	}
	if d.Byte() != 0 || d.String() != "" || d.Value() != nil {
		t.Fatal("reads after an error must return zero values")
	}
}

// A count or length larger than the input left fails before anything is
// allocated for it.
func TestDecoderBoundsCounts(t *testing.T) {
	huge := AppendUvarint(nil, 1<<62)
	for name, read := range map[string]func(*Decoder){
		"count":   func(d *Decoder) { d.Count(1) },
		"bytes":   func(d *Decoder) { d.Bytes() },
		"strings": func(d *Decoder) { d.Strings() },
	} {
		d := NewDecoder(append(huge, 1, 2, 3), errTest)
		read(d)
		if !errors.Is(d.Err(), errTest) || !strings.Contains(d.Err().Error(), "exceeds the input") {
			t.Errorf("%s: %v", name, d.Err())
		}
	}
	d := NewDecoder(append(AppendUvarint(nil, 2), 0, 0, 0, 0, 0), errTest)
	if n := d.Count(3); d.Err() == nil {
		t.Errorf("2 items of 3 bytes in 5 bytes: %d, no error", n)
	}
	// Nothing in proportion to the count it claims: the bytes allocated,
	// not the number of allocations (the race detector adds some).
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		NewDecoder(append(huge, 1), errTest).Strings()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 64<<10 {
		t.Errorf("%d bytes allocated per decode of a hostile count", per)
	}
}

func TestVersion(t *testing.T) {
	for _, c := range []struct {
		b       byte
		want    byte
		newer   bool
		corrupt bool
	}{{1, 1, false, false}, {2, 2, false, false}, {3, 0, true, false}, {0, 0, false, true}} {
		d := NewDecoder([]byte{c.b}, errTest)
		got := d.Version("test format", 2)
		var ve *VersionError
		if got != c.want || errors.As(d.Err(), &ve) != c.newer || errors.Is(d.Err(), errTest) != c.corrupt {
			t.Errorf("version %d: got %d, %v", c.b, got, d.Err())
		}
		if c.newer && (ve.Version != c.b || ve.Known != 2 || !errors.Is(d.Err(), ErrUnknownVersion) || !strings.Contains(ve.Error(), "test format")) {
			t.Errorf("version %d: %+v", c.b, ve)
		}
	}
}

// Primitives keep their bytes: these are what every golden file is made of.
func TestPrimitiveBytes(t *testing.T) {
	var b []byte
	b = AppendUvarint(b, 300)
	b = AppendVarint(b, -2)
	b = AppendBool(b, true)
	b = AppendFloat64(b, 1)
	b = AppendString(b, "ab")
	b = AppendStrings(b, []string{"c"})
	want := []byte{0xac, 0x02, 0x03, 1, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 2, 'a', 'b', 1, 1, 'c'}
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x\nwant %x", b, want)
	}
	d := NewDecoder(b, errTest)
	if d.Uvarint() != 300 || d.Varint() != -2 || !d.Bool() || d.Float64() != 1 || d.String() != "ab" || !reflect.DeepEqual(d.Strings(), []string{"c"}) {
		t.Fatal("primitives do not round-trip")
	}
	d.Done()
	if d.Err() != nil {
		t.Fatal(d.Err())
	}
}

// FuzzDecoder: any input read as any sequence of fields never panics, never
// reads past its end, and allocates no more than the input holds.
func FuzzDecoder(f *testing.F) {
	b, _ := AppendValue(nil, "x")
	f.Add(b, []byte{0, 1, 2})
	f.Add(AppendUvarint(nil, 1<<40), []byte{5, 6, 7})
	f.Fuzz(func(t *testing.T, data, ops []byte) {
		d := NewDecoder(data, errTest)
		for _, op := range ops {
			before := d.Len()
			switch op % 10 {
			case 0:
				d.Byte()
			case 1:
				d.Bool()
			case 2:
				d.Uvarint()
			case 3:
				d.Varint()
			case 4:
				d.Float64()
			case 5:
				if n := d.Count(1); n > before {
					t.Fatalf("count %d from %d bytes", n, before)
				}
			case 6:
				if v := d.Bytes(); len(v) > before {
					t.Fatalf("%d bytes from %d", len(v), before)
				}
			case 7:
				_ = d.String()
			case 8:
				if ss := d.Strings(); len(ss) > before {
					t.Fatalf("%d strings from %d bytes", len(ss), before)
				}
			case 9:
				d.Value()
			}
			if d.Len() > before || d.Offset() > len(data) {
				t.Fatalf("offset went wrong: %d left, %d read of %d", d.Len(), d.Offset(), len(data))
			}
		}
	})
}

// FuzzValue: every value that decodes encodes to bytes that decode to it
// (compared as bytes: NaN is not equal to itself; and varints may have
// been padded in the input).
func FuzzValue(f *testing.F) {
	for _, v := range values {
		b, _ := AppendValue(nil, v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(data, errTest)
		v := d.Value()
		if d.Err() != nil {
			return
		}
		b, err := AppendValue(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		d2 := NewDecoder(b, errTest)
		v2 := d2.Value()
		d2.Done()
		b2, _ := AppendValue(nil, v2)
		if d2.Err() != nil || !bytes.Equal(b, b2) || reflect.TypeOf(v) != reflect.TypeOf(v2) {
			t.Fatalf("%#v encodes to %x, which decodes to %#v (%v)", v, b, v2, d2.Err())
		}
	})
}
