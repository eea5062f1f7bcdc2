package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bi        debug.BuildInfo
		short     string
		str       string
		wantRev   string
		wantDirty bool
	}{
		{
			name: "tagged",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
				{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
				{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
				{Key: "vcs.time", Value: "2026-12-02T01:23:45Z"}, {Key: "vcs.modified", Value: "false"},
			}},
			short:   "v1.2.0",
			str:     "v1.2.0 (revision 0123456789abcdef0123456789abcdef01234567, 2026-12-02T01:23:45Z, go1.26.8 linux/arm64)",
			wantRev: "0123456789abcdef0123456789abcdef01234567",
		},
		{
			name: "devel dirty",
			bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
				{Key: "vcs.revision", Value: "fedcba9876543210fedcba9876543210fedcba98"}, {Key: "vcs.modified", Value: "true"},
			}},
			short:     "fedcba987654-dirty",
			str:       "(devel) (revision fedcba9876543210fedcba9876543210fedcba98, modified, go1.26.8 linux/amd64)",
			wantRev:   "fedcba9876543210fedcba9876543210fedcba98",
			wantDirty: true,
		},
		{
			name:  "no vcs",
			bi:    debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}},
			short: "(devel)",
			str:   "(devel) (no VCS revision, go1.26.8 linux/amd64)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := FromBuildInfo(&tc.bi)
			if b.Short() != tc.short || b.String() != tc.str || b.Revision != tc.wantRev || b.Modified != tc.wantDirty {
				t.Errorf("got %+v: Short %q, String %q; want %q, %q", b, b.Short(), b.String(), tc.short, tc.str)
			}
		})
	}
}

func TestOf(t *testing.T) {
	const mod = "github.com/grpc-gossip/gossip"
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "fedcba9876543210fedcba9876543210fedcba98"}}
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"main, tagged", debug.BuildInfo{Main: debug.Module{Path: mod, Version: "v1.2.0"}}, "v1.2.0"},
		{"main, devel", debug.BuildInfo{Main: debug.Module{Path: mod, Version: "(devel)"}, Settings: rev}, "fedcba987654"},
		{"dependency", debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}, Deps: []*debug.Module{{Path: mod, Version: "v1.3.0"}}}, "v1.3.0"},
		{"replaced", debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}, Deps: []*debug.Module{{Path: mod, Version: "v1.3.0", Replace: &debug.Module{Path: "../gossip", Version: ""}}}}, "v1.3.0"},
		{"absent", debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}}, "(unknown)"},
	} {
		if got := ofBuildInfo(&tc.bi, mod); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := Of(mod); got == "" || got == "(unknown)" {
		t.Errorf("Of(%s) in this test binary = %q", mod, got)
	}
}

// TestBuiltBinaryReportsVCS builds gossipctl as make release does, from
// a clone of this repository's HEAD, and checks that --version names that
// commit, then that an uncommitted change in the tree makes it say
// "modified". (A clone, because the go command records no VCS information
// in a git worktree, whose .git is a file, and because the work tree under
// test may itself be modified.)
func TestBuiltBinaryReportsVCS(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to check the VCS stamp: %v", err)
	}
	head := gitOut(t, moduleRoot(t), "rev-parse", "HEAD")
	clone := filepath.Join(t.TempDir(), "src")
	gitOut(t, moduleRoot(t), "clone", "-q", "--no-hardlinks", moduleRoot(t), clone)

	line := buildAndVersion(t, clone)
	if !strings.HasPrefix(line, "gossipctl version v0.0.0-") || !strings.Contains(line, "(revision "+head+", ") || strings.Contains(line, "modified") {
		t.Errorf("clean tree: gossipctl --version = %q, want gossipctl version v0.0.0-… (revision %s, …) and not modified", line, head)
	}
	if err := os.WriteFile(filepath.Join(clone, "uncommitted.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	line = buildAndVersion(t, clone)
	if !strings.Contains(line, "+dirty (revision "+head+", modified, ") {
		t.Errorf("modified tree: gossipctl --version = %q, want …+dirty (revision %s, modified, …)", line, head)
	}
}

// buildAndVersion builds gossipctl in dir as make release does and
// returns its --version line.
func buildAndVersion(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gossipctl")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=true", "-o", bin, "./cmd/gossipctl")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("gossipctl --version: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v %q", err, out)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}
