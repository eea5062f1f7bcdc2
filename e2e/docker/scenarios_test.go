//go:build docker

package docker

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// scenarioTimeout bounds each scenario.
const scenarioTimeout = 2 * time.Minute

func scenario(t *testing.T) context.Context {
	return scenarioWithin(t, scenarioTimeout)
}

func scenarioWithin(t *testing.T, within time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	if err := waitWhole(ctx, 60*time.Second); err != nil {
		t.Fatalf("the cluster is not whole at the start: %v", err)
	}
	return ctx
}

// exactlyOnce fails the test unless every node in nodes got every id
// exactly once, and logs the figures.
func exactlyOnce(t *testing.T, what string, ids []string, nodes []*node) {
	t.Helper()
	for _, n := range nodes {
		lost, dups, missed := n.sub.tally(ids)
		t.Logf("%s: %s: %d messages, lost %d, duplicates %d, missed by the subscriber %d", what, n.name, len(ids), lost, dups, missed)
		if lost != 0 || dups != 0 || missed != 0 {
			t.Errorf("%s: %s: lost %d, duplicates %d, missed %d of %d messages: want each exactly once", what, n.name, lost, dups, missed, len(ids))
		}
	}
}

// settle gives late duplicates time to show before counting them.
const settle = 2 * time.Second

func others(skip ...*node) []*node {
	var out []*node
	for _, n := range suite.nodes {
		keep := true
		for _, s := range skip {
			keep = keep && n != s
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}

// publishFromAll publishes count messages through each node in nodes,
// all at once.
func publishFromAll(t *testing.T, ctx context.Context, tag string, count int, nodes []*node) []string {
	t.Helper()
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			got, err := publish(ctx, n, tag, count)
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, got...)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return ids
}

// TestDeliveryExactlyOnce: every message published through any node is
// delivered on every node exactly once.
func TestDeliveryExactlyOnce(t *testing.T) {
	ctx := scenario(t)
	began := time.Now()
	ids := publishFromAll(t, ctx, "once", 20, suite.nodes)
	if err := waitDelivered(ctx, 30*time.Second, ids, suite.nodes); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages from %d nodes delivered on every node %v after the first publish", len(ids), numNodes, time.Since(began).Round(time.Millisecond))
	time.Sleep(settle)
	exactlyOnce(t, "exactly once", ids, suite.nodes)
}

// TestKillAndRestart: docker kill of one node; the others mark it dead
// within the documented detection bound; messages published meanwhile
// reach it after it restarts with its volume.
func TestKillAndRestart(t *testing.T) {
	ctx := scenario(t)
	victim := suite.nodes[2]
	rest := others(victim)
	bound := detectionBound()
	mustDocker(t, "kill", victim.container)
	killed := time.Now()
	detected := map[string]time.Duration{}
	err := waitFor(ctx, bound+10*time.Second, func() error {
		for _, n := range rest {
			if _, ok := detected[n.name]; ok {
				continue
			}
			st, err := memberStates(ctx, n)
			if err != nil {
				return err
			}
			if s, ok := st[victim.name]; ok && s != pb.MemberState_MEMBER_STATE_DEAD {
				continue
			}
			detected[n.name] = time.Since(killed)
		}
		if len(detected) < len(rest) {
			return fmt.Errorf("marked dead by %d of %d", len(detected), len(rest))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for _, d := range detected {
		worst = max(worst, d)
	}
	t.Logf("kill: %s marked dead by every other node within %v (each: %v); documented bound %v", victim.name, worst.Round(time.Millisecond), detected, bound)
	// The poll is every 100 ms plus an RPC: allow 500 ms of observation.
	if worst > bound+500*time.Millisecond {
		t.Errorf("detection took %v, above the documented bound %v", worst, bound)
	}

	ids := publishFromAll(t, ctx, "kill", 10, rest)
	if err := waitDelivered(ctx, 30*time.Second, ids, rest); err != nil {
		t.Fatal(err)
	}
	before := victim.sub.snapshot()
	startIsolated(ctx, t, victim)
	restarted := time.Now()
	if err := waitDelivered(ctx, 60*time.Second, ids, []*node{victim}); err != nil {
		diagnose(ctx, t)
		t.Fatal(err)
	}
	t.Logf("kill: %s restarted with its volume and had the %d messages published while it was down %v after it could reach the others again",
		victim.name, len(ids), time.Since(restarted).Round(time.Millisecond))
	if err := waitWhole(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(settle)
	exactlyOnce(t, "kill (nodes that stayed up)", ids, rest)
	lost, dups, _ := victim.sub.tally(ids)
	redelivered := victim.sub.redeliveredSince(before)
	t.Logf("kill: restarted %s: of the %d messages published while it was down: lost %d, duplicates %d; messages it had delivered before the kill and delivered again after the restart: %d of %d",
		victim.name, len(ids), lost, dups, redelivered, len(before))
	if lost != 0 || dups != 0 {
		t.Errorf("restarted %s: lost %d, duplicates %d of the messages published while it was down", victim.name, lost, dups)
	}
	if redelivered != 0 {
		t.Errorf("restarted %s delivered again %d of the %d messages it had delivered before the kill: its state on the /data volume (--data-dir) must prevent that", victim.name, redelivered, len(before))
	}
}

// snapshot returns the ids delivered so far with their counts.
func (s *subscriber) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// redeliveredSince counts the ids of before delivered again since.
func (s *subscriber) redeliveredSince(before map[string]int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, c := range before {
		if s.counts[id] > c {
			n++
		}
	}
	return n
}

// TestPartition: nodes 4 and 5 are cut from 1 to 3 (every packet between
// the two sides dropped, in each container's network namespace) for
// longer than the dead-member reap time; messages are published on both
// sides; after the network heals, every node has every message exactly
// once.
func TestPartition(t *testing.T) {
	ctx := scenarioWithin(t, 4*time.Minute)
	sideA, sideB := suite.nodes[:3], suite.nodes[3:]
	cutOff := func(op string) {
		for _, n := range sideA {
			firewall(t, n, op, sideB, "")
		}
		for _, n := range sideB {
			firewall(t, n, op, sideA, "")
		}
	}
	cutOff("-I")
	cut := time.Now()
	healed := false
	t.Cleanup(func() {
		if !healed {
			cutOff("-D")
		}
	})
	// Each side marks the other dead, and then forgets it (the reap).
	gone := func(n *node, of []*node) error {
		st, err := memberStates(ctx, n)
		if err != nil {
			return err
		}
		for _, o := range of {
			if s, ok := st[o.name]; ok {
				return fmt.Errorf("%s still lists %s as %v", n.name, o.name, s)
			}
		}
		return nil
	}
	var ids []string
	ids = append(ids, publishFromAll(t, ctx, "partA", 10, sideA)...)
	ids = append(ids, publishFromAll(t, ctx, "partB", 10, sideB)...)
	// Longer than the detection bound plus the reap: that bound assumes
	// healthy nodes, and every node's probes of the other side fail, so
	// Lifeguard's local health slows its probing (up to 8 times) and
	// the two nodes of side B have one member to confirm a suspicion.
	err := waitFor(ctx, 2*time.Minute, func() error {
		for _, n := range sideA {
			if err := gone(n, sideB); err != nil {
				return err
			}
		}
		for _, n := range sideB {
			if err := gone(n, sideA); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reaped := time.Since(cut)
	if reaped < deadReapAfter {
		t.Fatalf("the sides forgot each other %v after the cut, before the reap time %v", reaped, deadReapAfter)
	}
	if err := waitDelivered(ctx, 30*time.Second, ids[:30], sideA); err != nil {
		t.Errorf("side A during the partition: %v", err)
	}
	// More messages after the reap, on both sides.
	ids = append(ids, publishFromAll(t, ctx, "partA2", 5, sideA)...)
	ids = append(ids, publishFromAll(t, ctx, "partB2", 5, sideB)...)
	cutOff("-D")
	healed = true
	heal := time.Now()
	if err := waitWhole(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	merged := time.Since(heal)
	if err := waitDelivered(ctx, 60*time.Second, ids, suite.nodes); err != nil {
		diagnose(ctx, t)
		t.Fatal(err)
	}
	t.Logf("partition: cut for %v (the sides forgot each other %v after the cut; reap time %v); after the heal one cluster again in %v, every message on every node in %v",
		time.Since(cut).Round(time.Millisecond), reaped.Round(time.Millisecond), deadReapAfter, merged.Round(time.Millisecond), time.Since(heal).Round(time.Millisecond))
	time.Sleep(settle)
	exactlyOnce(t, "partition", ids, suite.nodes)
}

// TestRollingRestart: every node is stopped (SIGTERM) and started again,
// one at a time, while a publisher runs: no acknowledged message is lost.
func TestRollingRestart(t *testing.T) {
	ctx := scenario(t)
	var mu sync.Mutex
	var acked []string
	failed := 0
	why := map[codes.Code]int{}  // the failed publishes by status code
	run := time.Now().UnixNano() // ids unique per run: -count=N republishes none
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			n := suite.nodes[i%numNodes]
			id, err := publishOne(ctx, n, fmt.Sprintf("roll-%d-%d", run, i))
			mu.Lock()
			if err == nil {
				acked = append(acked, id)
			} else {
				failed++
				why[status.Code(err)]++
			}
			mu.Unlock()
		}
	}()
	began := time.Now()
	for _, n := range suite.nodes {
		restart := time.Now()
		mustDocker(t, "stop", "-t", "10", n.container)
		startIsolated(ctx, t, n)
		if err := waitWhole(ctx, 60*time.Second); err != nil {
			close(stop)
			<-done
			t.Fatalf("after restarting %s: %v", n.name, err)
		}
		t.Logf("rolling restart: %s stopped, started and back in the cluster in %v", n.name, time.Since(restart).Round(time.Millisecond))
	}
	time.Sleep(time.Second) // the publisher runs on the whole cluster too
	close(stop)
	<-done
	mu.Lock()
	ids := append([]string(nil), acked...)
	mu.Unlock()
	if len(ids) == 0 {
		t.Fatal("no message was acknowledged during the rolling restart")
	}
	if err := waitDelivered(ctx, 60*time.Second, ids, suite.nodes); err != nil {
		diagnose(ctx, t)
		t.Error(err)
	}
	time.Sleep(settle)
	total, twice := 0, 0
	for _, n := range suite.nodes {
		lost, dups, missed := n.sub.tally(ids)
		total += lost
		twice += dups
		t.Logf("rolling restart: %s: %d acknowledged messages, lost %d, delivered more than once %d, missed by the subscriber %d",
			n.name, len(ids), lost, dups, missed)
	}
	t.Logf("rolling restart of %d nodes in %v: %d publishes acknowledged, %d refused or failed while a node restarted (by code: %v); lost %d",
		numNodes, time.Since(began).Round(time.Millisecond), len(ids), failed, why, total)
	if total != 0 {
		t.Errorf("%d acknowledged deliveries lost", total)
	}
	if twice != 0 {
		t.Errorf("%d deliveries of a message a node had delivered before its restart: its state on the /data volume (--data-dir) must prevent that", twice)
	}
}

// TestLossAndDelay: 10% packet loss and 50 ms delay on every node's link
// to the others (tc netem in each container's network namespace, with
// the host's tc through nsenter: the image has no tc): delivery is still
// 100%, each message once. On a kernel without the netem qdisc
// (sch_netem; "Specified qdisc kind is unknown") the loss is made with
// iptables' statistic match instead, 10% of the packets from every peer
// dropped, and there is no delay: the test says so in its log.
func TestLossAndDelay(t *testing.T) {
	ctx := scenario(t)
	for _, tool := range []string{"nsenter", "tc", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this scenario needs %s on the host (apt-get install util-linux iproute2 iptables), and root: %v", tool, err)
		}
	}
	how := "tc netem: 10% loss and 50 ms delay on every link"
	for _, n := range suite.nodes {
		p := pid(t, n)
		out, err := exec.Command("nsenter", "-t", p, "-n", "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms", "loss", "10%").CombinedOutput()
		switch {
		case err == nil:
			t.Cleanup(func() { exec.Command("nsenter", "-t", p, "-n", "tc", "qdisc", "del", "dev", "eth0", "root").Run() })
		case strings.Contains(string(out), "qdisc kind is unknown"):
			how = "iptables statistic: 10% of the packets from every peer dropped; NO delay (this kernel has no netem qdisc, sch_netem)"
			peers := othersOf(n)
			const match = "-m statistic --mode random --probability 0.1"
			firewall(t, n, "-I", peers, match)
			t.Cleanup(func() { firewall(t, n, "-D", peers, match) })
		default:
			t.Fatalf("tc netem in %s: %v: %s (needs root and CAP_NET_ADMIN on the host)", n.name, err, strings.TrimSpace(string(out)))
		}
	}
	t.Logf("loss: %s", how)
	began := time.Now()
	ids := publishFromAll(t, ctx, "netem", 20, suite.nodes)
	if err := waitDelivered(ctx, 90*time.Second, ids, suite.nodes); err != nil {
		diagnose(ctx, t)
		t.Fatal(err)
	}
	t.Logf("loss (%s): %d messages delivered on every node in %v", how, len(ids), time.Since(began).Round(time.Millisecond))
	time.Sleep(settle)
	exactlyOnce(t, "loss", ids, suite.nodes)
}
