package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/internal/testutil"
)

// Bad state under --data-dir: each kind has its own exit status and a
// message naming the file; the file is not reset.
func TestBadStateExitCodes(t *testing.T) {
	otherNode := func(t *testing.T) string {
		dir := t.TempDir()
		n, err := gossip.New("someone-else", "x", nil, nil, nil, nil, gossip.WithDataDir(dir, gossip.SyncAlways))
		if err != nil {
			t.Fatal(err)
		}
		n.Close()
		return dir
	}
	garbage := func(size int) func(t *testing.T) string {
		return func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, gossip.StateFileName), bytes.Repeat([]byte{0xAB}, size), 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		code  int
		say   string
	}{
		{"another node's", otherNode, ExitStateOtherNode, `written by node "someone-else"`},
		{"corrupt", garbage(64 << 10), ExitStateCorrupt, "corrupt"},
		{"empty", garbage(0), ExitStateCorrupt, "too short"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(t)
			path := filepath.Join(dir, gossip.StateFileName)
			before, _ := os.ReadFile(path)
			var stdout, stderr bytes.Buffer
			args := []string{"--id", "me", "--listen", "127.0.0.1:0", "--data-dir", dir}
			code := Main(context.Background(), args, nil, &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, c.code, stderr.String())
			}
			msg := stderr.String()
			if !strings.Contains(msg, path) || !strings.Contains(msg, c.say) || !strings.Contains(msg, "move the file away") && c.code == ExitStateCorrupt {
				t.Errorf("message %q does not name %s and say %q", msg, path, c.say)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("the state file was changed")
			}
		})
	}
}

// A node restarted on its data dir without --join rejoins the members its
// previous life knew.
func TestRestartRejoinsSavedMembers(t *testing.T) {
	a := runDaemon(t, testConfig("node-a"))
	cfg := testConfig("node-b", a.addr)
	cfg.DataDir = t.TempDir()
	cfg.AdminListen = ""
	b := runDaemon(t, cfg)
	testutil.WaitFor(t, waitTimeout, "b saved its members", func() error { return loggedAtLeast(b.log, "member list saved", 1) })
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	cfg.Join = nil
	cfg.Listen = b.addr // its old address: a keeps it as a member
	b2 := runDaemon(t, cfg)
	testutil.WaitFor(t, waitTimeout, "b rejoined", func() error {
		if err := loggedAtLeast(b2.log, "rejoining the members of the previous life", 1); err != nil {
			return err
		}
		for _, r := range b2.log.find("ready") {
			if r.attrs["how"] == "joined" {
				return nil
			}
		}
		return errors.New("not joined")
	})
}
