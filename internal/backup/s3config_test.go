package backup

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		dest string
		env  map[string]string
		// want, when the URL is good
		bucket, prefix, host, region, pathStyle string
		secure                                  bool
		// wantErr, when it is not: words the error must hold
		wantErr []string
	}{
		{dest: "s3://bkt", bucket: "bkt", host: "s3.amazonaws.com", secure: true},
		{dest: "s3://bkt/a/b/", bucket: "bkt", prefix: "a/b", host: "s3.amazonaws.com", secure: true},
		{dest: "s3://bkt/p", env: map[string]string{"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "us-west-1"},
			bucket: "bkt", prefix: "p", host: "s3.amazonaws.com", secure: true, region: "eu-west-3"},
		{dest: "s3://bkt/p", env: map[string]string{"AWS_DEFAULT_REGION": "us-west-1"},
			bucket: "bkt", prefix: "p", host: "s3.amazonaws.com", secure: true, region: "us-west-1"},
		{dest: "s3://bkt/p?endpoint=http://127.0.0.1:9000&path_style=true",
			bucket: "bkt", prefix: "p", host: "127.0.0.1:9000", pathStyle: "true"},
		{dest: "s3://bkt?endpoint=minio.example:9000&path_style=0&region=here",
			bucket: "bkt", host: "minio.example:9000", secure: true, pathStyle: "false", region: "here"},
		{dest: "s3://bkt", env: map[string]string{"AWS_ENDPOINT_URL": "http://generic:1", "AWS_ENDPOINT_URL_S3": "https://s3only:2"},
			bucket: "bkt", host: "s3only:2", secure: true},
		{dest: "s3://bkt", env: map[string]string{"AWS_ENDPOINT_URL": "http://generic:1"},
			bucket: "bkt", host: "generic:1"},
		{dest: "s3://bkt?endpoint=http://url:3", env: map[string]string{"AWS_ENDPOINT_URL_S3": "https://s3only:2"},
			bucket: "bkt", host: "url:3"},

		{dest: "s3:///prefix", wantErr: []string{"no bucket"}},
		{dest: "s3://Bad_Bucket/p", wantErr: []string{`"Bad_Bucket"`}},
		{dest: "s3://bkt/a//b", wantErr: []string{"empty path segment"}},
		{dest: "s3://bkt?endpoint=ftp://h", wantErr: []string{`"ftp://h"`, "http:// or https://"}},
		{dest: "s3://bkt?endpoint=http://h/path", wantErr: []string{`"http://h/path"`, "no path"}},
		{dest: "s3://bkt?path_style=maybe", wantErr: []string{`path_style="maybe"`}},
		{dest: "s3://bkt?endpiont=http://h", wantErr: []string{`unknown parameter "endpiont"`}},
		{dest: "s3://AKIAKEY:supersecret@bkt/p", wantErr: []string{"AWS_ACCESS_KEY_ID"}},
	} {
		t.Run(tc.dest, func(t *testing.T) {
			for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
				t.Setenv(k, tc.env[k])
			}
			u, err := url.Parse(tc.dest)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseS3URL(u)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; want one with %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q: %v", w, err)
					}
				}
				if strings.Contains(err.Error(), "supersecret") {
					t.Errorf("error shows the password: %v", err)
				}
				// OpenStore gives the same error.
				if _, err2 := OpenStore(context.Background(), tc.dest); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("OpenStore error = %v, want %v", err2, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.bucket != tc.bucket || c.prefix != tc.prefix || c.host != tc.host || c.secure != tc.secure ||
				c.region != tc.region || c.pathStyle != tc.pathStyle {
				t.Errorf("got bucket %q prefix %q host %q secure %v region %q path_style %q; want %q %q %q %v %q %q",
					c.bucket, c.prefix, c.host, c.secure, c.region, c.pathStyle,
					tc.bucket, tc.prefix, tc.host, tc.secure, tc.region, tc.pathStyle)
			}
			if c.creds == nil {
				t.Error("no credentials chain")
			}
		})
	}
}
