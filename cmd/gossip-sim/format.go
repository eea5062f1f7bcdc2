package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/sim"
)

// table renders rows as aligned text or as Markdown.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer, markdown bool) {
	if markdown {
		fmt.Fprintf(w, "| %s |\n", strings.Join(t.head, " | "))
		seps := make([]string, len(t.head))
		for i := range seps {
			seps[i] = "---"
			if i > 0 {
				seps[i] = "--:"
			}
		}
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, r := range t.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
		return
	}
	width := make([]int, len(t.head))
	for _, r := range append([][]string{t.head}, t.rows...) {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range append([][]string{t.head}, t.rows...) {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// ms formats a duration in milliseconds; -1 is "never".
func ms(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	default:
		return fmt.Sprintf("%.1fms", v)
	}
}

func bytesStr(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 10<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

func wall(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func never(d sim.Dist) string {
	if d.Never == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d never)", d.Never)
}

// describe is the one-line description of a run's scenario.
func describe(r *sim.Report) string {
	return fmt.Sprintf("%d nodes, %s (%d links), %s", r.Scenario.Nodes, topoName(r.Scenario), r.Links, describeRest(r.Scenario))
}

func topoName(sc sim.Scenario) string {
	switch sc.Topology {
	case sim.TopoRandom:
		return fmt.Sprintf("random %d-regular", sc.Degree)
	case sim.TopoMembership:
		return fmt.Sprintf("membership overlay, k=%d chosen", sim.MembershipK(sc.Nodes, sc.FanoutExtra))
	}
	return sc.Topology
}

// describeRest describes everything but the nodes and the topology.
func describeRest(sc sim.Scenario) string {
	var s string
	if sc.Protocol == sim.ProtoPlumtree {
		s = fmt.Sprintf("plumtree, repair %s, loss %g%%, latency %v", sc.Repair, sc.Loss*100, sc.Latency)
	} else {
		s = fmt.Sprintf("fanout %s, loss %g%%, latency %v", sim.FanoutString(sc.Core.Fanout), sc.Loss*100, sc.Latency)
	}
	if sc.Core.AckTimeout != core.DefaultAckTimeout || sc.Core.MaxAttempts != core.DefaultMaxAttempts {
		s += fmt.Sprintf(", ack timeout %v, %d attempts", sc.Core.AckTimeout, sc.Core.MaxAttempts)
	}
	if sc.Proc > 0 {
		s += fmt.Sprintf(", proc %v", sc.Proc)
	}
	if sc.Crash > 0 {
		s += fmt.Sprintf(", crash %g%% at %v", sc.Crash*100, sc.CrashAt)
	}
	if sc.Partition > 0 {
		heal := "never"
		if sc.HealAt > 0 {
			heal = sc.HealAt.String()
		}
		s += fmt.Sprintf(", partition %g%% from %v to %s", sc.Partition*100, sc.PartitionAt, heal)
	}
	s += fmt.Sprintf(", %d messages", sc.Messages)
	if sc.Publishers > 0 {
		s += fmt.Sprintf(" from %d publishers", sc.Publishers)
	}
	switch {
	case len(sc.Publish) > 0:
		s += fmt.Sprintf(" in %d phases", len(sc.Publish))
	case sc.Rate > 0:
		s += fmt.Sprintf(" at %g/s", sc.Rate)
	}
	if sc.Start > 0 && len(sc.Publish) == 0 {
		s += fmt.Sprintf(" from %v", sc.Start)
	}
	return s + fmt.Sprintf(", seed %d", sc.Seed)
}

// printReport prints one run.
func printReport(w io.Writer, r *sim.Report, perMessage, markdown bool) {
	s := r.Summary
	fmt.Fprintf(w, "gossip-sim: %s\n\n", describe(r))
	t := table{head: []string{"per message", "p50", "p99", "max"}}
	for _, row := range []struct {
		name string
		d    sim.Dist
	}{
		{"time to 50% of reachable", s.T50},
		{"time to 99%", s.T99},
		{"time to 100%", s.T100},
		{"time to last delivery", s.TLast},
		{"time to all live nodes", s.TAll},
	} {
		t.add(row.name+never(row.d), ms(row.d.P50), ms(row.d.P99), ms(row.d.Max))
	}
	t.add("rounds (max hops)", fmt.Sprint(s.Hops.P50), "", fmt.Sprint(s.Hops.Max))
	t.write(w, markdown)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "delivery:  %.4f%% of %d expected (live nodes reachable from the origin); missed per message min %d, mean %.1f, max %d; %d of %d messages incomplete\n",
		100*s.DeliveryRatio, s.Expected, s.MissedMin, s.MissedMean, s.MissedMax, s.Incomplete, len(r.Messages))
	fmt.Fprintf(w, "reliability: %s mean, %s min over messages (fraction of the %d live nodes that got each message)\n",
		pct(s.Reliability.Mean), pct(s.Reliability.Min), r.Live)
	if r.Scenario.Protocol == sim.ProtoPlumtree {
		fmt.Fprintf(w, "cost:      %.2f copies per delivery (%d payload copies written, %d deliveries); RMR mean %.3f, max %.3f; mean hops %.2f\n",
			s.CopiesPerDelivery, s.Sends, s.Deliveries, s.RMR.Mean, s.RMR.Max, s.MeanHops)
		c := r.Counters
		fmt.Fprintf(w, "frames:    %d eager, %d announced (IHAVE), %d grafted, %d prunes, %d digests, %d sent for digests; %d repaired deliveries, %d tree swaps\n",
			c.EagerSent, c.IHavesSent, c.GraftsSent, c.PrunesSent, c.DigestsSent, c.SyncSent, c.Repaired, c.TreeSwaps)
		if st := r.Stream; st != nil {
			fmt.Fprintf(w, "streams:   %d envelopes (%d lost), %d breaks, %d reconnects (%d refused), %d re-sent, %d frames dropped, %d withdrawn\n",
				st.EnvelopesSent, st.EnvelopesLost, st.StreamBreaks, st.Reconnects, st.DialsRefused, st.Resent, st.FramesDropped, st.Withdrawn)
		}
		if m := r.Membership; m != nil {
			fmt.Fprintf(w, "overlay:   repair %s; %d live nodes without a live neighbour after the crash, %d at the end; degree %.1f at the end (%d links to dead nodes); %d chosen, %d removed, %d dropped\n",
				m.Mode, m.IsolatedAtCrash, m.IsolatedAtEnd, m.DegreeAtEnd, m.DeadNeighborsAtEnd, m.Added, m.Removed, m.Dropped)
			if d := m.Detection; d != nil && d.Pairs > 0 {
				src := "measured in this run"
				if m.Mode == sim.RepairModel {
					src = fmt.Sprintf("model: SWIM at %d nodes, ×%.2f, calibration %s", d.CalibrationNodes, d.Scale, wall(d.CalibrationWall))
				}
				fmt.Fprintf(w, "detection: crash → survivor marks it dead: p10 %s, p50 %s, p90 %s, p99 %s, max %s over %d pairs (%d never); %d false deaths (%s)\n",
					ms(d.P10), ms(d.P50), ms(d.P90), ms(d.P99), ms(d.Max), d.Pairs, d.Never, max(d.FalseDead, m.FalseDead), src)
			}
		}
	} else {
		fmt.Fprintf(w, "cost:      %.2f copies per delivery (%d sends, %d deliveries); RMR mean %.3f; %d retries, %d gave up; mean hops %.2f\n",
			s.CopiesPerDelivery, s.Sends, s.Deliveries, s.RMR.Mean, s.Retries, s.GaveUp, s.MeanHops)
	}
	if s.DuplicateDeliveries > 0 {
		fmt.Fprintf(w, "BUG:       %d duplicate deliveries (a node delivered a message twice)\n", s.DuplicateDeliveries)
	}
	st := r.Storage
	fmt.Fprintf(w, "storage:   at the end %d hot entries, %d remembered ids; TTL %v–%v (mean %v); diameter estimate %d–%d\n",
		st.Active, st.Seen, st.TTLMin.Round(time.Millisecond), st.TTLMax.Round(time.Millisecond), st.TTLMean.Round(time.Millisecond), st.DiameterMin, st.DiameterMax)
	if m := r.Perf.Memory; m != nil {
		// With few hot entries left the difference is noise.
		hot := "n/a (few hot entries left)"
		if m.ActiveAtEnd >= r.Scenario.Nodes {
			hot = bytesStr(m.PerHotEntry)
		}
		fmt.Fprintf(w, "memory:    per node %s idle, %s at the end, %s after decay; %s per hot entry, %s per remembered id; process %s\n",
			bytesStr(m.IdlePerNode), bytesStr(m.EndPerNode), bytesStr(m.DecayedPerNode),
			hot, bytesStr(m.PerRememberedID), bytesStr(float64(m.SysBytes)))
	}
	trunc := ""
	if s.Truncated {
		trunc = " (TRUNCATED at --max-time)"
	}
	fmt.Fprintf(w, "run:       virtual %v%s; wall %s (setup %s, events %s); %d events, %.2fM events/s\n",
		s.VirtualEnd.Round(time.Millisecond), trunc, wall(r.Perf.Wall), wall(r.Perf.SetupWall), wall(r.Perf.RunWall),
		r.Perf.Events, r.Perf.EventsPerSec/1e6)
	if len(r.Batches) > 0 {
		fmt.Fprintln(w)
		printBatches(w, r, markdown)
	}
	if perMessage {
		fmt.Fprintln(w)
		t := table{head: []string{"message", "origin", "published", "reachable", "delivered", "missed", "t50", "t99", "t100", "last", "max hops", "reliability", "copies", "RMR"}}
		for _, m := range r.Messages {
			t.add(m.Hash[:8], fmt.Sprint(m.Origin), ms(m.PublishedAt), fmt.Sprint(m.Reachable), fmt.Sprint(m.Delivered),
				fmt.Sprint(m.Missed), ms(m.T50), ms(m.T99), ms(m.T100), ms(m.TLast), fmt.Sprint(m.MaxHops),
				pct(m.Reliability), fmt.Sprint(m.Copies), rmr(m.RMR))
		}
		t.write(w, markdown)
	}
	fmt.Fprintln(w)
}

// pct formats a fraction as a percentage, with more digits near 100 %.
func pct(f float64) string {
	switch {
	case f == 1:
		return "100%"
	case f >= 0.99:
		return fmt.Sprintf("%.3f%%", 100*f)
	default:
		return fmt.Sprintf("%.2f%%", 100*f)
	}
}

func rmr(v float64) string {
	if v == -1 {
		return "—"
	}
	return fmt.Sprintf("%.3f", v)
}

// since formats a batch's publish time (relative to the crash, if any).
func since(d time.Duration, crash bool) string {
	if !crash {
		return ms(d)
	}
	if d < 0 {
		return "−" + ms(-d)
	}
	return "+" + ms(d)
}

// printBatches prints the batch table of a run.
func printBatches(w io.Writer, r *sim.Report, markdown bool) {
	crash := r.Scenario.Crash > 0
	when := "published"
	if crash {
		when = "published (after the crash)"
	}
	t := table{head: []string{"batch", when, "messages", "reliability mean", "min", "time to all p50", "max", "max hops", "copies/delivery", "RMR"}}
	for _, b := range r.Batches {
		t.add(fmt.Sprint(b.Index), since(b.From, crash)+" … "+since(b.To, crash), fmt.Sprint(b.Messages),
			pct(b.Reliability.Mean), pct(b.Reliability.Min), ms(b.T100.P50)+never(b.T100), ms(b.T100.Max),
			fmt.Sprint(b.MaxHops), fmt.Sprintf("%.2f", b.CopiesPerDelivery), fmt.Sprintf("%.3f", b.RMR.Mean))
	}
	t.write(w, markdown)
}

// printFailTable prints the failure sweep: per fraction and repair mode,
// the reliability of the first batch after the crash and of the last.
func printFailTable(w io.Writer, rs []*sim.Report, markdown bool) {
	if len(rs) == 0 {
		return
	}
	sc := rs[0].Scenario
	fmt.Fprintf(w, "failure sweep: %d nodes, %s, plumtree, loss %g%%, latency %v, seed %d; %d warm-up messages, then batches of %d after the crash (reliability: live nodes that got each message by the end)\n\n",
		sc.Nodes, topoName(sc), 100*sc.Loss, sc.Latency, sc.Seed, sim.FailWarmup, sim.FailBatch)
	t := table{head: []string{"crashed", "repair", "live", "isolated", "first message", "first batch mean", "min", "time to all p50", "last batch at", "mean", "min", "time to all p50", "RMR first / last", "wall"}}
	for _, r := range rs {
		var first, last *sim.BatchResult
		for k := range r.Batches {
			if b := &r.Batches[k]; b.Index >= 0 {
				if first == nil {
					first = b
				}
				last = b
			}
		}
		if first == nil {
			continue
		}
		iso := "—"
		if m := r.Membership; m != nil {
			iso = fmt.Sprint(m.IsolatedAtCrash)
		}
		t.add(fmt.Sprintf("%g%%", 100*r.Scenario.Crash), r.Scenario.Repair, fmt.Sprint(r.Live), iso,
			pct(r.Messages[first.First].Reliability), pct(first.Reliability.Mean), pct(first.Reliability.Min), ms(first.T100.P50)+never(first.T100),
			since(last.From, true), pct(last.Reliability.Mean), pct(last.Reliability.Min), ms(last.T100.P50)+never(last.T100),
			fmt.Sprintf("%.3f / %.3f", first.RMR.Mean, last.RMR.Mean), wall(r.Perf.Wall))
	}
	t.write(w, markdown)
	fmt.Fprintln(w)
}

// metric is one quantity of the growth table.
type metric struct {
	name string
	get  func(*sim.Report) float64 // NaN when unknown
	fmt  func(float64) string
}

func durMetric(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return float64(d)
}

func memMetric(f func(*sim.Memory) float64) func(*sim.Report) float64 {
	return func(r *sim.Report) float64 {
		if r.Perf.Memory == nil {
			return math.NaN()
		}
		return f(r.Perf.Memory)
	}
}

var growthMetrics = []metric{
	{"t50 p50", func(r *sim.Report) float64 { return durMetric(r.Summary.T50.P50) }, fmtDur},
	{"t99 p50", func(r *sim.Report) float64 { return durMetric(r.Summary.T99.P50) }, fmtDur},
	{"last p50", func(r *sim.Report) float64 { return durMetric(r.Summary.TLast.P50) }, fmtDur},
	{"last max", func(r *sim.Report) float64 { return durMetric(r.Summary.TLast.Max) }, fmtDur},
	{"rounds p50", func(r *sim.Report) float64 { return float64(r.Summary.Hops.P50) }, fmtNum},
	{"rounds max", func(r *sim.Report) float64 { return float64(r.Summary.Hops.Max) }, fmtNum},
	{"mean hops", func(r *sim.Report) float64 { return r.Summary.MeanHops }, fmtNum},
	{"copies/delivery", func(r *sim.Report) float64 { return r.Summary.CopiesPerDelivery }, fmtNum},
	{"missed %", func(r *sim.Report) float64 { return 100 * (1 - r.Summary.DeliveryRatio) }, fmtNum},
	{"mem/node idle", memMetric(func(m *sim.Memory) float64 { return m.IdlePerNode }), bytesStr},
	{"mem/node end", memMetric(func(m *sim.Memory) float64 { return m.EndPerNode }), bytesStr},
	{"mem/node decayed", memMetric(func(m *sim.Memory) float64 { return m.DecayedPerNode }), bytesStr},
}

func fmtDur(v float64) string {
	if math.IsNaN(v) {
		return "never"
	}
	return ms(time.Duration(v))
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// printGrowth prints how the figures of a sweep grow with N: one column per
// N, then the log-log slope d ln(y)/d ln(N) from the first to the last N
// (0: flat, 1: linear; log N growth shows as a small, shrinking slope) and
// the change per ×10 of N (constant for log N growth).
func printGrowth(w io.Writer, rs []*sim.Report, markdown bool) {
	first, last := rs[0], rs[len(rs)-1]
	fmt.Fprintf(w, "growth with N: %s, %s\n\n", topoName(first.Scenario), describeRest(first.Scenario))
	head := []string{"metric"}
	for _, r := range rs {
		head = append(head, fmt.Sprintf("N=%d", r.Scenario.Nodes))
	}
	head = append(head, "slope", "per ×10 N")
	t := table{head: head}
	decades := math.Log10(float64(last.Scenario.Nodes) / float64(first.Scenario.Nodes))
	for _, m := range growthMetrics {
		row := []string{m.name}
		for _, r := range rs {
			row = append(row, m.fmt(m.get(r)))
		}
		y0, y1 := m.get(first), m.get(last)
		slope, step := "—", "—"
		if decades > 0 && !math.IsNaN(y0) && !math.IsNaN(y1) {
			if y0 > 0 && y1 > 0 {
				v := math.Log(y1/y0) / (decades * math.Ln10)
				if math.Abs(v) < 0.005 {
					v = 0
				}
				slope = fmt.Sprintf("%.2f", v)
			}
			d := (y1 - y0) / decades
			sign := "+"
			if d < 0 {
				sign, d = "−", -d
			}
			step = sign + m.fmt(d)
		}
		t.add(append(row, slope, step)...)
	}
	perf := []string{"wall"}
	eps := []string{"events/s"}
	for _, r := range rs {
		perf = append(perf, wall(r.Perf.Wall))
		eps = append(eps, fmt.Sprintf("%.2fM", r.Perf.EventsPerSec/1e6))
	}
	t.add(append(perf, "", "")...)
	t.add(append(eps, "", "")...)
	t.write(w, markdown)
	fmt.Fprintln(w)
}
