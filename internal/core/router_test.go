package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func candidateIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("n%02d", i)
	}
	return out
}

func TestRandomRouterSelectsDistinctCandidates(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
		fanout     int
		want       int // len of the result
	}{
		{"nil candidates", nil, 3, 0},
		{"no candidates", []string{}, 3, 0},
		{"zero fanout", candidateIDs(5), 0, 0},
		{"negative fanout", candidateIDs(5), -1, 0},
		{"one of one", candidateIDs(1), 1, 1},
		{"fanout below candidates", candidateIDs(10), 3, 3},
		{"fanout one below candidates", candidateIDs(4), 3, 3},
		{"fanout equal to candidates", candidateIDs(3), 3, 3},
		{"fanout above candidates", candidateIDs(2), 3, 2},
		{"fanout far above candidates", candidateIDs(5), 1000, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(50) {
				in := slices.Clone(tt.candidates)
				got := RandomRouter{}.SelectTargets(nil, in, tt.fanout, rand.New(rand.NewPCG(seed, 0)))
				if len(got) != tt.want {
					t.Fatalf("seed %d: got %d targets %v, want %d", seed, len(got), got, tt.want)
				}
				if !slices.Equal(in, tt.candidates) {
					t.Fatalf("seed %d: input modified: %v, was %v", seed, in, tt.candidates)
				}
				set := make(map[string]bool)
				for _, id := range got {
					if !slices.Contains(tt.candidates, id) {
						t.Fatalf("seed %d: %q is not a candidate", seed, id)
					}
					if set[id] {
						t.Fatalf("seed %d: %q chosen twice in %v", seed, id, got)
					}
					set[id] = true
				}
				// The result must not alias the input: writing to it leaves the
				// caller's slice alone.
				for i := range got {
					got[i] = "scribbled"
				}
				if !slices.Equal(in, tt.candidates) {
					t.Fatalf("seed %d: result aliases the input", seed)
				}
			}
		})
	}
}

// With fewer candidates than the fanout, all of them go out, in order.
func TestRandomRouterAllCandidatesInOrder(t *testing.T) {
	in := []string{"a", "b", "c"}
	got := RandomRouter{}.SelectTargets(nil, in, 5, rand.New(rand.NewPCG(1, 2)))
	if !slices.Equal(got, in) {
		t.Fatalf("got %v, want %v", got, in)
	}
}

func TestRandomRouterDeterministic(t *testing.T) {
	cands := candidateIDs(20)
	draw := func(seed uint64) [][]string {
		rnd := rand.New(rand.NewPCG(seed, seed))
		var out [][]string
		for range 100 {
			out = append(out, RandomRouter{}.SelectTargets(nil, cands, 4, rnd))
		}
		return out
	}
	a, b := draw(42), draw(42)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("draw %d differs for the same seed: %v vs %v", i, a[i], b[i])
		}
	}
	c := draw(43)
	same := 0
	for i := range a {
		if slices.Equal(a[i], c[i]) {
			same++
		}
	}
	if same == len(a) {
		t.Fatalf("seeds 42 and 43 gave identical sequences")
	}
}

// TestRandomRouterUniform checks with a chi-square test (fixed seed, so the
// outcome is deterministic) that every candidate is chosen equally often,
// and that every candidate is equally likely to be sent to first.
func TestRandomRouterUniform(t *testing.T) {
	const (
		draws  = 20000
		n      = 10
		fanout = 3
		// 99.9th percentile of chi-square with n-1 = 9 degrees of freedom.
		chi2Crit = 27.877
	)
	cands := candidateIDs(n)
	index := make(map[string]int, n)
	for i, id := range cands {
		index[id] = i
	}
	rnd := rand.New(rand.NewPCG(20260301, 7))
	var chosen, first [n]int
	for range draws {
		got := RandomRouter{}.SelectTargets(nil, cands, fanout, rnd)
		for _, id := range got {
			chosen[index[id]]++
		}
		first[index[got[0]]]++
	}
	chi2 := func(counts [n]int, total int) float64 {
		exp := float64(total) / n
		var x float64
		for _, c := range counts {
			d := float64(c) - exp
			x += d * d / exp
		}
		return x
	}
	if x := chi2(chosen, draws*fanout); x > chi2Crit {
		t.Errorf("membership counts %v: chi2 = %.2f > %.2f", chosen, x, chi2Crit)
	} else {
		t.Logf("membership counts %v: chi2 = %.2f", chosen, x)
	}
	if x := chi2(first, draws); x > chi2Crit {
		t.Errorf("first-position counts %v: chi2 = %.2f > %.2f", first, x, chi2Crit)
	} else {
		t.Logf("first-position counts %v: chi2 = %.2f", first, x)
	}
}
