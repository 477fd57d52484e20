package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// modulePath is the module whose version "hiqlite version" reports.
const modulePath = "github.com/hiqlite/hiqlite"

// versionDeps are the dependencies whose versions a bug report needs: the
// SQLite build and the Raft library.
var versionDeps = []string{"github.com/ncruces/go-sqlite3", "github.com/hashicorp/raft"}

// cmdVersion prints the version of the hiqlite module this binary was
// built from, the VCS revision of the checkout it was built in (if any),
// the Go toolchain and the versions of SQLite's and Raft's modules.
func cmdVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(stdout, "hiqlite (unknown: built without module support)\n%-9s %s %s/%s\n", "go", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	writeVersion(stdout, bi)
	return nil
}

// writeVersion writes what cmdVersion prints, from bi.
func writeVersion(w io.Writer, bi *debug.BuildInfo) {
	fmt.Fprintf(w, "hiqlite %s\n", moduleVersion(findModule(bi, modulePath)))

	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	switch {
	case rev == "":
		fmt.Fprintf(w, "%-9s unknown (the build recorded no VCS information)\n", "revision")
	case at == "":
		fmt.Fprintf(w, "%-9s %s%s\n", "revision", rev, modified)
	default:
		fmt.Fprintf(w, "%-9s %s %s%s\n", "revision", rev, at, modified)
	}
	fmt.Fprintf(w, "%-9s %s %s/%s\n", "go", bi.GoVersion, runtime.GOOS, runtime.GOARCH)
	for _, path := range versionDeps {
		if m := findModule(bi, path); m != nil {
			fmt.Fprintf(w, "%-9s %s %s\n", "module", path, moduleVersion(m))
		}
	}
}

// findModule returns the module path of bi: the main module when the
// binary was built in that module, a dependency otherwise (as when a
// program that requires hiqlite builds its command). It returns nil when bi
// has no such module.
func findModule(bi *debug.BuildInfo, path string) *debug.Module {
	if bi.Main.Path == path {
		return &bi.Main
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			return m
		}
	}
	return nil
}

// moduleVersion is the version of m as the build used it: "(devel)" for a
// main module built without a version, the replacement's version or
// directory for a replaced dependency.
func moduleVersion(m *debug.Module) string {
	switch {
	case m == nil:
		return "(unknown)"
	case m.Replace != nil && m.Replace.Version != "":
		return m.Replace.Version + " (replaced by " + m.Replace.Path + ")"
	case m.Replace != nil:
		return "(devel: replaced by " + m.Replace.Path + ")"
	case m.Version == "":
		return "(devel)"
	}
	return m.Version
}
