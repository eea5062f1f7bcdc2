package cli

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/grpc-gossip/gossip/internal/daemon"
	"github.com/grpc-gossip/gossip/internal/version"
)

// allCommands are the subcommands that talk to the daemon, with valid
// arguments.
var allCommands = [][]string{
	{"publish", "x"}, {"subscribe"}, {"members"}, {"neighbors"}, {"status"}, {"health"}, {"watch"},
}

func TestDaemonNotRunning(t *testing.T) {
	addr := closedAddr(t)
	for _, cmd := range allCommands {
		for _, out := range []string{"table", "json"} {
			start := time.Now()
			r := gossipctl(t, append(cmd, "--addr", addr, "-o", out, "--timeout", "3s")...)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("%s took %v, more than --timeout", cmd[0], d)
			}
			want := "gossipctl: cannot reach gossipd at " + addr + ": connection refused\n"
			if r.code != exitFail || r.stderr != want || r.stdout != "" {
				t.Errorf("%s -o %s: exit %d, stdout %q, stderr %q; want 1, nothing and %q", cmd[0], out, r.code, r.stdout, r.stderr, want)
			}
		}
	}
}

func TestDaemonNotAnswering(t *testing.T) {
	addr := silentAddr(t)
	for _, cmd := range allCommands {
		start := time.Now()
		r := gossipctl(t, append(cmd, "--addr", addr, "--timeout", "300ms")...)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %v with --timeout 300ms", cmd[0], d)
		}
		want := "gossipctl: cannot reach gossipd at " + addr + ": no answer within 300ms\n"
		if r.code != exitFail || r.stderr != want {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", cmd[0], r.code, r.stderr, want)
		}
	}
}

func TestAddrFromEnvironment(t *testing.T) {
	n := startNode(t, "node-1")
	env := func(k string) string {
		if k == EnvAddr {
			return n.addr
		}
		return ""
	}
	r := runWith(t, context.Background(), strings.NewReader(""), env, "health")
	wantOK(t, r)

	// --addr wins over the environment.
	dead := closedAddr(t)
	r = runWith(t, context.Background(), strings.NewReader(""), env, "health", "--addr", dead)
	wantOneLineError(t, r, exitFail, "cannot reach gossipd at "+dead)

	// Without either: the default address.
	r = runWith(t, context.Background(), strings.NewReader(""), noEnv, "health", "--timeout", "1ns")
	wantOneLineError(t, r, exitFail, DefaultAddr)
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"--bogus", "status"},
		{"status", "--bogus"},
		{"status", "extra"},
		{"publish"},
		{"publish", "a", "b"},
		{"status", "-o", "yaml"},
		{"status", "--timeout", "soon"},
		{"status", "--timeout", "0s"},
		{"subscribe", "--buffer", "-1"},
		{"members", "--addr", ""},
	} {
		r := gossipctl(t, args...)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, "gossipctl: ") || !strings.Contains(r.stderr, "--help' for usage.") || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and a usage hint", args, r.code, r.stdout, r.stderr)
		}
	}
	r := gossipctl(t, "statsu")
	if want := "gossipctl: unknown command \"statsu\" (did you mean status?)\nRun 'gossipctl --help' for usage.\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	r = gossipctl(t, "publish", "--bogus", "x")
	if !strings.Contains(r.stderr, "Run 'gossipctl publish --help' for usage.") {
		t.Errorf("stderr %q; want the hint to name the subcommand", r.stderr)
	}
}

func TestHelp(t *testing.T) {
	r := gossipctl(t, "--help")
	wantOK(t, r)
	for _, c := range []string{"publish", "subscribe", "members", "neighbors", "status", "health", "watch", "--addr", "--output", "--timeout", EnvAddr} {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("help does not mention %s:\n%s", c, r.stdout)
		}
	}
	wantOK(t, gossipctl(t, "publish", "-h"))
}

// TestVersion: --version prints the build information (internal/version),
// not a hard-coded string.
func TestVersion(t *testing.T) {
	r := gossipctl(t, "--version")
	wantOK(t, r)
	if want := "gossipctl version " + version.Get().String() + "\n"; r.stdout != want {
		t.Errorf("--version printed %q, want %q", r.stdout, want)
	}
}

func TestMainUsage(t *testing.T) {
	if code := Main([]string{"bogus"}, strings.NewReader(""), io.Discard, io.Discard); code != exitUsage {
		t.Fatalf("Main(bogus) = %d, want %d", code, exitUsage)
	}
}

func TestDialReason(t *testing.T) {
	for msg, want := range map[string]string{
		`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:9001: connect: connection refused"`: "connection refused",
		`name resolver error: produced zero addresses`:                                                                    "produced zero addresses",
		`plain`: "plain",
		``:      "unavailable",
	} {
		if got := dialReason(msg); got != want {
			t.Errorf("dialReason(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0:                                 "0.0s ago",
		-time.Second:                      "0.0s ago",
		1234 * time.Millisecond:           "1.2s ago",
		3*time.Minute + 4*time.Second:     "3m4s ago",
		2*time.Hour + 5*time.Minute + 9e9: "2h5m ago",
	} {
		if got := age(now, timestamppb.New(now.Add(-d))); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
	if got := age(now, nil); got != "-" {
		t.Errorf("age(nil) = %q, want -", got)
	}
}

// TestHelpDefaultsAreTheDefaults reads the defaults gossipctl --help
// prints for the global flags and checks them against what a command
// uses when neither the flag nor the environment is given, and --addr's
// against gossipd's own --listen default (so that both tools work
// together out of the box).
func TestHelpDefaultsAreTheDefaults(t *testing.T) {
	r := gossipctl(t, "--help")
	wantOK(t, r)
	printed := map[string]string{}
	line := regexp.MustCompile(`^\s+(?:-\w, )?--([a-z-]+) \S+ .*\(default "?([^"()]*)"?\)$`)
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			printed[m[1]] = m[2]
		}
	}
	g := &globals{getenv: noEnv}
	root := newRootCmd(g)
	if err := root.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if err := g.check(root); err != nil {
		t.Fatal(err)
	}
	for flag, used := range map[string]string{"addr": g.addr, "output": g.output, "timeout": g.timeout.String()} {
		if printed[flag] != used {
			t.Errorf("--%s: help says default %q, gossipctl uses %q", flag, printed[flag], used)
		}
	}
	if printed["addr"] != daemon.DefaultListen {
		t.Errorf("--addr: help says default %q, gossipd listens on %q by default", printed["addr"], daemon.DefaultListen)
	}
	if want := "else $" + EnvAddr + ", else " + daemon.DefaultListen + "."; !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), want) {
		t.Errorf("help lacks %q:\n%s", want, r.stdout)
	}
	// The environment replaces the default, as the help says.
	g = &globals{getenv: func(k string) string {
		if k == EnvAddr {
			return "10.0.0.1:7"
		}
		return ""
	}}
	root = newRootCmd(g)
	if err := root.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if err := g.check(root); err != nil || g.addr != "10.0.0.1:7" {
		t.Errorf("with $%s: addr %q, %v", EnvAddr, g.addr, err)
	}
}
