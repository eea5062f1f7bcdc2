package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Duration is a time.Duration written to JSON as a string ("1.5s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Phases is the scenario every system runs, in this order:
//
//  1. warm-up: publish at LatencyRate for WarmUp, then drain (connections
//     are dialled, caches and meshes settle); reported, not judged;
//  2. idle: publish nothing for Idle; its CPU rate is subtracted from the
//     CPU of every later phase;
//  3. latency: publish at LatencyRate (open-loop Poisson, publishers
//     uniformly at random) for Latency, then drain for up to Drain;
//  4. ramp: steps at RampStart, RampStart·RampFactor, … ≤ RampMax msg/s,
//     each publishing for Step then draining for up to StepDrain; the ramp
//     stops after the first step that does not hold (it is recorded);
//  5. refine: RampRefine more steps between the highest step that held
//     and the lowest that did not, each at their geometric mean (rounded
//     to a whole msg/s), so the maximum rate is known to a factor of
//     RampFactor^(1/2^RampRefine) instead of RampFactor (√2 with one
//     refinement of a doubling ramp). There is nothing to refine when the
//     first step fails or every step holds;
//  6. overload: publish at OverloadFactor × the maximum holding rate (the
//     highest ramp rate tried when none held; the latency rate without a
//     ramp) for Overload, then drain for up to OverloadDrain, until every
//     acknowledged publish (Publish returned nil) reached every receiver.
//     The pacer stops at the end of Overload: a message whose Publish had
//     not started by then was held back by the publisher's backpressure
//     and is counted as not attempted. An acknowledged message that some
//     receiver lacks after the drain is lost (see OverloadResult); a
//     refused publish is not. Overload 0 skips the phase.
//
// In every publishing phase up to Publishers Publish calls run at once,
// each on its own goroutine, as an application with concurrent publishers
// would call it: a system whose Publish waits (for an acknowledgement, a
// commit) is not limited to one call per wait. The pacer waits for a free
// slot when all are taken, and that wait counts as latency (it is measured
// from the scheduled time).
//
// A drain ends early once every message of its phase has reached every
// receiver. A step holds when its delivery ratio is at least HoldDelivery
// and the 99th percentile over its messages of the time until 100% of the
// receivers had the message is below HoldP99 (see Judge).
type Phases struct {
	WarmUp       Duration `json:"warm_up"`
	Idle         Duration `json:"idle"`
	LatencyRate  float64  `json:"latency_rate"`
	Latency      Duration `json:"latency"`
	Drain        Duration `json:"drain"`
	RampStart    float64  `json:"ramp_start"`
	RampFactor   float64  `json:"ramp_factor"`
	RampMax      float64  `json:"ramp_max"`
	RampRefine   int      `json:"ramp_refine"`
	Step         Duration `json:"step"`
	StepDrain    Duration `json:"step_drain"`
	HoldDelivery float64  `json:"hold_delivery"`
	HoldP99      Duration `json:"hold_p99"`
	// Publishers is the most Publish calls in flight at once (0, as in
	// results written before it existed, means 1: one call at a time).
	Publishers int `json:"publishers"`
	// Overload is how long the overload phase publishes (0: no overload
	// phase, as in results written before it existed); OverloadFactor
	// multiplies the maximum holding rate; OverloadDrain bounds the wait
	// for the acknowledged messages to reach every receiver.
	Overload       Duration `json:"overload"`
	OverloadFactor float64  `json:"overload_factor"`
	OverloadDrain  Duration `json:"overload_drain"`
	// Seed seeds the schedules and the choice of publishers, so every
	// system sees the same sequence of (time, publisher).
	Seed int64 `json:"seed"`
}

// DefaultPublishers is Phases.Publishers in the full and quick suites:
// enough for a Publish that waits about 10 ms (an fsynced commit on a
// loaded disk) at 6,400 msg/s (Little's law: 64 in flight).
const DefaultPublishers = 64

// FullPhases is the scenario of `make bench`.
func FullPhases() Phases {
	return Phases{
		WarmUp: Duration(3 * time.Second), Idle: Duration(5 * time.Second),
		LatencyRate: 50, Latency: Duration(20 * time.Second), Drain: Duration(5 * time.Second),
		RampStart: 100, RampFactor: 2, RampMax: 102400, RampRefine: 2,
		Step: Duration(5 * time.Second), StepDrain: Duration(5 * time.Second),
		HoldDelivery: 0.999, HoldP99: Duration(time.Second), Publishers: DefaultPublishers,
		Overload: Duration(30 * time.Second), OverloadFactor: 3, OverloadDrain: Duration(30 * time.Second), Seed: 1,
	}
}

// QuickPhases is the scenario of `make bench-quick`: the same shape,
// shorter phases.
func QuickPhases() Phases {
	return Phases{
		WarmUp: Duration(time.Second), Idle: Duration(time.Second),
		LatencyRate: 50, Latency: Duration(4 * time.Second), Drain: Duration(2 * time.Second),
		RampStart: 100, RampFactor: 2, RampMax: 102400, RampRefine: 1,
		Step: Duration(2 * time.Second), StepDrain: Duration(2 * time.Second),
		HoldDelivery: 0.999, HoldP99: Duration(time.Second), Publishers: DefaultPublishers,
		Overload: Duration(10 * time.Second), OverloadFactor: 3, OverloadDrain: Duration(15 * time.Second), Seed: 1,
	}
}

// Validate rejects a scenario that cannot run.
func (p Phases) Validate() error {
	var errs []error
	if p.WarmUp < 0 || p.Idle < 0 || p.Latency < 0 || p.Drain < 0 || p.Step < 0 || p.StepDrain < 0 {
		errs = append(errs, errors.New("phase durations must not be negative"))
	}
	if p.Idle <= 0 {
		errs = append(errs, errors.New("idle must be positive (its CPU is subtracted)"))
	}
	if p.LatencyRate <= 0 {
		errs = append(errs, errors.New("latency rate must be positive"))
	}
	if p.RampMax > 0 && (p.RampStart <= 0 || p.RampFactor <= 1 || p.Step <= 0) {
		errs = append(errs, fmt.Errorf("ramp needs a positive start, a factor > 1 and a positive step (got %g, %g, %v)", p.RampStart, p.RampFactor, p.Step.D()))
	}
	if p.Publishers < 0 {
		errs = append(errs, fmt.Errorf("publishers must not be negative (got %d)", p.Publishers))
	}
	if p.RampRefine < 0 {
		errs = append(errs, fmt.Errorf("ramp refinements must not be negative (got %d)", p.RampRefine))
	}
	if p.Overload < 0 {
		errs = append(errs, fmt.Errorf("overload duration must not be negative (got %v)", p.Overload.D()))
	}
	if p.Overload > 0 && (p.OverloadFactor <= 0 || p.OverloadDrain <= 0) {
		errs = append(errs, fmt.Errorf("an overload phase needs a positive factor and a positive drain (got %g, %v); --overload 0 disables it", p.OverloadFactor, p.OverloadDrain.D()))
	}
	if p.HoldDelivery <= 0 || p.HoldDelivery > 1 || p.HoldP99 <= 0 {
		errs = append(errs, errors.New("hold criteria: delivery in (0,1], p99 positive"))
	}
	return errors.Join(errs...)
}

// Window is the number of Publish calls the pacer lets run at once:
// Publishers, at least 1.
func (p Phases) Window() int { return max(1, p.Publishers) }

// Rates returns the offered rates of the ramp steps.
func (p Phases) Rates() []float64 {
	var out []float64
	if p.RampStart <= 0 || p.RampFactor <= 1 {
		return nil
	}
	for r := p.RampStart; r <= p.RampMax*(1+1e-9); r *= p.RampFactor {
		out = append(out, r)
	}
	return out
}

// MaxDuration bounds how long the scenario can take, start-up and close
// excluded: the pacer may publish until the end of a phase's drain window,
// and the drain then runs in full (the overload phase's pacer stops at the
// end of Overload; Publish calls still in flight then are bounded by the
// Impl's own timeout, not counted here).
func (p Phases) MaxDuration() time.Duration {
	d := p.WarmUp + 2*p.Drain + p.Idle + p.Latency + 2*p.Drain
	if rates := p.Rates(); len(rates) > 0 {
		for range len(rates) + p.RampRefine {
			d += p.Step + 2*p.StepDrain
		}
	}
	if p.Overload > 0 {
		d += p.Overload + p.OverloadDrain
	}
	return d.D()
}

// Refine returns the rate of the next refinement step between lo, the
// highest rate that held, and hi, the lowest that did not: their geometric
// mean rounded to a whole msg/s. ok is false when there is no rate strictly
// between them (or lo is 0: the first step failed).
func (p Phases) Refine(lo, hi float64) (rate float64, ok bool) {
	if lo <= 0 || hi <= lo {
		return 0, false
	}
	rate = math.Round(math.Sqrt(lo * hi))
	if rate <= lo || rate >= hi {
		return 0, false
	}
	return rate, true
}

// Judge decides whether a ramp step held: delivery ratio ≥ HoldDelivery
// and p99 of time-to-100% < HoldP99. reason says why not.
func (p Phases) Judge(r PhaseResult) (holds bool, reason string) {
	switch {
	case r.Scheduled == 0:
		return false, "no messages scheduled"
	case r.DeliveryRatio < p.HoldDelivery:
		return false, fmt.Sprintf("delivery %.4f%% < %.4g%%", 100*r.DeliveryRatio, 100*p.HoldDelivery)
	case r.T100.P99.Duration() >= p.HoldP99.D():
		if r.T100.P99.IsInf() {
			return false, fmt.Sprintf("p99 time-to-100%% never (%d of %d messages incomplete)", r.T100.Missing, r.Scheduled)
		}
		return false, fmt.Sprintf("p99 time-to-100%% %.0f ms ≥ %v", float64(r.T100.P99), p.HoldP99.D())
	}
	return true, ""
}

// OverloadRate returns the offered rate of the overload phase and what it
// is OverloadFactor times: the maximum holding rate, else the highest ramp
// rate tried (no step held), else the latency rate (no ramp ran).
func (p Phases) OverloadRate(maxHolding float64, ramp []PhaseResult) (rate float64, basis string) {
	base, basis := maxHolding, "max holding rate"
	if base <= 0 {
		for _, st := range ramp {
			base = max(base, st.OfferedRate)
		}
		basis = "highest ramp rate tried (none held)"
	}
	if base <= 0 {
		base, basis = p.LatencyRate, "latency rate (no ramp ran)"
	}
	return p.OverloadFactor * base, basis
}
