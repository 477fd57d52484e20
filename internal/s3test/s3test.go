// Package s3test runs a real S3 server for tests: versitygw, an S3 gateway
// whose posix backend keeps each bucket as a directory, started as a process
// on a loopback port over a fresh directory and killed when the test ends.
//
// The binary comes from HIQLITE_S3_SERVER (a path) or from versitygw on
// PATH; .ci/run installs it with
//
//	GOBIN=DIR go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Without it a test that asks for a server skips, or fails when
// HIQLITE_REQUIRE_S3=1 (as in CI).
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hiqlite/hiqlite/internal/testaddr"
	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// Region is the region the server answers for.
const Region = "us-east-1"

// startTimeout bounds how long a server may take to answer its first request.
const startTimeout = 30 * time.Second

// Server is a running S3 server with one root account.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Host      string // 127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's directory: one directory per bucket
}

// Binary returns the path of the S3 server, or skips t (fails it when
// HIQLITE_REQUIRE_S3=1) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HIQLITE_S3_SERVER"); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			t.Fatalf("HIQLITE_S3_SERVER=%q is not an executable file", p)
		}
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	msg := "this test needs an S3 server: versitygw on PATH or HIQLITE_S3_SERVER=/path/to/versitygw " +
		"(GOBIN=DIR go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)"
	if os.Getenv("HIQLITE_REQUIRE_S3") == "1" {
		t.Fatal(msg + " (HIQLITE_REQUIRE_S3=1)")
	}
	t.Skip(msg)
	return ""
}

// Start runs a server for t over a new directory and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{AccessKey: "hiqlite-test-" + randomHex(t, 4), SecretKey: randomHex(t, 20), Dir: t.TempDir()}
	// The port was free a moment ago; if the server finds it taken it
	// exits, and the next try takes another.
	var lastErr error
	for range 3 {
		s.Host = testaddr.Loopback(t)
		s.Endpoint = "http://" + s.Host
		if lastErr = s.run(t, bin); lastErr == nil {
			return s
		}
	}
	t.Fatalf("s3test: %v", lastErr)
	return nil
}

// run starts the server on s.Host and waits until it answers HTTP.
func (s *Server) run(t testing.TB, bin string) error {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(bin, "--port", s.Host, "--region", Region, "--quiet", "posix", s.Dir)
	// The secrets go by environment, not on a command line other users see.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	client := &http.Client{Timeout: time.Second}
	answered := func() bool {
		resp, err := client.Get(s.Endpoint + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true // any answer, even AccessDenied to an unsigned request
	}
	var dead bool
	ok := waitfor.Until(startTimeout, func() bool {
		select {
		case <-exited:
			dead = true
			return true
		default:
		}
		return answered()
	})
	switch {
	case dead:
		return fmt.Errorf("%s on %s exited at start (%v); its output:\n%s", bin, s.Host, waitErr, out.String())
	case !ok:
		stop()
		return fmt.Errorf("%s on %s did not answer within %v; its output:\n%s", bin, s.Host, startTimeout, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("s3test: output of the S3 server on %s:\n%s", s.Host, out.String())
		}
	})
	return nil
}

// Client returns a client of the server with the root account's keys.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("s3test: client for %s: %v", s.Endpoint, err)
	}
	return c
}

// MakeBucket creates the bucket name.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region}); err != nil {
		t.Fatalf("s3test: make bucket %q on %s: %v", name, s.Endpoint, err)
	}
}

// Setenv points the AWS environment variables (keys, region, endpoint) at
// the server for the rest of t; like t.Setenv, not for parallel tests.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":     s.AccessKey,
		"AWS_SECRET_ACCESS_KEY": s.SecretKey,
		"AWS_SESSION_TOKEN":     "",
		"AWS_REGION":            Region,
		"AWS_ENDPOINT_URL_S3":   s.Endpoint,
	} {
		t.Setenv(k, v)
	}
}

// Exists reports whether the file of an object is in the posix backend's
// directory: what a client cannot see, such as a half-written object under
// its own name, shows here.
func (s *Server) Exists(t testing.TB, bucket, key string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(s.Dir, bucket, filepath.FromSlash(key)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("s3test: %v", err)
	}
	return err == nil
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// lockedBuffer collects the server's output from its two pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
