package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
)

func init() { schemes["s3"] = openS3 }

// s3PartSize is the part size of an upload to S3. A Put holds one part in
// memory at a time, so this bounds its memory; with S3's limit of 10,000
// parts it also bounds a backup to about 156 GiB.
const s3PartSize = 16 << 20

// s3Store keeps backups as objects named prefix/name in one bucket of an
// S3-compatible object store. It holds no state besides its client, which is
// safe for concurrent use, so neither is the store.
//
// # Atomic visibility
//
// Put streams an object of unknown length, which minio-go sends as a
// multipart upload: CreateMultipartUpload, one UploadPart per s3PartSize
// bytes read, then CompleteMultipartUpload. S3 makes an object visible only
// when its upload is completed, so until then there is no object under the
// name, and an upload that fails (the reader's error, a cancelled ctx, a
// refused part) is aborted by minio-go, which deletes its parts, on a
// context of its own that the caller's cancellation does not end. A crash
// of the process leaves an incomplete upload that no listing shows; S3
// charges for its parts until a lifecycle rule
// (AbortIncompleteMultipartUpload) removes them.
//
// The other way, a PUT under a temporary name then CopyObject and
// RemoveObject, was not chosen: a crash leaves a visible temporary object
// that List must hide by its name, CopyObject stores every byte a second
// time and cannot copy more than 5 GiB in one request, and a single PUT of
// unknown length needs the whole object in memory or on disk first.
type s3Store struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or without a leading or trailing "/"
	partSize int64
	display  string // String(): a destination without credentials
}

var _ Store = (*s3Store)(nil)

func openS3(_ context.Context, u *url.URL) (Store, error) {
	c, err := parseS3URL(u)
	if err != nil {
		return nil, err
	}
	return newS3Store(c)
}

// newS3Store makes the client for c. It sends nothing: a missing bucket or
// wrong credentials show on the first call.
func newS3Store(c s3Config) (*s3Store, error) {
	opts := &minio.Options{Creds: c.creds, Secure: c.secure, Region: c.region}
	switch c.pathStyle {
	case "true":
		opts.BucketLookup = minio.BucketLookupPath
	case "false":
		opts.BucketLookup = minio.BucketLookupDNS
	}
	display := s3Display(c.bucket, c.prefix)
	client, err := minio.New(c.host, opts)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: backup: %s: endpoint %q: %w", display, c.host, err)
	}
	// String() is a destination OpenStore accepts, so that a message can
	// be copied into a command line.
	var params []string
	if c.host != defaultS3Endpoint {
		scheme := "https://"
		if !c.secure {
			scheme = "http://"
		}
		params = append(params, "endpoint="+scheme+c.host)
	}
	if c.pathStyle != "" {
		params = append(params, "path_style="+c.pathStyle)
	}
	if len(params) > 0 {
		display += "?" + strings.Join(params, "&")
	}
	partSize := c.partSize
	if partSize == 0 {
		partSize = s3PartSize
	}
	return &s3Store{client: client, bucket: c.bucket, prefix: c.prefix, partSize: partSize, display: display}, nil
}

func (s *s3Store) String() string { return s.display }

// key is the object key of the backup name. Names follow the directory
// store's rule, a plain file name not starting with a dot, so that a backup
// can move between the two.
func (s *s3Store) key(op, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("hiqlite: backup: %s: %s: object name %q: want a plain file name, not starting with a dot", s, op, name)
	}
	if s.prefix == "" {
		return name, nil
	}
	return s.prefix + "/" + name, nil
}

// Put uploads r as name; see "Atomic visibility" on s3Store.
func (s *s3Store) Put(ctx context.Context, name string, r io.Reader) error {
	key, err := s.key("put", name)
	if err != nil {
		return err
	}
	// Sequential parts (no ConcurrentStreamParts): one buffer of partSize.
	opts := minio.PutObjectOptions{PartSize: uint64(s.partSize), ContentType: "application/octet-stream"}
	if _, err := s.client.PutObject(ctx, s.bucket, key, &uploadReader{ctx: ctx, r: r}, -1, opts); err != nil {
		return s.opErr("put", name, key, err)
	}
	return nil
}

// uploadReader fails its reads once ctx is done, so that a cancelled Put stops
// reading its source at once rather than at the next part's request.
type uploadReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *uploadReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open streams the object name. It asks for the object before returning, so
// that a missing object or a refusal shows here rather than at the first
// Read; the error then wraps fs.ErrNotExist when there is no such object.
// The object streams over the one response, which ctx governs: it must stay
// live until the reader is closed.
func (s *s3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	key, err := s.key("open", name)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.opErr("open", name, key, err)
	}
	if _, err := obj.Stat(); err != nil { // sends the GET; the body is read as it streams
		obj.Close()
		return nil, s.opErr("open", name, key, err)
	}
	return &s3Reader{obj: obj, s: s, name: name, key: key}, nil
}

// s3Reader names the store and object in the errors of a read.
type s3Reader struct {
	obj       *minio.Object
	s         *s3Store
	name, key string
}

func (r *s3Reader) Read(p []byte) (int, error) {
	n, err := r.obj.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.opErr("read", r.name, r.key, err)
	}
	return n, err
}

func (r *s3Reader) Close() error { return r.obj.Close() }

// List returns the objects directly under the prefix, by name. Incomplete
// uploads are not objects, so they never show; neither do deeper keys
// (prefix/a/b), keys outside the prefix, nor names starting with a dot
// (which Put refuses, as the directory store does).
func (s *s3Store) List(ctx context.Context) ([]Object, error) {
	under := ""
	if s.prefix != "" {
		under = s.prefix + "/"
	}
	var out []Object
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: under}) {
		if info.Err != nil {
			return nil, s.opErr("list", "", under, info.Err)
		}
		name, ok := strings.CutPrefix(info.Key, under)
		if !ok || name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
			continue // a "directory" (common prefix), or a name Put does not write
		}
		out = append(out, Object{Name: name, Size: info.Size, Modified: info.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes the object name. S3 answers a delete of a missing key with
// success, so Remove asks first, to report a name that is not there as a
// directory would (wrapping fs.ErrNotExist).
func (s *s3Store) Remove(ctx context.Context, name string) error {
	key, err := s.key("remove", name)
	if err != nil {
		return err
	}
	if _, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err != nil {
		return s.opErr("remove", name, key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return s.opErr("remove", name, key, err)
	}
	return nil
}

// s3Error is an S3 store's error: a message naming the store, the object
// and what S3 answered, wrapping the client's error (a minio.ErrorResponse
// when S3 answered) and fs.ErrNotExist for a missing object or bucket.
type s3Error struct {
	msg  string
	errs []error
}

func (e *s3Error) Error() string   { return e.msg }
func (e *s3Error) Unwrap() []error { return e.errs }

// opErr describes err, from the operation op on the object name (key).
func (s *s3Store) opErr(op, name, key string, err error) error {
	what := fmt.Sprintf("hiqlite: backup: %s: %s %q (bucket %q, key %q)", s, op, name, s.bucket, key)
	if name == "" {
		what = fmt.Sprintf("hiqlite: backup: %s: %s (bucket %q, prefix %q)", s, op, s.bucket, key)
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) || resp.Code == "" {
		return &s3Error{msg: what + ": " + err.Error(), errs: []error{err}}
	}
	msg := fmt.Sprintf("%s: S3 answered %s", what, resp.Code)
	if resp.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
	}
	if resp.Message != "" {
		msg += ": " + strings.TrimSuffix(resp.Message, ".")
	}
	errs := []error{err}
	switch resp.Code {
	case minio.NoSuchKey, "NotFound":
		errs = append(errs, fs.ErrNotExist)
	case minio.NoSuchBucket:
		msg += "; create the bucket or fix its name"
		errs = append(errs, fs.ErrNotExist)
	case minio.AccessDenied, minio.InvalidAccessKeyID, minio.SignatureDoesNotMatch, "InvalidToken", "ExpiredToken",
		"XAdminUserNotFound": // versitygw's answer to an unknown access key
		msg += "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and that they may use this bucket"
	case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
		msg += "; check AWS_REGION and the endpoint"
	}
	return &s3Error{msg: msg, errs: errs}
}
