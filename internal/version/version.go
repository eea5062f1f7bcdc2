// Package version reports what a gossipd or gossipctl binary was built
// from, read from the build information the Go toolchain embeds
// (runtime/debug.ReadBuildInfo): the main module's version, the VCS
// revision and whether the work tree had uncommitted changes. Nothing is
// hard-coded or stamped with -ldflags: `go build`, `go install` and
// `make release` all record it (go build needs -buildvcs, the default, and
// a git work tree for the revision).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Build is what a binary was built from. Empty fields are unknown.
type Build struct {
	// Module is the main module's version: a tag such as v1.2.0, a
	// pseudo-version (v0.0.0-20261202012345-0123456789ab, with +dirty when
	// modified) derived by the go command from the VCS, or "(devel)" when
	// it could not tell.
	Module string
	// Revision is the VCS revision (vcs.revision), a full commit hash.
	Revision string
	// Time is the commit time of Revision (vcs.time), RFC 3339.
	Time string
	// Modified reports whether the work tree had uncommitted changes
	// (vcs.modified=true).
	Modified bool
	// Go is the toolchain that built the binary, e.g. go1.26.8.
	Go string
	// Platform is GOOS/GOARCH of the binary.
	Platform string
}

// Get returns the running binary's Build. Without build information
// (a binary built without module support) Module is "(unknown)".
func Get() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{Module: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo extracts a Build from bi.
func FromBuildInfo(bi *debug.BuildInfo) Build {
	b := Build{Module: bi.Main.Version, Go: bi.GoVersion}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if b.Module == "" {
		b.Module = "(devel)"
	}
	if goos == "" || goarch == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	b.Platform = goos + "/" + goarch
	return b
}

// Short is the version alone: Module, or, for a "(devel)" build, the
// first 12 characters of Revision (with "-dirty" when modified), so that a
// build is always told apart from another.
func (b Build) Short() string {
	if b.Module != "(devel)" || b.Revision == "" {
		return b.Module
	}
	s := b.Revision[:min(12, len(b.Revision))]
	if b.Modified {
		s += "-dirty"
	}
	return s
}

// String is the one line that --version prints after the program name:
//
//	v0.0.0-20261202012345-0123456789ab+dirty (revision 0123456789abcdef…, modified, 2026-12-02T01:23:45Z, go1.26.8 linux/amd64)
func (b Build) String() string {
	var parts []string
	if b.Revision != "" {
		rev := "revision " + b.Revision
		if b.Modified {
			rev += ", modified"
		}
		parts = append(parts, rev)
	} else {
		parts = append(parts, "no VCS revision")
	}
	if b.Time != "" {
		parts = append(parts, b.Time)
	}
	parts = append(parts, strings.TrimSpace(b.Go+" "+b.Platform))
	return fmt.Sprintf("%s (%s)", b.Module, strings.Join(parts, ", "))
}

// Of is the version of the module at path in the running binary: Short()
// when it is the main module, the dependency's version (its replacement's,
// if replaced) when it is a dependency, "(unknown)" otherwise.
func Of(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	return ofBuildInfo(bi, path)
}

func ofBuildInfo(bi *debug.BuildInfo, path string) string {
	if bi.Main.Path == path {
		return FromBuildInfo(bi).Short()
	}
	for _, d := range bi.Deps {
		if d.Path != path {
			continue
		}
		if d.Replace != nil && d.Replace.Version != "" {
			return d.Replace.Version
		}
		if d.Version != "" {
			return d.Version
		}
		return "(devel)"
	}
	return "(unknown)"
}
