package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

// TestTLSRollingEnable turns mutual TLS on in a running 3-node cluster
// without a split, with real processes: from plaintext, each node in turn
// is restarted with --tls-transition, then each in turn without it (TLS
// required). After every single restart the three nodes list each other
// alive and a message published on one is delivered by all three; at the
// end plaintext clients are refused.
func TestTLSRollingEnable(t *testing.T) {
	dir := t.TempDir()
	mkPKI(t, dir, []string{"n1", "n2", "n3"}, nil)
	f := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(f("tokens"), []byte("tok-roll\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fast := []string{"--probe-interval", "200ms", "--probe-timeout", "100ms", "--suspicion-mult", "3"}
	// Each node keeps its state across its restarts, so that a restarted
	// node delivers exactly what it missed while down (a node without
	// state would be a new node, which delivers only what is published
	// after it starts).
	dataDir := func(id string) []string { return []string{"--data-dir", filepath.Join(dir, "data-"+id)} }
	tlsFlags := func(id string) []string {
		return []string{"--tls-cert", f("node-" + id + ".pem"), "--tls-key", f("node-" + id + "-key.pem"), "--tls-ca", f("gossip-ca.pem"), "--auth-token-file", f("tokens")}
	}
	type node struct {
		*daemon
		required bool // TLS required: gossipctl needs credentials
	}
	creds := func(n *node) []string {
		if n.required {
			return []string{"--tls-ca", f("gossip-ca.pem"), "--token", "tok-roll"}
		}
		return nil
	}
	nodes := make([]*node, 3)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		args := append(append([]string(nil), fast...), dataDir(id)...)
		if i > 0 {
			args = append(args, "--join", nodes[0].addr)
		}
		nodes[i] = &node{daemon: startDaemon(t, id, args...)}
	}
	// Every node delivers every message published so far exactly once,
	// over all its lives: one that was restarted gets what it missed by
	// repair (anti-entropy), so the head of its delivery log (offsets are
	// dense and survive restarts) is the number published when nothing is
	// lost or delivered twice.
	published := 0
	check := func(stage string) {
		t.Helper()
		for _, n := range nodes {
			testutil.WaitFor(t, 20*time.Second, stage+": "+n.id+" sees 3 alive", func() error {
				if a := statusOf2(t, n.daemon, creds(n))["membership.alive"]; a != float64(3) {
					return fmt.Errorf("%v alive", a)
				}
				return nil
			})
		}
		published++
		id := fmt.Sprintf("roll-%d", published)
		from := nodes[published%len(nodes)]
		if out, errOut, code := ctl(t, nil, append(append([]string{"--addr", from.addr}, creds(from)...), "publish", "--id", id, stage)...); code != 0 {
			t.Fatalf("%s: publish on %s: exit %d: %s %s", stage, from.id, code, out, errOut)
		}
		for _, n := range nodes {
			testutil.WaitFor(t, 20*time.Second, stage+": all "+fmt.Sprint(published)+" messages delivered on "+n.id, func() error {
				if d := statusOf2(t, n.daemon, creds(n))["core.log_head"]; d != float64(published) {
					return fmt.Errorf("delivery log head %v", d)
				}
				return nil
			})
		}
		t.Logf("%s: %s from %s; every node has delivered all %d", stage, id, from.id, published)
	}
	restart := func(i int, required bool, extra ...string) {
		t.Helper()
		n := nodes[i]
		if code := n.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Fatalf("%s: exit %d", n.id, code)
		}
		seed := nodes[(i+1)%len(nodes)].addr
		args := append(append(append(append(append([]string(nil), fast...), dataDir(n.id)...), tlsFlags(n.id)...), extra...), "--join", seed)
		nodes[i] = &node{daemon: startDaemon(t, n.id, args...), required: required}
	}

	check("plaintext")
	for i := range nodes {
		restart(i, false, "--tls-transition")
		check(fmt.Sprintf("%s in transition", nodes[i].id))
	}
	for i := range nodes {
		restart(i, true)
		check(fmt.Sprintf("%s requires TLS", nodes[i].id))
	}
	for _, n := range nodes {
		_, errOut, code := ctl(t, nil, "--addr", n.addr, "members")
		if code != 1 || !strings.Contains(errOut, "give --tls-ca") {
			t.Errorf("%s: plaintext gossipctl after the roll: exit %d %q", n.id, code, errOut)
		}
	}
	for _, n := range nodes {
		if code := n.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Errorf("%s: exit %d", n.id, code)
		}
	}
}
