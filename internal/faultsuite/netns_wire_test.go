//go:build ignore

// This file wires package internal/netns into the suite. It was written
// and run (partitions of every kind, in namespaces, as root) against that
// package before it was on this branch; once internal/netns is in the
// tree, delete the build constraint above ("ignore", so that go mod tidy
// does not look for the package meanwhile).

package faultsuite

import "github.com/hiqlite/hiqlite/internal/netns"

func init() {
	openNamespaces = func(prefix string, n int) (namespaces, error) {
		if err := netns.Supported(); err != nil {
			return nil, err
		}
		return netns.New(prefix, n)
	}
}
