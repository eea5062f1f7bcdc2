package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		spec    string
		want    Latency
		str     string // canonical form; "" = spec
		wantErr string // substring; "" = no error
	}{
		{spec: "const:5ms", want: Latency{Kind: Const, A: 5 * ms}},
		{spec: "5ms", want: Latency{Kind: Const, A: 5 * ms}, str: "const:5ms"},
		{spec: " const:0s ", want: Latency{Kind: Const}, str: "const:0s"},
		{spec: "uniform:1ms-20ms", want: Latency{Kind: Uniform, A: ms, B: 20 * ms}},
		{spec: "uniform:3ms-3ms", want: Latency{Kind: Uniform, A: 3 * ms, B: 3 * ms}},
		{spec: "exp:mean=10ms", want: Latency{Kind: Exp, A: 10 * ms}},
		{spec: "exp:10ms", want: Latency{Kind: Exp, A: 10 * ms}, str: "exp:mean=10ms"},
		{spec: "lognormal:median=10ms,sigma=0.5", want: Latency{Kind: LogNormal, A: 10 * ms, Sigma: 0.5}},
		{spec: "lognormal:sigma=1.25, median=1.5ms", want: Latency{Kind: LogNormal, A: 1500 * time.Microsecond, Sigma: 1.25}, str: "lognormal:median=1.5ms,sigma=1.25"},

		{spec: "", wantErr: "want const"},
		{spec: "fast", wantErr: "want const"},
		{spec: "-5ms", wantErr: "want const"},
		{spec: "const:", wantErr: "invalid duration"},
		{spec: "const:-1ms", wantErr: "negative"},
		{spec: "normal:5ms", wantErr: `unknown distribution "normal"`},
		{spec: "uniform:5ms", wantErr: "MIN-MAX"},
		{spec: "uniform:20ms-1ms", wantErr: "above maximum"},
		{spec: "uniform:1ms-x", wantErr: "invalid duration"},
		{spec: "exp:avg=10ms", wantErr: "bad parameter"},
		{spec: "exp:mean=10", wantErr: "missing unit"},
		{spec: "lognormal:median=10ms", wantErr: `missing parameter "sigma"`},
		{spec: "lognormal:10ms", wantErr: "bad parameter"},
		{spec: "lognormal:median=10ms,sigma=-1", wantErr: "sigma"},
		{spec: "lognormal:median=10ms,sigma=NaN", wantErr: "sigma"},
		{spec: "lognormal:median=10ms,sigma=x", wantErr: "invalid syntax"},
		{spec: "lognormal:median=10ms,median=5ms,sigma=1", wantErr: "twice"},
	}
	for _, tt := range tests {
		got, err := ParseLatency(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseLatency(%q) = %v, %v; want an error containing %q", tt.spec, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLatency(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
			continue
		}
		str := tt.str
		if str == "" {
			str = tt.spec
		}
		if got.String() != str {
			t.Errorf("ParseLatency(%q).String() = %q, want %q", tt.spec, got.String(), str)
		}
		var back Latency
		if err := back.UnmarshalText([]byte(got.String())); err != nil || back != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), back, err)
		}
	}
}

// TestLatencySample checks each distribution's range and location over
// many draws.
func TestLatencySample(t *testing.T) {
	ms := float64(time.Millisecond)
	tests := []struct {
		spec            string
		lo, hi          time.Duration // every draw in [lo, hi]
		median, mean    float64       // expected, ms; 0: not checked
		medTol, meanTol float64
	}{
		{spec: "const:7ms", lo: 7 * time.Millisecond, hi: 7 * time.Millisecond, median: 7, mean: 7, medTol: 0, meanTol: 0},
		{spec: "uniform:1ms-21ms", lo: time.Millisecond, hi: 21 * time.Millisecond, median: 11, mean: 11, medTol: 0.5, meanTol: 0.3},
		{spec: "exp:mean=10ms", lo: 0, hi: time.Hour, median: 10 * math.Ln2, mean: 10, medTol: 0.4, meanTol: 0.4},
		{spec: "lognormal:median=10ms,sigma=0.5", lo: 0, hi: time.Hour, median: 10, mean: 10 * math.Exp(0.125), medTol: 0.4, meanTol: 0.4},
	}
	for _, tt := range tests {
		l, err := ParseLatency(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		const n = 20000
		draws := make([]float64, n)
		var sum float64
		for i := range draws {
			d := l.Sample(r)
			if d < tt.lo || d > tt.hi {
				t.Fatalf("%s: draw %v outside [%v, %v]", tt.spec, d, tt.lo, tt.hi)
			}
			draws[i] = float64(d) / ms
			sum += draws[i]
		}
		slices.Sort(draws)
		if med := draws[n/2]; math.Abs(med-tt.median) > tt.medTol {
			t.Errorf("%s: median %.3f ms, want %.3f ± %.1f", tt.spec, med, tt.median, tt.medTol)
		}
		if mean := sum / n; math.Abs(mean-tt.mean) > tt.meanTol {
			t.Errorf("%s: mean %.3f ms, want %.3f ± %.1f", tt.spec, mean, tt.mean, tt.meanTol)
		}
		if got := float64(l.Mean()) / ms; math.Abs(got-tt.mean) > 1e-6 {
			t.Errorf("%s: Mean() = %.3f ms, want %.3f", tt.spec, got, tt.mean)
		}
	}
}
