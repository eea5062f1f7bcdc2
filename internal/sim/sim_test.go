package sim

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
)

// small is a quick scenario of the seed's unary push: 300 nodes, random
// 6-regular, no loss.
func small() Scenario {
	sc := DefaultUnaryScenario(ProtoPush)
	sc.Nodes = 300
	sc.Degree = 6
	sc.Messages = 5
	return sc
}

func mustRun(t *testing.T, sc Scenario) *Report {
	t.Helper()
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Summary.DuplicateDeliveries != 0 {
		t.Fatalf("%d duplicate deliveries", r.Summary.DuplicateDeliveries)
	}
	if r.Summary.Truncated {
		t.Fatalf("run truncated at %v", sc.MaxTime)
	}
	return r
}

// withoutPerf is the deterministic part of a report.
func withoutPerf(r *Report) Report {
	c := *r
	c.Perf = Perf{}
	return c
}

// TestDeterminism runs an eventful scenario twice: the reports must be
// identical, and a different seed must change them.
func TestDeterminism(t *testing.T) {
	sc := small()
	sc.Loss = 0.1
	sc.Crash = 0.1
	sc.CrashAt = 30 * time.Millisecond
	sc.Partition = 0.3
	sc.PartitionAt = 10 * time.Millisecond
	sc.HealAt = 3 * time.Second
	sc.Rate = 50
	sc.Proc = time.Millisecond
	a, b := mustRun(t, sc), mustRun(t, sc)
	if !reflect.DeepEqual(withoutPerf(a), withoutPerf(b)) {
		t.Fatalf("same scenario, different reports:\n%+v\n%+v", withoutPerf(a).Summary, withoutPerf(b).Summary)
	}
	if a.Summary.Retries == 0 || a.Summary.Missed() == 0 {
		t.Errorf("the scenario is meant to exercise retries and misses: %+v", a.Summary)
	}
	sc.Seed++
	if c := mustRun(t, sc); reflect.DeepEqual(withoutPerf(a).Summary, withoutPerf(c).Summary) {
		t.Error("seeds 1 and 2 gave the same summary")
	}
}

// TestRing is the seed's ring: N−1 hops, N−1 times the link delay, one
// copy per delivery.
func TestRing(t *testing.T) {
	const n, delay = 20, 7 * time.Millisecond
	sc := DefaultUnaryScenario(ProtoPush)
	sc.Nodes, sc.Topology = n, TopoRing
	sc.Latency = Latency{Kind: Const, A: delay}
	sc.Messages = 4
	r := mustRun(t, sc)
	for _, m := range r.Messages {
		if m.Reachable != n || m.Delivered != n || m.Missed != 0 {
			t.Errorf("message %s: reachable %d, delivered %d, missed %d", m.Hash, m.Reachable, m.Delivered, m.Missed)
		}
		if m.MaxHops != n-1 || m.T100 != (n-1)*delay || m.TLast != m.T100 {
			t.Errorf("message %s: %d hops, t100 %v, last %v; want %d hops, %v", m.Hash, m.MaxHops, m.T100, m.TLast, n-1, (n-1)*delay)
		}
		if m.T50 != n/2*delay-delay { // the 10th node (origin included) is 9 hops away
			t.Errorf("message %s: t50 %v, want %v", m.Hash, m.T50, n/2*delay-delay)
		}
	}
	s := r.Summary
	if s.Hops != (IntDist{P50: n - 1, Max: n - 1}) || s.T100.Max != (n-1)*delay || s.DeliveryRatio != 1 {
		t.Errorf("summary %+v", s)
	}
	if s.Sends != uint64(sc.Messages*(n-1)) || s.CopiesPerDelivery != 1 || r.Counters.Duplicates != 0 {
		t.Errorf("sends %d, copies/delivery %v, duplicates %d; want %d, 1, 0", s.Sends, s.CopiesPerDelivery, r.Counters.Duplicates, sc.Messages*(n-1))
	}
	// The last ACK returns one delay after the last delivery.
	if s.VirtualEnd != n*delay {
		t.Errorf("virtual end %v, want %v", s.VirtualEnd, n*delay)
	}
}

// TestFloodDeliversAll: a flood over a connected graph reaches every node
// without loss, and each node sends once to every neighbour but the
// sender (and the origin).
func TestFloodDeliversAll(t *testing.T) {
	for _, topo := range []string{TopoRandom, TopoFull} {
		sc := small()
		sc.Topology = topo
		if topo == TopoFull {
			sc.Nodes = 40
			// With equal delays every first copy comes from the origin.
			sc.Latency = Latency{Kind: Const, A: 5 * time.Millisecond}
		}
		sc.Core.Fanout = core.FanoutAll
		r := mustRun(t, sc)
		s := r.Summary
		if s.DeliveryRatio != 1 || s.Incomplete != 0 || s.T100.Never != 0 || s.Expected != sc.Nodes*sc.Messages {
			t.Errorf("%s: delivery %v, incomplete %d, expected %d", topo, s.DeliveryRatio, s.Incomplete, s.Expected)
		}
		if s.Retries != 0 || s.GaveUp != 0 || r.Counters.Acked != s.Sends {
			t.Errorf("%s: no loss, but %d retries, %d gave up, %d of %d acked", topo, s.Retries, s.GaveUp, r.Counters.Acked, s.Sends)
		}
		degree := float64(sc.Degree)
		if topo == TopoFull {
			degree = float64(sc.Nodes - 1)
			if s.Hops.Max != 1 {
				t.Errorf("full mesh: %d rounds, want 1", s.Hops.Max)
			}
		}
		// Every node but the origin forwards to degree−1 neighbours (minus
		// the origin when it is one of them); the origin to all.
		if lo, hi := degree-2, degree-1+degree/float64(sc.Nodes-1)+1e-9; s.CopiesPerDelivery < lo || s.CopiesPerDelivery > hi {
			t.Errorf("%s: %.3f copies per delivery, want within [%v, %v]", topo, s.CopiesPerDelivery, lo, hi)
		}
	}
}

// TestPushMisses: push with fanout 3 on degree 8 misses some nodes (the
// motivation for anti-entropy); the report must say so, not hide it.
func TestPushMisses(t *testing.T) {
	sc := small()
	sc.Degree = 8
	r := mustRun(t, sc)
	s := r.Summary
	if s.Missed() == 0 || s.DeliveryRatio >= 1 || s.DeliveryRatio < 0.9 {
		t.Fatalf("fanout 3 on degree 8: delivery %v, missed %d; expected a few misses", s.DeliveryRatio, s.Missed())
	}
	if s.T100.Never != s.Incomplete || s.MissedMax == 0 {
		t.Errorf("t100 never %d, incomplete %d, missed max %d", s.T100.Never, s.Incomplete, s.MissedMax)
	}
	if s.CopiesPerDelivery < 2.9 || s.CopiesPerDelivery > 3.1 {
		t.Errorf("%.3f copies per delivery, want ≈ 3", s.CopiesPerDelivery)
	}
}

// TestLossAccounting checks that the counters add up under loss: every
// attempt is a first attempt or a retry, ends in an ACK or a failure, and
// every failure is retried or given up.
func TestLossAccounting(t *testing.T) {
	for _, maxAttempts := range []int{1, 4} {
		sc := small()
		sc.Loss = 0.2
		sc.Core.Fanout = core.FanoutAll
		sc.Core.MaxAttempts = maxAttempts
		sc.Proc = 100 * time.Microsecond
		r := mustRun(t, sc)
		c, s := r.Counters, r.Summary
		if c.Sent != c.Forwards+c.Retries {
			t.Errorf("attempts %d: sent %d ≠ forwards %d + retries %d", maxAttempts, c.Sent, c.Forwards, c.Retries)
		}
		if c.Acked+c.AckFailed != c.Sent {
			t.Errorf("attempts %d: acked %d + failed %d ≠ sent %d", maxAttempts, c.Acked, c.AckFailed, c.Sent)
		}
		if c.AckFailed != c.Retries+c.GaveUp {
			t.Errorf("attempts %d: failed %d ≠ retries %d + gave up %d", maxAttempts, c.AckFailed, c.Retries, c.GaveUp)
		}
		if c.Received != s.Arrivals+uint64(sc.Messages) || c.Received != c.Delivered+c.Duplicates {
			t.Errorf("attempts %d: received %d, arrivals %d, delivered %d, duplicates %d", maxAttempts, c.Received, s.Arrivals, c.Delivered, c.Duplicates)
		}
		if s.Sends != c.Sent || s.Retries != c.Retries || s.GaveUp != c.GaveUp || s.Deliveries != c.Delivered-uint64(sc.Messages) {
			t.Errorf("attempts %d: summary %+v disagrees with counters %+v", maxAttempts, s, c)
		}
		// About 20% of attempts fail.
		if f := float64(c.AckFailed) / float64(c.Sent); f < 0.15 || f > 0.25 {
			t.Errorf("attempts %d: %.3f of attempts failed, want ≈ 0.2", maxAttempts, f)
		}
		if maxAttempts == 1 && c.Retries != 0 {
			t.Errorf("MaxAttempts 1, %d retries", c.Retries)
		}
		if maxAttempts == 4 && (c.Retries == 0 || s.DeliveryRatio != 1) {
			t.Errorf("flood with retries under 20%% loss: %d retries, delivery %v", c.Retries, s.DeliveryRatio)
		}
		// A lost ACK leaves the sender waiting AckTimeout: the network is
		// busy at least that long.
		if s.VirtualEnd < core.DefaultAckTimeout {
			t.Errorf("attempts %d: virtual end %v before one ACK timeout", maxAttempts, s.VirtualEnd)
		}
	}
}

// TestCrashExpectation: crashed nodes are not expected to deliver, nor are
// live nodes cut off behind them. On a ring, a message stops at the first
// crashed node after its origin.
func TestCrashExpectation(t *testing.T) {
	const n = 40
	sc := DefaultUnaryScenario(ProtoPush)
	sc.Nodes, sc.Topology, sc.Messages = n, TopoRing, 8
	sc.Crash = 0.1
	r := mustRun(t, sc)
	e := newEngine(sc, nil)
	if r.Live != n-4 {
		t.Fatalf("%d live nodes, want %d", r.Live, n-4)
	}
	for _, m := range r.Messages {
		if e.willCrash[m.Origin] {
			t.Fatalf("message %s published by crashed node %d", m.Hash, m.Origin)
		}
		want := 1
		for i := (m.Origin + 1) % n; !e.willCrash[i]; i = (i + 1) % n {
			want++
		}
		if m.Reachable != want || m.Delivered != want || m.Missed != 0 || m.T100 < 0 {
			t.Errorf("message %s from %d: reachable %d, delivered %d, missed %d; want %d reachable, all delivered",
				m.Hash, m.Origin, m.Reachable, m.Delivered, m.Missed, want)
		}
	}
	if r.Summary.GaveUp != uint64(sc.Messages) {
		t.Errorf("%d forwards gave up, want one per message (to the crashed node)", r.Summary.GaveUp)
	}

	// A flood on a random graph reaches every live node still connected,
	// whatever crashed; only they are expected.
	sc = small()
	sc.Core.Fanout = core.FanoutAll
	sc.Crash = 0.2
	r = mustRun(t, sc)
	if r.Live != 240 || r.Summary.DeliveryRatio != 1 || r.Summary.Expected > 240*sc.Messages {
		t.Errorf("flood with 20%% crashed: %d live, delivery %v, expected %d", r.Live, r.Summary.DeliveryRatio, r.Summary.Expected)
	}

	// Crashing during dissemination: whatever reached a crashed node is
	// not counted, and the counters still add up.
	sc.CrashAt = 25 * time.Millisecond
	r = mustRun(t, sc)
	if c := r.Counters; c.Sent != c.Forwards+c.Retries || c.Acked+c.AckFailed > c.Sent {
		t.Errorf("crash during the run: counters %+v", c)
	}
	for _, m := range r.Messages {
		if m.Delivered+m.Missed != m.Reachable || m.Reachable > r.Live {
			t.Errorf("message %+v", m)
		}
	}
}

// TestPartition: while a partition holds nothing crosses it; forwards
// given up during it are not repaired after the heal; messages published
// after the heal reach everyone.
func TestPartition(t *testing.T) {
	sc := small()
	sc.Core.Fanout = core.FanoutAll
	sc.Partition = 0.5
	sc.Messages = 6
	sc.Rate = 1 // one message per virtual second: 0 s … 5 s
	sc.HealAt = 2500 * time.Millisecond
	r := mustRun(t, sc)
	for i, m := range r.Messages {
		switch {
		case m.PublishedAt < 2*time.Second:
			// Published well before the heal: retries (2 s apart at most,
			// all over within ~7 s) may straddle the heal, but at least the
			// other side's 150 nodes never hear of it... unless a retry
			// lands after the heal. What is certain: it is not complete at
			// the heal, and nothing re-sends a forward once given up.
			if m.T100 >= 0 && m.T100 < sc.HealAt-m.PublishedAt {
				t.Errorf("message %d completed at %v, before the heal", i, m.T100)
			}
		case m.PublishedAt >= sc.HealAt:
			if m.Missed != 0 {
				t.Errorf("message %d published after the heal missed %d nodes", i, m.Missed)
			}
		}
	}

	// Never healed: every message misses at least the other side.
	sc.HealAt = 0
	r = mustRun(t, sc)
	for i, m := range r.Messages {
		if m.Missed < 150 || m.Delivered > 150 {
			t.Errorf("message %d: delivered %d, missed %d across a permanent 150/150 partition", i, m.Delivered, m.Missed)
		}
	}
	if r.Summary.GaveUp == 0 {
		t.Error("no forward gave up across the partition")
	}
}

// TestTick: the decay loop retires hot state once the network is quiet;
// without ticks it stays.
func TestTick(t *testing.T) {
	sc := small()
	r := mustRun(t, sc)
	if r.Counters.Expired != 0 || r.Storage.Active == 0 {
		t.Errorf("a run shorter than the TTL: expired %d, active %d", r.Counters.Expired, r.Storage.Active)
	}
	sc.Rate = 0.2 // messages 5 s apart: earlier hot state expires meanwhile
	r = mustRun(t, sc)
	if r.Counters.Expired == 0 || r.Storage.Seen != r.Summary.Delivered {
		t.Errorf("a 20 s run: expired %d, seen %d, delivered %d", r.Counters.Expired, r.Storage.Seen, r.Summary.Delivered)
	}
	sc.Tick = -1
	r = mustRun(t, sc)
	if r.Counters.Expired != 0 || r.Storage.Active != r.Summary.Delivered {
		t.Errorf("without ticks: expired %d, active %d", r.Counters.Expired, r.Storage.Active)
	}
}

func TestMaxTime(t *testing.T) {
	sc := small()
	sc.MaxTime = 20 * time.Millisecond
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Summary.Truncated || r.Summary.VirtualEnd > sc.MaxTime || r.Summary.DeliveryRatio > 0.5 {
		t.Errorf("truncated %v at %v, delivery %v", r.Summary.Truncated, r.Summary.VirtualEnd, r.Summary.DeliveryRatio)
	}
}

func TestMemoryAndProgress(t *testing.T) {
	sc := small()
	calls := 0
	r, err := Run(sc, Options{MeasureMemory: true, Progress: func(time.Duration, uint64, int) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	m := r.Perf.Memory
	if m == nil || m.IdlePerNode <= 0 || m.EndPerNode <= m.IdlePerNode || m.DecayedPerNode >= m.EndPerNode ||
		m.PerRememberedID <= 0 || m.PerHotEntry <= 0 || m.ActiveAtEnd == 0 {
		t.Errorf("memory %+v", m)
	}
	if r.Perf.Events == 0 || r.Perf.Wall <= 0 || calls != int(r.Perf.Events>>20) {
		t.Errorf("perf %+v, %d progress calls", r.Perf, calls)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*Scenario)
		want   string
	}{
		{"nodes", func(s *Scenario) { s.Nodes = 0 }, "nodes 0"},
		{"messages", func(s *Scenario) { s.Messages = 0 }, "messages 0"},
		{"publishers", func(s *Scenario) { s.Publishers = s.Nodes + 1 }, "publishers"},
		{"publishers negative", func(s *Scenario) { s.Publishers = -1 }, "publishers -1"},
		{"publishers crashed", func(s *Scenario) { s.Crash = 0.5; s.Publishers = s.Nodes/2 + 1 }, "never crash"},
		{"loss", func(s *Scenario) { s.Loss = 1.5 }, "loss"},
		{"crash", func(s *Scenario) { s.Crash = 1 }, "crash"},
		{"partition", func(s *Scenario) { s.Partition = -0.1 }, "partition"},
		{"heal", func(s *Scenario) { s.PartitionAt = time.Second; s.HealAt = time.Second }, "heal"},
		{"degree", func(s *Scenario) { s.Degree = 1000 }, "degree"},
		{"odd", func(s *Scenario) { s.Nodes = 999; s.Degree = 7 }, "even"},
		{"topology", func(s *Scenario) { s.Topology = "star" }, "topology"},
		{"full", func(s *Scenario) { s.Topology = TopoFull; s.Nodes = MaxFullNodes + 1 }, "too many"},
		{"fanout", func(s *Scenario) { s.Core.Fanout = -2 }, "fanout"},
		{"attempts", func(s *Scenario) { s.Core.MaxAttempts = 300 }, "255"},
		{"negative", func(s *Scenario) { s.Proc = -1 }, "times"},
		{"protocol", func(s *Scenario) { s.Protocol = "gossip" }, "protocol"},
		{"repair", func(s *Scenario) { s.Repair = "magic" }, "repair"},
		{"repair push", func(s *Scenario) { s.Repair = RepairModel }, "only Plumtree"},
		{"batch", func(s *Scenario) { s.Batch = -1 }, "batch"},
		{"phase", func(s *Scenario) { s.Publish = []Phase{{At: time.Second, Count: 1}, {Count: 1}} }, "phase 1"},
	} {
		sc := DefaultUnaryScenario(ProtoPush)
		tt.mutate(&sc)
		err := sc.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
		if _, err := Run(sc, Options{}); err == nil {
			t.Errorf("%s: Run accepted the scenario", tt.name)
		}
	}
	for _, tt := range []struct {
		name   string
		mutate func(*Scenario)
		want   string
	}{
		{"swim too big", func(s *Scenario) { s.Nodes, s.Crash, s.Repair = MaxSwimNodes+1, 0.1, RepairSwim }, "too many"},
		{"partition", func(s *Scenario) { s.Partition = 0.5 }, "partition"},
		{"loss", func(s *Scenario) { s.Loss = 0.95 }, "loss"},
		{"repair ring", func(s *Scenario) { s.Topology, s.Repair = TopoRing, RepairSwim }, "membership topology"},
	} {
		sc := DefaultScenario()
		tt.mutate(&sc)
		if err := sc.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("plumtree %s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	sc := DefaultScenario()
	if err := sc.Validate(); err != nil || sc.Tick != time.Second || sc.Core.AckTimeout != core.DefaultAckTimeout ||
		sc.Protocol != ProtoPlumtree || sc.Topology != TopoMembership || sc.Repair != RepairNone || sc.Drain != 10*time.Second {
		t.Errorf("default scenario: %v, %+v", err, sc)
	}
	for n, want := range map[int]string{MaxSwimNodes: RepairSwim, MaxSwimNodes + 1: RepairModel} {
		sc := DefaultScenario()
		sc.Nodes, sc.Crash = n, 0.5
		if err := sc.Validate(); err != nil || sc.Repair != want {
			t.Errorf("auto repair at %d nodes: %q, %v; want %q", n, sc.Repair, err, want)
		}
	}
	if sc := DefaultUnaryScenario(ProtoFlood); sc.Validate() != nil || sc.Core.Fanout != core.FanoutAll || sc.Topology != TopoRandom {
		t.Errorf("flood default: %+v", sc)
	}
}

// TestQueueOrder: events come out by time, ties in push order.
func TestQueueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var q eventQueue
	var seq uint64
	var last event
	popped := 0
	for round := range 5000 {
		for range r.IntN(4) {
			q.push(event{at: last.at + r.Int64N(20), seq: seq})
			seq++
		}
		if len(q) > 0 && (round%3 != 0 || r.IntN(2) == 0) {
			ev := q.pop()
			if popped > 0 && ev.before(&last) {
				t.Fatalf("popped (%d, %d) after (%d, %d)", ev.at, ev.seq, last.at, last.seq)
			}
			last = ev
			popped++
		}
	}
	for len(q) > 0 {
		ev := q.pop()
		if ev.before(&last) {
			t.Fatalf("popped (%d, %d) after (%d, %d)", ev.at, ev.seq, last.at, last.seq)
		}
		last = ev
	}
}

// Publishers limits the publishing nodes to that many.
func TestPublishers(t *testing.T) {
	sc := DefaultUnaryScenario(ProtoPush)
	sc.Nodes, sc.Messages, sc.Publishers = 100, 60, 3
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	origins := map[int]bool{}
	for _, m := range r.Messages {
		origins[m.Origin] = true
	}
	if len(origins) != 3 {
		t.Fatalf("%d publishing nodes, want 3: %v", len(origins), origins)
	}
}
