package backup

import (
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// defaultS3Endpoint is where an s3:// destination goes when neither the URL
// nor the environment names an endpoint.
const defaultS3Endpoint = "s3.amazonaws.com"

// s3Config is everything an S3 store needs, gathered from a destination URL
// and the environment by parseS3URL, or filled in directly by tests.
type s3Config struct {
	bucket string
	prefix string // without leading or trailing "/"; "" for the bucket's top

	host   string // host[:port] of the endpoint
	secure bool   // https
	region string // "" lets the client ask the bucket's location

	// pathStyle is "" (the client decides: virtual-host style for AWS,
	// path style for other endpoints), "true" or "false".
	pathStyle string

	creds *credentials.Credentials

	// partSize is the size of each part of an upload, and so of the one
	// buffer a Put holds; 0 means s3PartSize. Tests lower it to S3's
	// smallest part, 5 MiB, to make uploads of several parts cheaply.
	partSize int64
}

// s3QueryParams are the query parameters an s3:// destination accepts.
var s3QueryParams = map[string]bool{"endpoint": true, "path_style": true, "region": true}

// parseS3URL reads an s3://bucket/prefix destination. The endpoint comes
// from ?endpoint=, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else
// AWS; the region from ?region=, else AWS_REGION, else AWS_DEFAULT_REGION;
// the credentials from the AWS environment variables, else the shared
// credentials file, else an instance or container role.
func parseS3URL(u *url.URL) (s3Config, error) {
	var c s3Config
	if u.User != nil {
		return c, fmt.Errorf("hiqlite: backup: destination %q: credentials do not belong in an s3:// URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", u.Redacted())
	}
	where := s3Display(u.Host, strings.Trim(u.Path, "/"))
	c.bucket = u.Host
	if c.bucket == "" {
		return c, fmt.Errorf("hiqlite: backup: destination %q: no bucket (want s3://bucket/prefix)", where)
	}
	if err := s3utils.CheckValidBucketNameStrict(c.bucket); err != nil {
		return c, fmt.Errorf("hiqlite: backup: destination %q: bucket name %q: %w", where, c.bucket, err)
	}
	c.prefix = strings.Trim(u.Path, "/")
	if strings.Contains(c.prefix, "//") {
		return c, fmt.Errorf("hiqlite: backup: destination %q: prefix %q has an empty path segment", where, c.prefix)
	}

	q := u.Query()
	var unknown []string
	for k := range q {
		if !s3QueryParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return c, fmt.Errorf("hiqlite: backup: destination %q: unknown parameter %q (want endpoint, path_style or region)", where, unknown[0])
	}

	endpoint := firstNonEmpty(q.Get("endpoint"), os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"))
	if endpoint == "" {
		c.host, c.secure = defaultS3Endpoint, true
	} else {
		var err error
		if c.host, c.secure, err = parseS3Endpoint(endpoint); err != nil {
			return c, fmt.Errorf("hiqlite: backup: destination %q: %w", where, err)
		}
	}
	c.region = firstNonEmpty(q.Get("region"), os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))

	if ps := q.Get("path_style"); ps != "" {
		b, err := strconv.ParseBool(ps)
		if err != nil {
			return c, fmt.Errorf("hiqlite: backup: destination %q: path_style=%q: want true or false", where, ps)
		}
		c.pathStyle = strconv.FormatBool(b)
	}

	c.creds = credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
	return c, nil
}

// parseS3Endpoint reads an endpoint: http://host[:port], https://host[:port]
// or a plain host[:port], which means https.
func parseS3Endpoint(s string) (host string, secure bool, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "https", s
	}
	switch strings.ToLower(scheme) {
	case "https":
		secure = true
	case "http":
	default:
		return "", false, fmt.Errorf("endpoint %q: scheme %q (want http:// or https://)", s, scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" || strings.ContainsAny(rest, "/?#@& ") {
		return "", false, fmt.Errorf("endpoint %q: want host[:port] after the scheme, with no path", s)
	}
	return rest, secure, nil
}

// s3Display names a bucket and prefix as an s3:// URL, for messages.
func s3Display(bucket, prefix string) string {
	if prefix == "" {
		return "s3://" + bucket
	}
	return "s3://" + bucket + "/" + prefix
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
