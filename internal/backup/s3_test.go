package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hiqlite/hiqlite/internal/s3test"
)

// testPartSize keeps multipart uploads small in the tests: S3's smallest
// part but the last, which versitygw enforces too.
const testPartSize = 5 << 20

const s3TestTimeout = time.Minute

// newTestS3 starts a server with the bucket "backups" and returns a store
// on prefix in it, with small parts.
func newTestS3(t *testing.T, prefix string) (*s3test.Server, *s3Store) {
	t.Helper()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	return srv, storeOn(t, srv, "backups", prefix, srv.AccessKey, srv.SecretKey)
}

func storeOn(t *testing.T, srv *s3test.Server, bucket, prefix, access, secret string) *s3Store {
	t.Helper()
	s, err := newS3Store(s3Config{
		bucket: bucket, prefix: prefix,
		host: srv.Host, region: s3test.Region, pathStyle: "true",
		creds:    credentials.NewStaticV4(access, secret, ""),
		partSize: testPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s3TestTimeout)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func names(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return out
}

// assertNoObject checks that key is neither an object, nor an incomplete
// upload, nor a file in the server's directory.
func assertNoObject(t *testing.T, srv *s3test.Server, s *s3Store, key string) {
	t.Helper()
	ctx := testCtx(t)
	if objs, err := s.List(ctx); err != nil || len(objs) != 0 {
		t.Errorf("List = %v, %v; want no objects", names(objs), err)
	}
	c := srv.Client(t)
	_, err := c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if code := minio.ToErrorResponse(err).Code; code != minio.NoSuchKey {
		t.Errorf("StatObject(%q) = %v (code %q); want NoSuchKey", key, err, code)
	}
	for up := range c.ListIncompleteUploads(ctx, s.bucket, key, true) {
		t.Errorf("an incomplete upload of %q is left (not aborted): %+v", key, up)
	}
	if srv.Exists(t, s.bucket, key) {
		t.Errorf("the server's directory holds a file for %q", key)
	}
}

func TestS3RoundTrip(t *testing.T) {
	t.Parallel()
	_, s := newTestS3(t, "cluster1/daily")
	ctx := testCtx(t)

	// Two and a half parts, so the upload has several parts and a short
	// last one; the others fit in one part.
	data := randomBytes(2*testPartSize + testPartSize/2)
	small := []byte("a small backup")
	for _, name := range []string{"b.hqb", "a.hqb", "c.hqb"} {
		content := small
		if name == "b.hqb" {
			content = data
		}
		if err := s.Put(ctx, name, bytes.NewReader(content)); err != nil {
			t.Fatalf("Put(%s): %v", name, err)
		}
	}
	objs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(objs), []string{"a.hqb", "b.hqb", "c.hqb"}; !slices.Equal(got, want) {
		t.Fatalf("List names = %v, want %v", got, want)
	}
	for _, o := range objs {
		want := int64(len(small))
		if o.Name == "b.hqb" {
			want = int64(len(data))
		}
		if o.Size != want || o.Modified.IsZero() {
			t.Errorf("List: %+v; want size %d and a modification time", o, want)
		}
	}

	rc, err := s.Open(ctx, "b.hqb")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Open read %d bytes that differ from the %d put", len(got), len(data))
	}

	if err := s.Remove(ctx, "b.hqb"); err != nil {
		t.Fatal(err)
	}
	if objs, err := s.List(ctx); err != nil || !slices.Equal(names(objs), []string{"a.hqb", "c.hqb"}) {
		t.Fatalf("List after Remove = %v, %v; want [a.hqb c.hqb]", names(objs), err)
	}
	if _, err := s.Open(ctx, "b.hqb"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Errorf("Open of a removed object: %v; want NoSuchKey wrapping fs.ErrNotExist", err)
	}
	if err := s.Remove(ctx, "b.hqb"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a removed object: %v; want fs.ErrNotExist", err)
	}

	// An empty object is an object too.
	if err := s.Put(ctx, "empty.hqb", bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	rc, err = s.Open(ctx, "empty.hqb")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || len(got) != 0 {
		t.Errorf("empty object read %d bytes, %v", len(got), err)
	}
	rc.Close()
}

func TestS3ListOnlyUnderPrefix(t *testing.T) {
	t.Parallel()
	srv, s := newTestS3(t, "hq")
	ctx := testCtx(t)
	c := srv.Client(t)
	for _, key := range []string{"top.hqb", "hqx/near.hqb", "other/hq/far.hqb", "hq/deeper/nested.hqb", "hq/.hidden"} {
		if _, err := c.PutObject(ctx, "backups", key, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "mine.hqb", strings.NewReader("mine")); err != nil {
		t.Fatal(err)
	}
	// An upload that was started and never completed, as after a crash.
	core := minio.Core{Client: c}
	if _, err := core.NewMultipartUpload(ctx, "backups", "hq/crashed.hqb", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// It is there, as an upload: what assertNoObject looks for.
	var ups int
	for up := range c.ListIncompleteUploads(ctx, "backups", "hq/crashed.hqb", true) {
		if up.Err != nil {
			t.Fatal(up.Err)
		}
		ups++
	}
	if ups != 1 {
		t.Fatalf("ListIncompleteUploads shows %d uploads of hq/crashed.hqb, want 1", ups)
	}
	objs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); !slices.Equal(got, []string{"mine.hqb"}) {
		t.Fatalf("List = %v, want only [mine.hqb]", got)
	}

	// The bucket's top as the store.
	top := storeOn(t, srv, "backups", "", srv.AccessKey, srv.SecretKey)
	if objs, err := top.List(ctx); err != nil || !slices.Equal(names(objs), []string{"top.hqb"}) {
		t.Fatalf("List of the bucket's top = %v, %v; want [top.hqb]", names(objs), err)
	}
}

// s3FailAfter serves n bytes, then fails with err.
type s3FailAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *s3FailAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestS3PutReaderFailsLeavesNothing(t *testing.T) {
	t.Parallel()
	srv, s := newTestS3(t, "p")
	boom := errors.New("the database went away")
	data := randomBytes(3 * testPartSize)
	// One part is sent, and half of the next read, before the source fails.
	r := &s3FailAfter{r: bytes.NewReader(data), n: testPartSize + testPartSize/2, err: boom}
	err := s.Put(testCtx(t), "half.hqb", r)
	if !errors.Is(err, boom) {
		t.Fatalf("Put = %v; want the reader's error", err)
	}
	if !strings.Contains(err.Error(), `"half.hqb"`) || !strings.Contains(err.Error(), "s3://backups/p") {
		t.Errorf("error does not name the store and object: %v", err)
	}
	assertNoObject(t, srv, s, "p/half.hqb")
}

// cancellingReader cancels its context once n bytes were read, and goes on
// serving bytes as if nothing happened.
type cancellingReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p[:min(len(p), max(c.n, 1))])
	c.n -= n
	return n, err
}

func TestS3PutCancelledLeavesNothing(t *testing.T) {
	t.Parallel()
	srv, s := newTestS3(t, "p")
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	data := randomBytes(3 * testPartSize)
	r := &cancellingReader{r: bytes.NewReader(data), n: testPartSize + testPartSize/2, cancel: cancel}
	err := s.Put(ctx, "cancelled.hqb", r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v; want context.Canceled", err)
	}
	assertNoObject(t, srv, s, "p/cancelled.hqb")
}

func TestS3BadCredentials(t *testing.T) {
	t.Parallel()
	srv, _ := newTestS3(t, "")
	ctx := testCtx(t)
	const wrongSecret = "not-the-secret-0123456789"
	for _, tc := range []struct {
		name, access, secret string
		codes                []string // AWS's code, and versitygw's where it differs
	}{
		{"wrong secret", srv.AccessKey, wrongSecret, []string{"SignatureDoesNotMatch"}},
		{"unknown key", "nobody-here", wrongSecret, []string{"InvalidAccessKeyId", "XAdminUserNotFound"}},
	} {
		s := storeOn(t, srv, "backups", "x", tc.access, tc.secret)
		for op, err := range map[string]error{
			"put":  s.Put(ctx, "a.hqb", strings.NewReader("data")),
			"list": func() error { _, err := s.List(ctx); return err }(),
		} {
			if err == nil {
				t.Fatalf("%s: %s succeeded", tc.name, op)
			}
			msg := err.Error()
			if !slices.ContainsFunc(tc.codes, func(c string) bool { return strings.Contains(msg, "S3 answered "+c) }) {
				t.Errorf("%s: %s error names none of %v: %s", tc.name, op, tc.codes, msg)
			}
			for _, want := range []string{"AWS_SECRET_ACCESS_KEY", `"backups"`} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: %s error lacks %q: %s", tc.name, op, want, msg)
				}
			}
			if strings.Contains(msg, wrongSecret) || strings.Contains(msg, srv.SecretKey) {
				t.Errorf("%s: %s error shows a secret: %s", tc.name, op, msg)
			}
		}
		if strings.Contains(s.String(), tc.secret) || strings.Contains(s.String(), tc.access) {
			t.Errorf("String() = %q shows a credential", s.String())
		}
	}
}

func TestS3MissingBucket(t *testing.T) {
	t.Parallel()
	srv, _ := newTestS3(t, "")
	ctx := testCtx(t)
	s := storeOn(t, srv, "no-such-bucket", "x", srv.AccessKey, srv.SecretKey)
	_, listErr := s.List(ctx)
	_, openErr := s.Open(ctx, "a.hqb")
	for op, err := range map[string]error{
		"put":  s.Put(ctx, "a.hqb", strings.NewReader("data")),
		"list": listErr,
		"open": openErr,
	} {
		if err == nil {
			t.Fatalf("%s into a missing bucket succeeded", op)
		}
		wants := []string{"NoSuchBucket", `"no-such-bucket"`, "create the bucket"}
		if op == "open" {
			// versitygw answers a GET in a missing bucket with NoSuchKey
			// (AWS with NoSuchBucket), and the error repeats what S3 said.
			wants = []string{`"no-such-bucket"`}
		}
		for _, want := range wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error lacks %q: %v", op, want, err)
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s error does not wrap fs.ErrNotExist: %v", op, err)
		}
	}
}

// TestS3OpenStoreFromEnvironment opens the store the way users do: an
// s3:// URL and the AWS environment variables.
func TestS3OpenStoreFromEnvironment(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "envbucket")
	srv.Setenv(t)
	ctx := testCtx(t)
	st, err := OpenStore(ctx, "s3://envbucket/nightly/?path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	want := "s3://envbucket/nightly?endpoint=" + srv.Endpoint + "&path_style=true"
	if st.String() != want {
		t.Errorf("String() = %q, want %q", st.String(), want)
	}
	if err := st.Put(ctx, "one.hqb", strings.NewReader("payload")); err != nil {
		t.Fatal(err)
	}
	// The ?endpoint= of the URL wins over the environment.
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
	st2, err := OpenStore(ctx, "s3://envbucket/nightly?endpoint="+srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if objs, err := st2.List(ctx); err != nil || !slices.Equal(names(objs), []string{"one.hqb"}) {
		t.Fatalf("List = %v, %v; want [one.hqb]", names(objs), err)
	}
}

func TestS3BadNames(t *testing.T) {
	s, err := newS3Store(s3Config{bucket: "b", prefix: "p", host: "127.0.0.1:1", creds: credentials.NewStaticV4("k", "s", "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"", "a/b", `a\b`, ".hidden", "..", "../x"} {
		_, openErr := s.Open(ctx, name)
		for op, err := range map[string]error{
			"put":    s.Put(ctx, name, strings.NewReader("x")),
			"open":   openErr,
			"remove": s.Remove(ctx, name),
		} {
			if err == nil || !strings.Contains(err.Error(), "object name") {
				t.Errorf("%s(%q) = %v; want the name refused", op, name, err)
			}
		}
	}
}

// crashChildEnv, set in a child process, makes TestS3PutKilledLeavesNoObject
// upload to the server it names ("host access secret") until it is killed.
const crashChildEnv = "HIQLITE_TEST_S3_CRASH_CHILD"

// midUpload is what the child prints once a part is stored and the next is
// being read: it is then in the middle of its upload.
const midUpload = "mid-upload"

// stallAfter serves random bytes; at the first read past n it prints
// midUpload and never returns.
type stallAfter struct {
	n, read int
}

func (s *stallAfter) Read(p []byte) (int, error) {
	if s.read >= s.n {
		fmt.Println(midUpload)
		select {}
	}
	p = p[:min(len(p), s.n-s.read)]
	for i := range p {
		p[i] = byte(s.read + i)
	}
	s.read += len(p)
	return len(p), nil
}

// TestS3PutKilledLeavesNoObject kills (SIGKILL) a process in the middle of
// a Put: no object appears under the name, only an incomplete upload that
// listings do not show.
func TestS3PutKilledLeavesNoObject(t *testing.T) {
	if args := os.Getenv(crashChildEnv); args != "" {
		f := strings.Fields(args)
		s, err := newS3Store(s3Config{bucket: "backups", prefix: "k", host: f[0], region: s3test.Region,
			pathStyle: "true", creds: credentials.NewStaticV4(f[1], f[2], ""), partSize: testPartSize})
		if err == nil {
			err = s.Put(context.Background(), "killed.hqb", &stallAfter{n: testPartSize})
		}
		fmt.Println("child: Put returned:", err)
		os.Exit(2)
	}
	t.Parallel()
	srv, s := newTestS3(t, "k")

	cmd := exec.Command(os.Args[0], "-test.run=^TestS3PutKilledLeavesNoObject$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+srv.Host+" "+srv.AccessKey+" "+srv.SecretKey)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{})
	var lines []string // the child's output, read by the scanner until reached or EOF
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == midUpload {
				close(reached)
				io.Copy(io.Discard, stdout)
				return
			}
			lines = append(lines, sc.Text())
		}
	}()
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	select {
	case <-reached:
	case <-scanned:
		cmd.Wait()
		killed = true
		t.Fatalf("the child ended before the middle of its upload: %q", lines)
	case <-time.After(s3TestTimeout):
		t.Fatal("the child did not reach the middle of its upload")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	ctx := testCtx(t)
	if objs, err := s.List(ctx); err != nil || len(objs) != 0 {
		t.Errorf("List = %v, %v; want no objects", names(objs), err)
	}
	c := srv.Client(t)
	if _, err := c.StatObject(ctx, "backups", "k/killed.hqb", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Errorf("StatObject = %v; want NoSuchKey", err)
	}
	if _, err := s.Open(ctx, "killed.hqb"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open = %v; want fs.ErrNotExist", err)
	}
	if srv.Exists(t, "backups", "k/killed.hqb") {
		t.Error("the server's directory holds a file for the killed upload")
	}
	// What the crash leaves: one incomplete upload, which a lifecycle rule
	// (AbortIncompleteMultipartUpload) would remove.
	var ups int
	for up := range c.ListIncompleteUploads(ctx, "backups", "k/killed.hqb", true) {
		if up.Err != nil {
			t.Fatal(up.Err)
		}
		ups++
	}
	if ups != 1 {
		t.Errorf("%d incomplete uploads of k/killed.hqb; want the killed one", ups)
	}
}
