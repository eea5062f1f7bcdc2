package harness

import (
	"encoding/json"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	v := []Millis{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want Millis
	}{
		{0, 1}, {0.1, 1}, {0.11, 2}, {0.5, 5}, {0.99, 10}, {1, 10},
	} {
		if got := Percentile(v, tc.p); got != tc.want {
			t.Errorf("Percentile(1..10, %g) = %g, want %g", tc.p, got, tc.want)
		}
	}
	if !Percentile(nil, 0.5).IsInf() {
		t.Error("Percentile of nothing is not +Inf")
	}
}

func TestSummariseMissing(t *testing.T) {
	// 200 messages, 2 never complete: p99 is the 198th value (finite);
	// 3 missing: p99 is +Inf.
	v := make([]Millis, 200)
	for i := range v {
		v[i] = Millis(200 - i)
	}
	v[0], v[1] = Inf, Inf
	q := Summarise(v)
	if q.P99 != 198 || !q.Max.IsInf() || q.Missing != 2 || q.P50 != 100 {
		t.Errorf("2 missing: %+v", q)
	}
	v[2] = Inf
	if q := Summarise(v); !q.P99.IsInf() || q.Missing != 3 {
		t.Errorf("3 missing: %+v", q)
	}
}

func TestMillisJSON(t *testing.T) {
	b, err := json.Marshal([]Millis{1.23456789, Inf})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "[1.235,null]" {
		t.Errorf("marshal: %s", b)
	}
	var back []Millis
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back[0] != 1.235 || !back[1].IsInf() {
		t.Errorf("unmarshal: %v", back)
	}
	if Inf.Duration() <= time.Hour || Millis(1.5).Duration() != 1500*time.Microsecond {
		t.Error("Duration")
	}
}

func TestHistogram(t *testing.T) {
	h := NewHistogram([]Millis{0.001, 1, 1.05, 1000, Inf})
	total := 0
	for _, c := range h.Counts {
		total += c
	}
	if total != 5 || h.Counts[len(h.Counts)-1] != 1 {
		t.Errorf("counts %v", h.Counts)
	}
	if h.Counts[0] != 1 { // ≤ 10 µs
		t.Errorf("first bucket %d", h.Counts[0])
	}
}

func TestCDF(t *testing.T) {
	v := make([]Millis, 1000)
	for i := range v {
		v[i] = Millis(i + 1)
	}
	c := CDF(v)
	if len(c) != 101 || c[0] != 1 || c[50] != 500 || c[100] != 1000 {
		t.Errorf("CDF: %v…", c[:3])
	}
}
