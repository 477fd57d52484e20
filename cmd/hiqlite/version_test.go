package main

import (
	"bytes"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion runs "hiqlite version" and "hiqlite --version" in the test
// binary, whose build info names hiqlite's module as the main one, built
// without a version: "(devel)".
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out, errOut bytes.Buffer
		if code := run(testContext(t), args, strings.NewReader(""), &out, &errOut); code != exitOK {
			t.Fatalf("%v: exit %d; stderr: %s", args, code, errOut.String())
		}
		lines := strings.Split(out.String(), "\n")
		if !regexp.MustCompile(`^hiqlite (\(devel\)|v\d+\.\d+\.\d+\S*)$`).MatchString(lines[0]) {
			t.Errorf("%v: first line %q, want hiqlite and a module version", args, lines[0])
		}
		for _, want := range []string{"\nrevision  ", "\ngo        " + runtime.Version(), "\nmodule    github.com/ncruces/go-sqlite3 v"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out.String())
			}
		}
	}
}

func TestWriteVersion(t *testing.T) {
	t.Parallel()
	sqlite := &debug.Module{Path: "github.com/ncruces/go-sqlite3", Version: "v0.37.0"}
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want []string
	}{
		{
			name: "checkout",
			bi: debug.BuildInfo{
				GoVersion: "go1.99.0",
				Main:      debug.Module{Path: modulePath, Version: "v1.2.3"},
				Deps:      []*debug.Module{sqlite},
				Settings: []debug.BuildSetting{
					{Key: "vcs.revision", Value: "0123abcd"},
					{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
					{Key: "vcs.modified", Value: "true"},
				},
			},
			want: []string{
				"hiqlite v1.2.3",
				"revision  0123abcd 2026-01-02T03:04:05Z (modified)",
				"go        go1.99.0 " + runtime.GOOS + "/" + runtime.GOARCH,
				"module    github.com/ncruces/go-sqlite3 v0.37.0",
			},
		},
		{
			name: "no VCS, main module without version",
			bi:   debug.BuildInfo{GoVersion: "go1.99.0", Main: debug.Module{Path: modulePath}},
			want: []string{"hiqlite (devel)", "revision  unknown (the build recorded no VCS information)"},
		},
		{
			name: "dependency of another program",
			bi: debug.BuildInfo{
				GoVersion: "go1.99.0",
				Main:      debug.Module{Path: "example.com/app", Version: "(devel)"},
				Deps:      []*debug.Module{{Path: modulePath, Version: "v1.4.0"}},
			},
			want: []string{"hiqlite v1.4.0"},
		},
		{
			name: "replaced dependency",
			bi: debug.BuildInfo{
				GoVersion: "go1.99.0",
				Main:      debug.Module{Path: "example.com/app"},
				Deps:      []*debug.Module{{Path: modulePath, Version: "v1.4.0", Replace: &debug.Module{Path: "../hiqlite"}}},
			},
			want: []string{"hiqlite (devel: replaced by ../hiqlite)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			writeVersion(&b, &tt.bi)
			got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			for i, w := range tt.want {
				if i >= len(got) || got[i] != w {
					t.Errorf("output:\n%s\nline %d: want %q", b.String(), i, w)
				}
			}
		})
	}
}
