package backup

import (
	"io"
	"runtime"
	"testing"
)

// liveHeapReader serves n zero bytes and, at every MiB it serves, collects
// garbage and records the live heap: what Put holds while it uploads.
type liveHeapReader struct {
	n, read int
	maxLive uint64
}

func (z *liveHeapReader) Read(p []byte) (int, error) {
	const step = 1 << 20
	if z.read%step == 0 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		z.maxLive = max(z.maxLive, m.HeapAlloc)
	}
	if z.read >= z.n {
		return 0, io.EOF
	}
	p = p[:min(len(p), z.n-z.read, step-z.read%step)]
	clear(p)
	z.read += len(p)
	return len(p), nil
}

// TestS3PutMemoryBounded uploads eight parts' worth through Put and checks
// that the live heap never grows by more than two parts: Put holds one part
// at a time, whatever the size of the object. Not parallel, so that no
// other test's allocations count.
func TestS3PutMemoryBounded(t *testing.T) {
	_, s := newTestS3(t, "m")
	const parts = 8
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := &liveHeapReader{n: parts * testPartSize}
	if err := s.Put(testCtx(t), "big.hqb", r); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(testCtx(t))
	if err != nil || len(objs) != 1 || objs[0].Size != parts*testPartSize {
		t.Fatalf("List = %+v, %v; want one object of %d bytes", objs, err, parts*testPartSize)
	}
	grew := int64(r.maxLive) - int64(before.HeapAlloc)
	t.Logf("a %d MiB upload in %d MiB parts grew the live heap by at most %.1f MiB",
		parts*testPartSize>>20, testPartSize>>20, float64(grew)/(1<<20))
	if grew > 2*testPartSize {
		t.Fatalf("the live heap grew by %d bytes during a Put of %d parts of %d: more than two parts", grew, parts, testPartSize)
	}
}
