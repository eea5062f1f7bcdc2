package sim

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// plumtree is a quick Plumtree scenario: n nodes over the membership
// overlay, 30 messages at 10/s in batches of 10.
func plumtree(n int) Scenario {
	sc := DefaultScenario()
	sc.Nodes = n
	sc.Messages = 30
	sc.Drain = 5 * time.Second
	return sc
}

// checkPlumtree fails on what must never happen in a Plumtree run.
func checkPlumtree(t *testing.T, r *Report) {
	t.Helper()
	if r.Summary.DuplicateDeliveries != 0 {
		t.Fatalf("%d duplicate deliveries", r.Summary.DuplicateDeliveries)
	}
	if r.Summary.Truncated {
		t.Fatal("run truncated")
	}
	st, c := r.Stream, r.Counters
	if st == nil || st.EnvelopesSent == 0 || st.CopiesReceived+st.EnvelopesLost < st.CopiesSent-st.CopiesSent/2 {
		t.Fatalf("stream summary %+v", st)
	}
	if c.Received != c.Delivered+c.Duplicates {
		t.Errorf("received %d ≠ delivered %d + duplicates %d", c.Received, c.Delivered, c.Duplicates)
	}
	// Every copy that arrived was handled by a core (publishes excluded).
	if c.Received != st.CopiesReceived+uint64(len(r.Messages)) {
		t.Errorf("cores received %d copies, streams delivered %d (+%d publishes)", c.Received, st.CopiesReceived, len(r.Messages))
	}
	if c.Forwards != 0 || c.Sent != 0 {
		t.Errorf("unary sends in a Plumtree run: %d forwards, %d sent", c.Forwards, c.Sent)
	}
}

// TestPlumtreeSteadyState: without faults every node gets every message;
// a source's first messages flood (its tree does not exist yet), and once
// the trees have settled the batches follow them at about one copy per
// delivery. Ten nodes publish, so that sources publish again (with any of
// the 200 publishing, most messages start a tree of their own); the trees
// settle within about five messages per source, while tree shortening
// swaps parents (batches 1–4: 1.3–1.6 copies per delivery).
func TestPlumtreeSteadyState(t *testing.T) {
	t.Parallel()
	sc := plumtree(200)
	sc.Publishers = 10
	sc.Messages = 80
	r := mustRunPT(t, sc)
	s := r.Summary
	if s.Reliability.Min != 1 || s.DeliveryRatio != 1 || s.Incomplete != 0 || s.T100.Never != 0 {
		t.Fatalf("reliability %+v, delivery %v, incomplete %d", s.Reliability, s.DeliveryRatio, s.Incomplete)
	}
	if len(r.Batches) != 8 {
		t.Fatalf("%d batches, want 8", len(r.Batches))
	}
	first, settled := r.Batches[0], r.Batches[5:]
	if first.CopiesPerDelivery < 1.5 {
		t.Errorf("first batch: %.2f copies per delivery; the first messages should flood", first.CopiesPerDelivery)
	}
	for _, b := range r.Batches[1:] {
		t.Logf("batch %d: %.3f copies per delivery, RMR %.3f, time to all %v, %d hops", b.Index, b.CopiesPerDelivery, b.RMR.Mean, b.T100.Max, b.MaxHops)
	}
	for _, b := range settled {
		if b.CopiesPerDelivery > 1.15 || b.RMR.Mean > 0.15 {
			t.Errorf("batch %d in steady state: %.3f copies per delivery, RMR %.3f; want about 1 and 0", b.Index, b.CopiesPerDelivery, b.RMR.Mean)
		}
	}
	// Grafts happen without loss: a young tree (a source's first messages)
	// need not reach every node, which then grafts (core.Counters.GraftsYoung).
	if c := r.Counters; c.PrunesSent == 0 || c.IHavesSent == 0 || c.DigestsSent == 0 || c.GraftsYoung == 0 {
		t.Errorf("counters %+v: want prunes, announcements, digests and young-tree waits", c)
	}
	if r.Stream.StreamBreaks != 0 || r.Stream.EnvelopesLost != 0 {
		t.Errorf("streams broke without loss: %+v", r.Stream)
	}
}

func mustRunPT(t *testing.T, sc Scenario) *Report {
	t.Helper()
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkPlumtree(t, r)
	return r
}

// TestPlumtreeLoss: a fifth of all envelopes is lost, each breaking its
// stream; re-sends after reconnecting, grafts and anti-entropy still
// bring every message to every node.
func TestPlumtreeLoss(t *testing.T) {
	t.Parallel()
	sc := plumtree(100)
	sc.Messages = 20
	sc.Loss = 0.2
	sc.Drain = 20 * time.Second
	r := mustRunPT(t, sc)
	st := r.Stream
	t.Logf("20%% envelope loss: reliability %+v, %.2f copies per delivery, streams %+v", r.Summary.Reliability, r.Summary.CopiesPerDelivery, *st)
	if r.Summary.Reliability.Min != 1 {
		t.Fatalf("reliability %+v under 20%% loss, want 100%%", r.Summary.Reliability)
	}
	if f := float64(st.EnvelopesLost) / float64(st.EnvelopesSent); f < 0.15 || f > 0.25 {
		t.Errorf("%.3f of envelopes lost, want ≈ 0.2", f)
	}
	if st.StreamBreaks < st.EnvelopesLost || st.Reconnects == 0 || st.Resent == 0 || r.Counters.GraftsSent == 0 {
		t.Errorf("breaks %d, lost %d, reconnects %d, re-sent %d, grafted %d: loss should break streams, and repair should re-send and graft",
			st.StreamBreaks, st.EnvelopesLost, st.Reconnects, st.Resent, r.Counters.GraftsSent)
	}
}

// TestPlumtreeCrashHalf: half of 500 nodes crash at once after warm-up
// (300 under the race detector, which is ten times slower); without any
// membership repair the survivors still get every message published after
// the crash, over the trees, lazy links and grafts.
func TestPlumtreeCrashHalf(t *testing.T) {
	t.Parallel()
	n := 500
	if raceEnabled {
		n = 300
	}
	base := DefaultScenario()
	base.Nodes = n
	base.Repair = RepairNone
	sc := FailScenario(base, 0.5, 0)
	sc.Drain = 3 * time.Second
	r := mustRunPT(t, sc)
	if r.Live != n/2 || len(r.Batches) != 3 || r.Batches[2].Index != 0 {
		t.Fatalf("%d live, batches %+v", r.Live, r.Batches)
	}
	after := r.Batches[2]
	t.Logf("%d of %d crashed: first batch after the crash: reliability %+v, time to all %v (max), %.2f copies per delivery, %d grafted",
		n/2, n, after.Reliability, after.T100.Max, after.CopiesPerDelivery, r.Counters.GraftsSent)
	if after.Reliability.Min < 0.99 {
		t.Errorf("after the crash: reliability %+v, want ≥ 99%% for every message", after.Reliability)
	}
	if r.Membership == nil || r.Membership.Mode != RepairNone || r.Membership.Added != 0 || r.Membership.DeadNeighborsAtEnd == 0 {
		t.Errorf("membership %+v: no repair expected", r.Membership)
	}
	if r.Stream.DialsRefused == 0 {
		t.Error("no dial to a crashed neighbour was refused")
	}
}

// TestPlumtreeRepair: with membership repair, dead neighbours are found
// and replaced — by the real SWIM core on every node, or by the model
// calibrated on it — and messages after the repair reach everyone.
func TestPlumtreeRepair(t *testing.T) {
	t.Parallel()
	for _, repair := range []string{RepairSwim, RepairModel} {
		t.Run(repair, func(t *testing.T) {
			t.Parallel()
			base := DefaultScenario()
			base.Nodes = 60
			base.Repair = repair
			sc := FailScenario(base, 0.5, 30*time.Second)
			sc.Drain = 3 * time.Second
			r := mustRunPT(t, sc)
			m := r.Membership
			if m == nil || m.Mode != repair || m.Detection == nil {
				t.Fatalf("membership %+v", m)
			}
			d := m.Detection
			t.Logf("%s: detection p50 %v, p99 %v, max %v over %d pairs; chosen %d, removed %d, dropped %d; degree %.1f",
				repair, d.P50, d.P99, d.Max, d.Pairs, m.Added, m.Removed, m.Dropped, m.DegreeAtEnd)
			// With half the members crashed at once most probes fail, so
			// Lifeguard raises the survivors' local health multiplier and
			// stretches their timers (up to 8×): the tail is longer than
			// DetectionBound, which assumes healthy nodes.
			if d.Pairs != 30*30 || d.Never != 0 || d.P50 <= 0 || d.P99 > 30*time.Second || d.Max > 2*time.Minute || m.FalseDead != 0 {
				t.Errorf("detection %+v, false dead %d: every (survivor, crashed) pair within two minutes, 99%% within 30 s", d, m.FalseDead)
			}
			if repair == RepairModel && (d.CalibrationNodes != 60 || d.Scale != 1) {
				t.Errorf("model at 60 nodes: calibrated at %d, scale %v", d.CalibrationNodes, d.Scale)
			}
			if m.DeadNeighborsAtEnd != 0 || m.IsolatedAtEnd != 0 || m.Removed == 0 || m.Added == 0 {
				t.Errorf("membership %+v: every dead neighbour should be replaced", m)
			}
			last := r.Batches[len(r.Batches)-1]
			if last.From < 30*time.Second || last.Reliability.Min != 1 || last.T100.Never != 0 {
				t.Errorf("last batch %+v: want 100%% 30 s after the crash", last)
			}
		})
	}
}

// TestPlumtreeDeterminism: the same scenario gives the same report, with
// loss, a crash and the SWIM cores in play.
func TestPlumtreeDeterminism(t *testing.T) {
	t.Parallel()
	base := DefaultScenario()
	base.Nodes = 60
	base.Loss = 0.05
	base.Repair = RepairSwim
	sc := FailScenario(base, 0.3, 0)
	sc.Drain = 2 * time.Second
	a, b := mustRunPT(t, sc), mustRunPT(t, sc)
	if !reflect.DeepEqual(withoutPerf(a), withoutPerf(b)) {
		t.Fatalf("same scenario, different reports:\n%+v\n%+v", a.Summary, b.Summary)
	}
	sc.Seed++
	if c := mustRunPT(t, sc); reflect.DeepEqual(withoutPerf(a).Summary, withoutPerf(c).Summary) {
		t.Error("seeds 1 and 2 gave the same summary")
	}
}

// TestReportJSONRoundTrip: a report survives JSON, every section included.
func TestReportJSONRoundTrip(t *testing.T) {
	t.Parallel()
	base := DefaultScenario()
	base.Nodes = 60
	base.Repair = RepairModel
	sc := FailScenario(base, 0.5, 0)
	sc.Drain = 2 * time.Second
	r := mustRunPT(t, sc)
	if r.Membership == nil || r.Membership.Detection == nil || len(r.Batches) == 0 || len(sc.Publish) != 2 {
		t.Fatalf("the report lacks a section: %+v", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, back) {
		t.Errorf("JSON round trip changed the report:\n%+v\n%+v", *r, back)
	}
}

// TestMembershipOverlay: every node chooses k members; links are two-way,
// so degrees average about 2k; the overlay is connected.
func TestMembershipOverlay(t *testing.T) {
	const n, extra = 1000, 2
	k := MembershipK(n, extra)
	if k != 9 { // ceil(ln 1000) = 7
		t.Fatalf("k = %d at 1000 nodes, want 9", k)
	}
	chosen, g := MembershipOverlay(n, extra, 1)
	sum := 0
	for i, cs := range chosen {
		if len(cs) != k {
			t.Fatalf("node %d chose %d, want %d", i, len(cs), k)
		}
		for _, j := range cs {
			if _, ok := slicesIndex(g[j], i); !ok {
				t.Fatalf("%d chose %d, but %d does not link back", i, j, j)
			}
		}
		sum += len(g[i])
	}
	if mean := float64(sum) / n; mean != 2*float64(k) {
		t.Errorf("mean degree %.2f, want exactly 2k = %d (each choice adds one edge)", mean, 2*k)
	}
	if !g.Connected() {
		t.Error("not connected")
	}
	if MembershipK(1, extra) != 0 || MembershipK(2, extra) != 3 {
		t.Errorf("k(1) = %d, k(2) = %d", MembershipK(1, extra), MembershipK(2, extra))
	}
}

func slicesIndex(s []int, v int) (int, bool) {
	for k, x := range s {
		if x == v {
			return k, true
		}
	}
	return -1, false
}

// TestFailScenario: the schedule of the failure experiment.
func TestFailScenario(t *testing.T) {
	sc := FailScenario(DefaultScenario(), 0.8, 45*time.Second)
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	// Warm-up, then batches at 0, 10 s, 30 s and 1 min (the first offset
	// at or past 45 s).
	if len(sc.Publish) != 5 || sc.Messages != FailWarmup+4*FailBatch || sc.Batch != FailBatch || sc.Crash != 0.8 {
		t.Fatalf("schedule %+v", sc)
	}
	times := sc.publishTimes()
	if times[FailWarmup-1] >= int64(sc.CrashAt) || times[FailWarmup] != int64(sc.CrashAt) ||
		times[len(times)-1] != int64(sc.CrashAt+time.Minute)+int64(FailBatch-1)*int64(time.Second)/FailBatchRate {
		t.Errorf("crash at %v, publish times %v", sc.CrashAt, times)
	}
}
