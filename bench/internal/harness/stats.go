package harness

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// Millis is a duration in milliseconds. +Inf (a message that never reached
// the quantile) is written to JSON as null and read back as +Inf.
type Millis float64

// Inf is the Millis of an event that did not happen.
var Inf = Millis(math.Inf(1))

// ToMillis converts ns to Millis.
func ToMillis(ns int64) Millis { return Millis(float64(ns) / 1e6) }

// IsInf reports whether m is +Inf.
func (m Millis) IsInf() bool { return math.IsInf(float64(m), 1) }

// Duration converts m to a time.Duration (math.MaxInt64 for +Inf).
func (m Millis) Duration() time.Duration {
	if m.IsInf() {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(float64(m) * 1e6)
}

// MarshalJSON writes null for +Inf, else the number rounded to 1 µs.
func (m Millis) MarshalJSON() ([]byte, error) {
	if m.IsInf() || math.IsNaN(float64(m)) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(float64(m)*1000)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads null as +Inf.
func (m *Millis) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = Inf
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*m = Millis(f)
	return nil
}

// Percentile returns the nearest-rank p-quantile (0 ≤ p ≤ 1) of sorted:
// the smallest value with at least p·n values at or below it (p = 0 gives
// the minimum). It returns +Inf for an empty slice.
func Percentile(sorted []Millis, p float64) Millis {
	n := len(sorted)
	if n == 0 {
		return Inf
	}
	k := int(math.Ceil(p*float64(n)-1e-9)) - 1
	k = max(0, min(k, n-1))
	return sorted[k]
}

// Quantiles summarises a per-message latency over the messages of a phase.
// Messages that never reached the point count as +Inf, so P99 is +Inf as
// soon as more than 1% of the messages never did.
type Quantiles struct {
	P50     Millis `json:"p50_ms"`
	P99     Millis `json:"p99_ms"`
	Max     Millis `json:"max_ms"`
	Missing int    `json:"missing"` // messages that never reached it
}

// Summarise sorts v in place and returns its quantiles.
func Summarise(v []Millis) Quantiles {
	slices.Sort(v)
	q := Quantiles{P50: Percentile(v, 0.50), P99: Percentile(v, 0.99), Max: Percentile(v, 1)}
	for i := len(v) - 1; i >= 0 && v[i].IsInf(); i-- {
		q.Missing++
	}
	return q
}

// CDF returns the 0th, 1st, …, 100th percentiles of sorted (101 values):
// the latency CDF at 1% resolution, enough to plot.
func CDF(sorted []Millis) []Millis {
	if len(sorted) == 0 {
		return nil
	}
	out := make([]Millis, 101)
	for i := range out {
		out[i] = Percentile(sorted, float64(i)/100)
	}
	return out
}

// Histogram is a latency histogram with logarithmic buckets: Counts[i]
// counts values in (Bounds[i-1], Bounds[i]] ms (Bounds[-1] = 0); the last
// count is the overflow above the last bound, +Inf (never reached) included.
type Histogram struct {
	BoundsMs []float64 `json:"bounds_ms"`
	Counts   []int     `json:"counts"`
}

// histBounds: 10 buckets per decade from 10 µs to 100 s.
var histBounds = func() []float64 {
	var b []float64
	for e := -2.0; e <= 5+1e-9; e += 0.1 {
		b = append(b, math.Round(math.Pow(10, e)*1e6)/1e6)
	}
	return b
}()

// NewHistogram buckets v.
func NewHistogram(v []Millis) Histogram {
	h := Histogram{BoundsMs: histBounds, Counts: make([]int, len(histBounds)+1)}
	for _, x := range v {
		i, _ := slices.BinarySearch(histBounds, float64(x))
		h.Counts[i]++
	}
	return h
}
