package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

// columns of the table, shared by the terminal and Markdown versions.
var columns = []string{
	"system", "profile", "N", "payload",
	"to 50% ms p50/p99/max", "to 99% ms p50/p99/max", "to 100% ms p50/p99/max",
	"delivery", "copies/deliv", "bytes/deliv", "max rate msg/s", "CPU-s/1k msgs latency | ramp", "RSS/node MiB low rate | run", "app dups",
}

func row(r *harness.RunResult) []string {
	if r.Error != "" && r.Latency.Scheduled == 0 {
		return []string{r.Impl, string(r.Profile), fmt.Sprint(r.Nodes), sizeString(r.Payload),
			"ERROR: " + firstLine(r.Error), "", "", "", "", "", "", "", "", ""}
	}
	l := r.Latency
	return []string{
		r.Impl, string(r.Profile), fmt.Sprint(r.Nodes), sizeString(r.Payload),
		triple(l.T50), triple(l.T99), triple(l.T100),
		deliveryString(l),
		fmt.Sprintf("%.2f", l.CopiesPerDelivery),
		fmt.Sprintf("%.0f", l.BytesPerDelivery),
		rateString(r),
		fmt.Sprintf("%.2f | %s", l.CPUPer1k, rampCPU(r)),
		fmt.Sprintf("%.1f | %.1f", r.LowRateRSSPerNodeMiB, r.RSSPerNodeMiB),
		fmt.Sprint(r.AppDuplicates),
	}
}

// rampCPU is the CPU figure over the ramp steps that held, "-" if none.
func rampCPU(r *harness.RunResult) string {
	if r.MaxHoldingRate == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.CPUPer1k)
}

func printTable(w io.Writer, rep *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, r := range rep.Runs {
		fmt.Fprintln(tw, strings.Join(row(r), "\t"))
	}
	tw.Flush()
	fmt.Fprintln(w, legend(rep))
	if !hasOverload(rep) {
		return
	}
	fmt.Fprintln(w, "\nOverload:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(overloadColumns, "\t"))
	for _, r := range rep.Runs {
		if r.Overload != nil {
			fmt.Fprintln(tw, strings.Join(overloadRow(r), "\t"))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, overloadLegend(rep))
}

// overloadColumns are the columns of the overload table.
var overloadColumns = []string{
	"system", "profile", "N", "payload", "offered msg/s", "offered", "acked", "failed (by kind)", "not attempted",
	"acked msg/s", "lost (max/node)", "app dups", "drain s",
}

func hasOverload(rep *Report) bool {
	for _, r := range rep.Runs {
		if r.Overload != nil {
			return true
		}
	}
	return false
}

func overloadRow(r *harness.RunResult) []string {
	o, st := r.Overload, r.Overload.Phase
	offered := fmt.Sprintf("%g (%g× %g)", st.OfferedRate, o.Factor, o.BaseRate)
	if o.Basis != "max holding rate" {
		offered += " [" + o.Basis + "]"
	}
	lost := fmt.Sprint(o.Lost)
	if o.Lost > 0 {
		lost = fmt.Sprintf("%d (max %d)", o.Lost, o.LostMaxPerNode)
		if promisesNoLoss(r.Impl) {
			lost += " LOSS"
		}
	}
	drain := fmt.Sprintf("%.2f", o.DrainSec)
	if !o.Drained {
		drain += " (bound)"
	}
	return []string{
		r.Impl, string(r.Profile), fmt.Sprint(r.Nodes), sizeString(r.Payload),
		offered, fmt.Sprint(st.Scheduled), fmt.Sprint(st.Published), failedKinds(st), fmt.Sprint(st.Unpublished),
		fmt.Sprintf("%.0f", o.AckedRate), lost, fmt.Sprint(st.AppDuplicates), drain,
	}
}

// overloadSummary is one line for the progress log.
func overloadSummary(o *harness.OverloadResult) string {
	st := o.Phase
	return fmt.Sprintf("%g msg/s offered (%d), %d acknowledged (%.0f msg/s), failed %s, %d not attempted; lost %d; drain %.2f s",
		st.OfferedRate, st.Scheduled, st.Published, o.AckedRate, failedKinds(st), st.Unpublished, o.Lost, o.DrainSec)
}

// failedKinds is the number of failed publishes with their kinds
// (RE = ResourceExhausted, DE = DeadlineExceeded).
func failedKinds(st harness.PhaseResult) string {
	if st.PublishErrors == 0 {
		return "0"
	}
	short := map[string]string{"ResourceExhausted": "RE", "DeadlineExceeded": "DE"}
	kinds := make([]string, 0, len(st.PublishErrorKinds))
	for k := range st.PublishErrorKinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		name := k
		if s, ok := short[k]; ok {
			name = s
		}
		parts[i] = fmt.Sprintf("%s %d", name, st.PublishErrorKinds[k])
	}
	return fmt.Sprintf("%d (%s)", st.PublishErrors, strings.Join(parts, ", "))
}

func overloadLegend(rep *Report) string {
	p := rep.Phases
	return fmt.Sprintf(`Overload: after the ramp, %g× the max holding rate (the highest rate tried when none held) for %v, the same %d concurrent publishers; then a drain of up to %v until every acknowledged publish reached all N-1 other nodes.
Offered: messages the schedule called for; acked: Publish returned nil; failed: Publish returned an error (RE = ResourceExhausted: refused, DE = DeadlineExceeded); not attempted: the publishers were still blocked in Publish when the window ended (slowed).
Lost: acknowledged messages some node lacked after the drain (max: the most any one node lacked); must be 0 for this project's streaming systems (LOSS fails the suite; gossip-unary, the seed's push, does not repair a forward it gave up, so its figure is only reported); a failed publish is never a loss. Drain: from the last Publish's return until all acknowledged messages were delivered ("bound": they never were).`,
		p.OverloadFactor, p.Overload.D(), p.Window(), p.OverloadDrain.D())
}

func legend(rep *Report) string {
	p := rep.Phases
	return fmt.Sprintf(`Latency phase: %g msg/s (open-loop Poisson, random publishers, up to %d Publish calls in flight) for %v; latencies from each message's scheduled publish time until 50%%/99%%/100%% of the N-1 other nodes had it, p50/p99/max over messages ("∞": some never did).
Delivery and copies/bytes per delivery: latency phase; wire counts of each system's transport / first receipts.
Max rate: the highest ramp step (%g, %g, … %g msg/s, %v each + up to %v drain; then %d refinement step(s) at the geometric mean of the highest rate that held and the lowest that did not) with delivery ≥ %g%% and p99 time-to-100%% < %v.
CPU-s/1k msgs: CPU-seconds of the whole process (N nodes + harness) per 1,000 published messages, minus the idle phase's CPU rate × the window; over the latency phase | over the ramp steps that held ("-": none held).
RSS/node: the child process's peak RSS / N, harness included: up to the end of the latency phase | over the whole run (including the overloaded ramp step and the overload phase). App dups: receipts of a message a node already had.`,
		p.LatencyRate, p.Window(), p.Latency.D(), p.RampStart, p.RampStart*p.RampFactor, p.RampMax, p.Step.D(), p.StepDrain.D(), p.RampRefine,
		100*p.HoldDelivery, p.HoldP99.D())
}

// writeMarkdown writes the table, the machine, the scenario and what each
// system set, for docs/PERFORMANCE.md.
func writeMarkdown(path string, rep *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := &strings.Builder{}
	fmt.Fprintf(w, "Run %s, %.0f s wall, `%s`.\n\n", rep.Started.Format("2006-01-02 15:04 MST"), rep.WallSec, strings.Join(rep.Command[1:], " "))
	m := rep.Machine
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %d MiB RAM, Linux %s, %s %s.\n", m.CPUs, m.CPUModel, m.MemTotalMB, m.Kernel, m.GoVersion, m.OSArch)
	other := 0.0
	for _, r := range rep.Runs {
		other = max(other, r.OtherCPUShare)
	}
	fmt.Fprintf(w, "Other processes used at most %.0f%% of the machine's CPU time during any run (more makes every figure worse).\n\n", 100*other)
	fmt.Fprintf(w, "| %s |\n|%s\n", mdCells(columns), strings.Repeat("---|", len(columns)))
	for _, r := range rep.Runs {
		fmt.Fprintf(w, "| %s |\n", mdCells(row(r)))
	}
	fmt.Fprintf(w, "\n%s\n\n", legend(rep))
	if hasOverload(rep) {
		fmt.Fprintf(w, "| %s |\n|%s\n", mdCells(overloadColumns), strings.Repeat("---|", len(overloadColumns)))
		for _, r := range rep.Runs {
			if r.Overload != nil {
				fmt.Fprintf(w, "| %s |\n", mdCells(overloadRow(r)))
			}
		}
		fmt.Fprintf(w, "\n%s\n\n", overloadLegend(rep))
	}
	fmt.Fprintf(w, "Ramp steps (offered → delivered msg/s, p99 time-to-100%%, verdict):\n\n")
	for _, r := range rep.Runs {
		fmt.Fprintf(w, "* %s %s N=%d %s:", r.Impl, r.Profile, r.Nodes, sizeString(r.Payload))
		for _, s := range r.Ramp {
			v := "holds"
			if !s.Holds {
				v = s.Reason
			}
			fmt.Fprintf(w, " %g → %.0f (%s, %s);", s.OfferedRate, s.DeliveredRate, ms(s.T100.P99), v)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nWhat each system set:\n\n")
	seen := map[string]bool{}
	for _, r := range rep.Runs {
		k := r.Impl + "/" + string(r.Profile)
		if seen[k] || len(r.Describe) == 0 {
			continue
		}
		seen[k] = true
		fmt.Fprintf(w, "* **%s, %s**\n", r.Impl, r.Profile)
		for _, d := range r.Describe {
			fmt.Fprintf(w, "  * %s\n", d)
		}
	}
	_, err = f.WriteString(w.String())
	return errors.Join(err, f.Close())
}

// deliveryString is the delivery ratio, with the failed publishes if any.
func deliveryString(p harness.PhaseResult) string {
	s := fmt.Sprintf("%.3f%%", 100*p.DeliveryRatio)
	if p.PublishErrors > 0 {
		s += fmt.Sprintf(" (%d/%d publishes failed)", p.PublishErrors, p.Scheduled)
	}
	return s
}

// mdCells joins cells into a Markdown table row, escaping the "|" some
// cells contain.
func mdCells(cells []string) string {
	esc := make([]string, len(cells))
	for i, c := range cells {
		esc[i] = strings.ReplaceAll(c, "|", `\|`)
	}
	return strings.Join(esc, " | ")
}

func triple(q harness.Quantiles) string {
	return ms(q.P50) + "/" + ms(q.P99) + "/" + ms(q.Max)
}

func ms(m harness.Millis) string {
	switch {
	case m.IsInf():
		return "∞"
	case m < 10:
		return fmt.Sprintf("%.2f", float64(m))
	case m < 100:
		return fmt.Sprintf("%.1f", float64(m))
	}
	return fmt.Sprintf("%.0f", float64(m))
}

func rateString(r *harness.RunResult) string {
	switch {
	case r.MaxHoldingRate == 0 && len(r.Ramp) > 0:
		return fmt.Sprintf("<%g", r.Ramp[0].OfferedRate)
	case r.MaxHoldingRate == 0:
		return "-"
	case len(r.Ramp) > 0 && r.Ramp[len(r.Ramp)-1].Holds && r.MaxHoldingRate >= r.Phases.RampMax:
		return fmt.Sprintf("≥%g", r.MaxHoldingRate)
	}
	return fmt.Sprintf("%g", r.MaxHoldingRate)
}

func sizeString(b int) string {
	switch {
	case b >= 1024 && b%1024 == 0:
		return fmt.Sprintf("%d KiB", b/1024)
	}
	return fmt.Sprintf("%d B", b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
