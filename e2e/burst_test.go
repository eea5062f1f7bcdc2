package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

// burstMessages is how many messages TestPublishBurst publishes: enough
// that the cluster runs at its maximum rate for a few seconds (about
// 20,000 msg/s through 5 daemons on a 2-core machine), so that a node
// that falls behind has to catch up from a backlog of tens of thousands.
const burstMessages = 100_000

// TestPublishBurst: five gossipd processes with --data-dir, joined through
// the first; `gossipctl publish --lines -` sends burstMessages lines into
// node-1 as fast as it acknowledges them. Every node must then deliver
// every message exactly once (its log head is burstMessages; no sequence
// number given up), well within the deadline: they normally catch up a
// second or two after the last acknowledgement.
//
// This is how an operator loads a cluster from outside (issue 15's target
// 7), and it is the run that exposed a store whose cost grew with the
// backlog (docs/PERFORMANCE.md, "The store's window, tried and taken
// back"): the other nodes took 124 s to catch up with 100,000 messages,
// against 1.7 s. The in-process bench suite, with 20 nodes sharing the
// load, did not show it.
func TestPublishBurst(t *testing.T) {
	seed := startDaemon(t, "node-1", "--data-dir", t.TempDir())
	nodes := []*daemon{seed}
	for i := 2; i <= 5; i++ {
		nodes = append(nodes, startDaemon(t, fmt.Sprintf("node-%d", i), "--join", seed.addr, "--data-dir", t.TempDir()))
	}
	for _, d := range nodes {
		testutil.WaitFor(t, 15*time.Second, d.id+" ready", func() error {
			if st := statusOf(t, d); st["ready"] != true {
				return fmt.Errorf("not ready")
			}
			return nil
		})
	}

	var in strings.Builder
	for i := 1; i <= burstMessages; i++ {
		fmt.Fprintf(&in, "burst-%d\n", i)
	}
	start := time.Now()
	out, errOut, code := ctl(t, strings.NewReader(in.String()), "--addr", seed.addr, "publish", "--lines", "-")
	took := time.Since(start)
	if code != 0 || !strings.Contains(out+errOut, fmt.Sprintf("published %d messages", burstMessages)) || !strings.Contains(out+errOut, " 0 failed") {
		t.Fatalf("gossipctl publish --lines: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	t.Logf("%d messages acknowledged in %v (%.0f msg/s)", burstMessages, took.Round(time.Millisecond), burstMessages/took.Seconds())

	caughtUp := time.Now()
	testutil.WaitFor(t, 60*time.Second, "every node to deliver every message", func() error {
		for _, d := range nodes {
			st := statusOf(t, d)
			if head := st["core.log_head"]; head != float64(burstMessages) {
				return fmt.Errorf("%s: log head %v of %d", d.id, head, burstMessages)
			}
		}
		return nil
	})
	t.Logf("the other nodes had every message %v after the last acknowledgement", time.Since(caughtUp).Round(time.Millisecond))
	for _, d := range nodes {
		st := statusOf(t, d)
		if n := st["core.delivered"]; n != float64(burstMessages) {
			t.Errorf("%s delivered %v messages, want %d (each exactly once)", d.id, n, burstMessages)
		}
		if n := st["stream.holes_skipped"]; n != float64(0) {
			t.Errorf("%s gave up %v sequence numbers (stream.holes_skipped), want 0", d.id, n)
		}
	}
	for _, d := range nodes {
		if code := d.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", d.id, code)
		}
	}
}
