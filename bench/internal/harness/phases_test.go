package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestJudge(t *testing.T) {
	ph := FullPhases()
	ok := PhaseResult{Scheduled: 1000, DeliveryRatio: 1, T100: Quantiles{P99: 20}}
	for _, tc := range []struct {
		name   string
		mod    func(*PhaseResult)
		holds  bool
		reason string
	}{
		{"all delivered, fast", func(*PhaseResult) {}, true, ""},
		{"delivery exactly 99.9%", func(r *PhaseResult) { r.DeliveryRatio = 0.999 }, true, ""},
		{"delivery below 99.9%", func(r *PhaseResult) { r.DeliveryRatio = 0.9989 }, false, "delivery"},
		{"p99 just under 1 s", func(r *PhaseResult) { r.T100.P99 = 999.9 }, true, ""},
		{"p99 exactly 1 s", func(r *PhaseResult) { r.T100.P99 = 1000 }, false, "≥ 1s"},
		{"p99 never", func(r *PhaseResult) { r.T100.P99, r.T100.Missing = Inf, 11 }, false, "never"},
		{"nothing scheduled", func(r *PhaseResult) { r.Scheduled = 0 }, false, "no messages"},
	} {
		r := ok
		tc.mod(&r)
		holds, reason := ph.Judge(r)
		if holds != tc.holds || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: Judge = %v, %q; want %v, …%q…", tc.name, holds, reason, tc.holds, tc.reason)
		}
	}
}

func TestPhases(t *testing.T) {
	for _, ph := range []Phases{FullPhases(), QuickPhases()} {
		if err := ph.Validate(); err != nil {
			t.Error(err)
		}
		r := ph.Rates()
		if len(r) != 11 || r[0] != 100 || r[10] != 102400 {
			t.Errorf("rates %v", r)
		}
		b, err := json.Marshal(ph)
		if err != nil {
			t.Fatal(err)
		}
		var back Phases
		if err := json.Unmarshal(b, &back); err != nil || back != ph {
			t.Errorf("JSON round trip: %s → %+v, %v", b, back, err)
		}
	}
	if QuickPhases().MaxDuration() > 115*time.Second {
		t.Errorf("quick scenario may take %v", QuickPhases().MaxDuration())
	}
	bad := QuickPhases()
	bad.Idle = 0
	bad.RampFactor = 1
	if err := bad.Validate(); err == nil {
		t.Error("invalid phases accepted")
	}
}

func TestRefine(t *testing.T) {
	ph := QuickPhases()
	for _, tc := range []struct {
		lo, hi, want float64
		ok           bool
	}{
		{25600, 51200, 36204, true},
		{25600, 36204, 30444, true},
		{100, 200, 141, true},
		{0, 100, 0, false},   // the first step failed: nothing below it
		{400, 400, 0, false}, // nothing failed
		{400, 0, 0, false},
		{2, 3, 0, false}, // no whole rate in between
	} {
		got, ok := ph.Refine(tc.lo, tc.hi)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Refine(%g, %g) = %g, %v; want %g, %v", tc.lo, tc.hi, got, ok, tc.want, tc.ok)
		}
	}
	bad := QuickPhases()
	bad.RampRefine = -1
	if err := bad.Validate(); err == nil {
		t.Error("negative refinements accepted")
	}
}

func TestOverloadRate(t *testing.T) {
	ph := QuickPhases()
	ramp := []PhaseResult{{OfferedRate: 100, Holds: true}, {OfferedRate: 200}}
	for _, tc := range []struct {
		maxHolding float64
		ramp       []PhaseResult
		rate       float64
		basis      string
	}{
		{100, ramp, 300, "max holding rate"},
		{0, ramp[1:], 600, "none held"},
		{0, nil, 150, "no ramp"}, // 3 × the latency rate
	} {
		rate, basis := ph.OverloadRate(tc.maxHolding, tc.ramp)
		if rate != tc.rate || !strings.Contains(basis, tc.basis) {
			t.Errorf("OverloadRate(%g, %d steps) = %g, %q; want %g, …%q…", tc.maxHolding, len(tc.ramp), rate, basis, tc.rate, tc.basis)
		}
	}
	for _, mod := range []func(*Phases){
		func(p *Phases) { p.Overload = -1 },
		func(p *Phases) { p.OverloadFactor = 0 },
		func(p *Phases) { p.OverloadDrain = 0 },
	} {
		bad := QuickPhases()
		mod(&bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("invalid overload accepted: %+v", bad)
		}
	}
	off := QuickPhases()
	off.Overload, off.OverloadFactor, off.OverloadDrain = 0, 0, 0
	if err := off.Validate(); err != nil {
		t.Errorf("overload disabled: %v", err)
	}
}

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{status.Error(codes.ResourceExhausted, "saturated"), "ResourceExhausted"},
		{fmt.Errorf("publish: %w", status.Error(codes.Unavailable, "busy")), "Unavailable"},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), "DeadlineExceeded"},
		{context.Canceled, "Canceled"},
		{errors.New("boom"), "other"},
	} {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
