package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Run starts impl with cfg, runs the scenario ph with payloads of payload
// bytes, closes impl and returns the figures. It returns an error only
// when the run could not be carried out (Start failed, ctx ended); a
// system that delivers badly is a result, not an error.
func Run(ctx context.Context, impl Impl, cfg ClusterConfig, ph Phases, payload int, log *slog.Logger) (*RunResult, error) {
	if err := ph.Validate(); err != nil {
		return nil, err
	}
	if err := ValidatePayloadSize(payload); err != nil {
		return nil, err
	}
	rec, err := NewRecorder(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	if cfg.MaxPayload < payload {
		cfg.MaxPayload = payload
	}
	res := &RunResult{
		Impl: impl.Name(), Profile: cfg.Profile, Nodes: cfg.Nodes, Payload: payload,
		Degree: cfg.Degree, Phases: ph,
	}
	r := &runner{impl: impl, rec: rec, ph: ph, payload: payload, nodes: cfg.Nodes, log: log}

	t0 := time.Now()
	if err := impl.Start(ctx, cfg, rec.Deliver); err != nil {
		closeErr := impl.Close()
		return nil, errors.Join(fmt.Errorf("%s: start: %w", impl.Name(), err), closeErr)
	}
	res.StartupSec = time.Since(t0).Seconds()
	res.Describe = impl.Describe()
	log.Info("started", "took", time.Since(t0).Round(time.Millisecond))

	runErr := r.scenario(ctx, res)

	t1 := time.Now()
	closeErr := impl.Close()
	res.CloseSec = time.Since(t1).Seconds()
	res.AppDuplicates, res.SelfReceipts, res.Unknown = rec.Counters()
	if err := errors.Join(runErr, closeErr); err != nil {
		return res, err
	}
	return res, nil
}

type runner struct {
	impl    Impl
	rec     *Recorder
	ph      Phases
	payload int
	nodes   int
	log     *slog.Logger
	phaseNo uint64
	idleCPU float64 // CPU-seconds per second when idle
}

func (r *runner) scenario(ctx context.Context, res *RunResult) error {
	var err error
	if res.WarmUp, _, err = r.phase(ctx, "warm-up", r.ph.LatencyRate, r.ph.WarmUp.D(), r.ph.Drain.D(), false); err != nil {
		return err
	}

	runtime.GC() // start idle from a collected heap, the same for everyone
	wm0, wb0 := r.impl.Wire()
	c0, t0 := CPUTime(), time.Now()
	select {
	case <-time.After(r.ph.Idle.D()):
	case <-ctx.Done():
		return ctx.Err()
	}
	c1, dur := CPUTime(), time.Since(t0)
	wm1, wb1 := r.impl.Wire()
	res.Idle = IdleResult{
		DurationSec: dur.Seconds(), CPUSec: (c1 - c0).Seconds(), CPUPerSec: (c1 - c0).Seconds() / dur.Seconds(),
		WireMsgs: wm1 - wm0, WireBytes: wb1 - wb0,
	}
	r.idleCPU = res.Idle.CPUPerSec
	r.log.Info("idle", "cpu_per_s", fmt.Sprintf("%.4f", r.idleCPU), "wire_msgs", res.Idle.WireMsgs)

	if res.Latency, _, err = r.phase(ctx, "latency", r.ph.LatencyRate, r.ph.Latency.D(), r.ph.Drain.D(), false); err != nil {
		return err
	}
	res.LowRateRSSPerNodeMiB = float64(PeakRSS()) / (1 << 20) / float64(r.nodes)

	var heldCPU, heldMsgs float64
	step := func(name string, rate float64) (bool, error) {
		st, _, err := r.phase(ctx, name, rate, r.ph.Step.D(), r.ph.StepDrain.D(), false)
		if err != nil {
			return false, err
		}
		st.Holds, st.Reason = r.ph.Judge(st)
		res.Ramp = append(res.Ramp, st)
		r.log.Info("ramp step", "rate", rate, "holds", st.Holds, "reason", st.Reason)
		if st.Holds {
			res.MaxHoldingRate = max(res.MaxHoldingRate, rate)
			heldCPU += st.CPUNetSec
			heldMsgs += float64(st.Scheduled)
		}
		return st.Holds, nil
	}
	failed := 0.0 // the lowest rate that did not hold
	for _, rate := range r.ph.Rates() {
		holds, err := step(fmt.Sprintf("ramp-%g", rate), rate)
		if err != nil {
			return err
		}
		if !holds {
			failed = rate
			break
		}
	}
	for range r.ph.RampRefine {
		rate, ok := r.ph.Refine(res.MaxHoldingRate, failed)
		if !ok {
			break
		}
		holds, err := step(fmt.Sprintf("ramp-refine-%g", rate), rate)
		if err != nil {
			return err
		}
		if !holds {
			failed = rate
		}
	}
	if heldMsgs > 0 {
		res.CPUPer1k = 1000 * heldCPU / heldMsgs
		res.CPUBasis = "ramp steps that held"
	} else {
		res.CPUPer1k = res.Latency.CPUPer1k
		res.CPUBasis = "latency phase (no ramp step held)"
	}
	if r.ph.Overload > 0 {
		if res.Overload, err = r.overload(ctx, res); err != nil {
			return err
		}
	}
	return nil
}

// overload runs the overload phase (see Phases) and counts, among the
// acknowledged messages only, those some receiver lacks after the drain.
func (r *runner) overload(ctx context.Context, res *RunResult) (*OverloadResult, error) {
	rate, basis := r.ph.OverloadRate(res.MaxHoldingRate, res.Ramp)
	o := &OverloadResult{Factor: r.ph.OverloadFactor, BaseRate: rate / r.ph.OverloadFactor, Basis: basis}
	r.log.Info("overload", "rate", rate, "basis", basis, "for", r.ph.Overload.D())
	st, sp, err := r.phase(ctx, fmt.Sprintf("overload-%g", rate), rate, r.ph.Overload.D(), r.ph.OverloadDrain.D(), true)
	if err != nil {
		return nil, err
	}
	perNode := make([]int, r.nodes)
	for id := sp.first; id < sp.last; id++ {
		switch m := r.rec.Snapshot(id); {
		case m.State == statePublished && m.Count < r.rec.Receivers():
			o.Lost++
			o.LostReceipts += r.rec.Lacking(id, perNode)
		case m.State == stateFailed && m.Count > 0:
			o.FailedButDelivered++
		}
	}
	o.LostMaxPerNode = slices.Max(perNode)
	o.Phase = st
	if st.DurationSec > 0 {
		o.AckedRate = float64(st.Published) / st.DurationSec
	}
	o.PublishSec = float64(sp.published-sp.start) / 1e9
	o.DrainSec = float64(sp.end-sp.published) / 1e9
	o.Drained = sp.drained
	lvl := slog.LevelInfo
	if o.Lost > 0 {
		lvl = slog.LevelWarn
	}
	r.log.Log(ctx, lvl, "overload result", "offered", st.Scheduled, "acknowledged", st.Published, "refused", st.PublishErrors,
		"not_attempted", st.Unpublished, "kinds", st.PublishErrorKinds, "lost", o.Lost, "lost_max_per_node", o.LostMaxPerNode,
		"drain_s", fmt.Sprintf("%.2f", o.DrainSec), "drained", o.Drained)
	return o, nil
}

// span is where a phase's messages and times lie, for the overload
// accounting: ids [first, last), and ns since the Recorder's epoch.
type span struct {
	first, last uint64
	start       int64 // the phase began
	published   int64 // the last Publish call returned
	end         int64 // the drain ended
	drained     bool  // every message waited for reached every receiver
}

// phase publishes at rate (open-loop Poisson) for dur, drains for up to
// drain, and measures. Latency is measured from each message's scheduled
// time, so a pacer held up by a slow Publish does not hide the delay
// (no coordinated omission); so is the wait for one of the Window
// publish slots. If the pacer falls so far behind that a message's
// Publish would start after the end of the drain window (dur + drain
// from the start), it stops and counts the rest of the schedule as
// unpublished (never delivered). With overload set, that cutoff is the
// end of dur (what has not started by then was held back by
// backpressure), and the drain waits only for acknowledged messages.
func (r *runner) phase(ctx context.Context, name string, rate float64, dur, drain time.Duration, overload bool) (PhaseResult, span, error) {
	r.phaseNo++
	rnd := rand.New(rand.NewPCG(uint64(r.ph.Seed), r.phaseNo))
	res := PhaseResult{Name: name, OfferedRate: rate, DurationSec: dur.Seconds()}

	dups0, _, _ := r.rec.Counters()
	wm0, wb0 := r.impl.Wire()
	cpu0 := CPUTime()
	first := r.rec.Next()
	start := r.rec.Now()
	cutoff := start + int64(dur+drain)
	if overload {
		cutoff = start + int64(dur)
	}
	sp := span{first: first, start: start}

	// The pacer: one goroutine, the caller's. Each Publish runs on a
	// goroutine of its own, at most Window at once; the pacer waits for a
	// free slot, and every Publish has returned before the drain starts.
	var (
		wg        sync.WaitGroup
		slots     = make(chan struct{}, r.ph.Window())
		pubErrors atomic.Int64
		kindsMu   sync.Mutex
		kinds     map[string]int
	)
	defer wg.Wait() // also when ctx ends mid-phase
	unpublished := 0
	// In an overload phase the end of the offer window also ends the
	// wait for a slot: what has not started by then was held back.
	var stop <-chan time.Time
	if overload {
		t := time.NewTimer(time.Duration(cutoff - r.rec.Now()))
		defer t.Stop()
		stop = t.C
	}
	stopped := false
	for t := rnd.ExpFloat64() / rate; t < dur.Seconds(); t += rnd.ExpFloat64() / rate {
		node := rnd.IntN(r.nodes)
		sched := start + int64(t*1e9)
		if stopped {
			unpublished++
			continue
		}
		if d := sched - r.rec.Now(); d > 0 {
			if err := sleep(ctx, time.Duration(d)); err != nil {
				return res, sp, err
			}
		}
		select {
		case slots <- struct{}{}:
		case <-stop:
			stopped = true
			unpublished++
			continue
		case <-ctx.Done():
			return res, sp, ctx.Err()
		}
		if r.rec.Now() > cutoff {
			<-slots
			unpublished++
			continue
		}
		id, err := r.rec.Add(sched, node)
		if err != nil {
			<-slots
			return res, sp, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p := MakePayload(id, r.payload)
			pubAt := r.rec.Now()
			err := r.impl.Publish(node, p)
			r.rec.Published(id, pubAt, err)
			if err == nil {
				return
			}
			if pubErrors.Add(1) == 1 {
				r.log.Warn("publish failed", "phase", name, "node", node, "err", err)
			}
			kind := ErrorKind(err)
			kindsMu.Lock()
			if kinds == nil {
				kinds = map[string]int{}
			}
			kinds[kind]++
			kindsMu.Unlock()
		}()
	}
	wg.Wait()
	res.PublishErrors = int(pubErrors.Load())
	res.PublishErrorKinds = kinds
	last := r.rec.Next()
	sp.last, sp.published = last, r.rec.Now()

	// The drain: until every message (every acknowledged one, in an
	// overload phase) reached every receiver, or the window ends.
	end := max(r.rec.Now(), start+int64(dur)) + int64(drain)
	for next := first; ; {
		for next < last && (r.rec.Complete(next) || overload && !r.rec.Acknowledged(next)) {
			next++
		}
		if next == last {
			sp.drained = true
			break
		}
		if r.rec.Now() >= end {
			break
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return res, sp, err
		}
	}
	windowEnd := r.rec.Now()
	sp.end = windowEnd
	cpu1 := CPUTime()
	wm1, wb1 := r.impl.Wire()
	dups1, _, _ := r.rec.Counters()

	r.measure(&res, first, last, unpublished, windowEnd)
	res.WindowSec = float64(windowEnd-start) / 1e9
	res.AppDuplicates = dups1 - dups0
	res.WireMsgs, res.WireBytes = wm1-wm0, wb1-wb0
	if res.FirstReceipts > 0 {
		res.CopiesPerDelivery = float64(res.WireMsgs) / float64(res.FirstReceipts)
		res.BytesPerDelivery = float64(res.WireBytes) / float64(res.FirstReceipts)
	}
	res.CPUSec = (cpu1 - cpu0).Seconds()
	res.CPUNetSec = res.CPUSec - r.idleCPU*res.WindowSec
	if res.Scheduled > 0 {
		res.CPUPer1k = 1000 * res.CPUNetSec / float64(res.Scheduled)
	}
	r.log.Info("phase", "name", name, "scheduled", res.Scheduled, "delivery", fmt.Sprintf("%.5f", res.DeliveryRatio),
		"t100_p50_ms", float64(res.T100.P50), "t100_p99_ms", float64(res.T100.P99), "window_s", fmt.Sprintf("%.2f", res.WindowSec))
	return res, sp, nil
}

// measure fills the delivery and latency figures of messages [first, last)
// plus unpublished messages that were never registered. Receipts after
// windowEnd are not counted as reaching a quantile.
func (r *runner) measure(res *PhaseResult, first, last uint64, unpublished int, windowEnd int64) {
	n := int(last-first) + unpublished
	res.Scheduled, res.Unpublished = n, unpublished
	t50 := make([]Millis, 0, n)
	t99 := make([]Millis, 0, n)
	t100 := make([]Millis, 0, n)
	late := make([]Millis, 0, n)
	since := func(t, sched int64) Millis {
		if t == 0 || t > windowEnd {
			return Inf
		}
		return ToMillis(t - sched)
	}
	for id := first; id < last; id++ {
		m := r.rec.Snapshot(id)
		if m.State == statePublished {
			res.Published++
		}
		late = append(late, ToMillis(max(0, m.PubAt-m.Sched)))
		res.FirstReceipts += uint64(m.Count)
		if m.TAll != 0 && m.TAll <= windowEnd {
			res.Complete++
		}
		t50 = append(t50, since(m.T50, m.Sched))
		t99 = append(t99, since(m.T99, m.Sched))
		t100 = append(t100, since(m.TAll, m.Sched))
	}
	for range unpublished {
		t50, t99, t100, late = append(t50, Inf), append(t99, Inf), append(t100, Inf), append(late, Inf)
	}
	if n > 0 {
		res.DeliveryRatio = float64(res.FirstReceipts) / (float64(n) * float64(r.rec.Receivers()))
	}
	if res.DurationSec > 0 {
		res.DeliveredRate = float64(res.FirstReceipts) / float64(r.rec.Receivers()) / res.DurationSec
	}
	res.Late = Summarise(late)
	res.T50, res.T99, res.T100 = Summarise(t50), Summarise(t99), Summarise(t100)
	res.T100CDF = CDF(t100)
	res.T100Hist = NewHistogram(t100)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
