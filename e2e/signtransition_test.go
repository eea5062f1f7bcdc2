package e2e

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

// TestSignRollingEnable turns --sign on in a running 3-node mTLS cluster
// with real processes and no lost message: each node in turn is
// restarted with --sign --sign-transition (it signs, and still accepts
// the unsigned messages of the nodes not restarted yet), then each in
// turn with --sign only. After every single restart a message is
// published on one node and every node has delivered every message
// published so far exactly once (the head of its delivery log, which
// survives restarts with --data-dir, equals the count).
func TestSignRollingEnable(t *testing.T) {
	dir := t.TempDir()
	mkPKI(t, dir, []string{"n1", "n2", "n3"}, []string{"ops"})
	f := func(name string) string { return filepath.Join(dir, name) }
	fast := []string{"--probe-interval", "200ms", "--probe-timeout", "100ms", "--suspicion-mult", "3"}
	creds := []string{"--tls-ca", f("gossip-ca.pem"), "--tls-cert", f("client-ops.pem"), "--tls-key", f("client-ops-key.pem")}
	base := func(id string) []string {
		return append(append([]string(nil), fast...),
			"--data-dir", filepath.Join(dir, "data-"+id),
			"--tls-cert", f("node-"+id+".pem"), "--tls-key", f("node-"+id+"-key.pem"), "--tls-ca", f("gossip-ca.pem"))
	}
	nodes := make([]*daemon, 3)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		args := base(id)
		if i > 0 {
			args = append(args, "--join", nodes[0].addr)
		}
		nodes[i] = startDaemon(t, id, args...)
	}
	published := 0
	check := func(stage string) {
		t.Helper()
		for _, n := range nodes {
			testutil.WaitFor(t, 20*time.Second, stage+": "+n.id+" sees 3 alive", func() error {
				if a := statusOf2(t, n, creds)["membership.alive"]; a != float64(3) {
					return fmt.Errorf("%v alive", a)
				}
				return nil
			})
		}
		published++
		id := fmt.Sprintf("sign-roll-%d", published)
		from := nodes[published%len(nodes)]
		if out, errOut, code := ctl(t, nil, append(append([]string{"--addr", from.addr}, creds...), "publish", "--id", id, stage)...); code != 0 {
			t.Fatalf("%s: publish on %s: exit %d: %s %s", stage, from.id, code, out, errOut)
		}
		for _, n := range nodes {
			testutil.WaitFor(t, 20*time.Second, stage+": all "+fmt.Sprint(published)+" messages delivered on "+n.id, func() error {
				if d := statusOf2(t, n, creds)["core.log_head"]; d != float64(published) {
					return fmt.Errorf("delivery log head %v", d)
				}
				return nil
			})
		}
		t.Logf("%s: %s from %s; every node has delivered all %d", stage, id, from.id, published)
	}
	restart := func(i int, extra ...string) {
		t.Helper()
		n := nodes[i]
		if code := n.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Fatalf("%s: exit %d", n.id, code)
		}
		args := append(append(base(n.id), extra...), "--join", nodes[(i+1)%len(nodes)].addr)
		nodes[i] = startDaemon(t, n.id, args...)
	}

	check("unsigned")
	for i := range nodes {
		restart(i, "--sign", "--sign-transition")
		check(nodes[i].id + " in the signing transition")
	}
	accepted := 0.0
	for _, n := range nodes {
		st := statusOf2(t, n, creds)
		if st["security.messages_forged"] != float64(0) {
			t.Errorf("%s: messages_forged = %v", n.id, st["security.messages_forged"])
		}
		a, _ := st["security.messages_unsigned_accepted"].(float64)
		accepted += a
	}
	if accepted == 0 {
		t.Error("no unsigned message was accepted during the transition: the test did not exercise it")
	}
	for i := range nodes {
		restart(i, "--sign")
		check(nodes[i].id + " signs only")
	}
	for _, n := range nodes {
		st := statusOf2(t, n, creds)
		t.Logf("%s: messages_unsigned %v, unsigned_accepted %v, forged %v", n.id, st["security.messages_unsigned"], st["security.messages_unsigned_accepted"], st["security.messages_forged"])
		if code := n.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Errorf("%s: exit %d", n.id, code)
		}
	}
}
