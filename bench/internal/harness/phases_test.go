package harness

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
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
	if QuickPhases().MaxDuration() > 90*time.Second {
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
