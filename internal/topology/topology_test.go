package topology

import (
	"slices"
	"testing"
)

func TestRing(t *testing.T) {
	g := Ring(5)
	for i, nb := range g {
		if !slices.Equal(nb, []int{(i + 1) % 5}) {
			t.Errorf("node %d: %v", i, nb)
		}
	}
	if !g.Connected() {
		t.Error("ring not connected")
	}
	if len(Ring(1)[0]) != 0 {
		t.Error("a ring of one has no neighbour")
	}
}

func TestFull(t *testing.T) {
	g := Full(4)
	for i, nb := range g {
		if len(nb) != 3 || slices.Contains(nb, i) {
			t.Errorf("node %d: %v", i, nb)
		}
	}
}

func TestRandomRegular(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{20, 4}, {200, 4}, {30, 3}, {10, 9}, {2, 1}, {100, 8}} {
		for seed := range uint64(5) {
			g, err := RandomRegular(tc.n, tc.k, seed)
			if err != nil {
				t.Fatalf("n=%d k=%d seed=%d: %v", tc.n, tc.k, seed, err)
			}
			for i, nb := range g {
				if len(nb) != tc.k {
					t.Fatalf("n=%d k=%d: node %d has degree %d", tc.n, tc.k, i, len(nb))
				}
				for j, v := range nb {
					if v == i || (j > 0 && nb[j-1] == v) || !slices.Contains(g[v], i) {
						t.Fatalf("n=%d k=%d: node %d: bad adjacency %v", tc.n, tc.k, i, nb)
					}
				}
			}
			if !g.Connected() {
				t.Fatalf("n=%d k=%d seed=%d: not connected", tc.n, tc.k, seed)
			}
			again, _ := RandomRegular(tc.n, tc.k, seed)
			for i := range g {
				if !slices.Equal(g[i], again[i]) {
					t.Fatalf("n=%d k=%d seed=%d: not reproducible", tc.n, tc.k, seed)
				}
			}
		}
	}
}

func TestRandomRegularRejects(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{5, 3}, {4, 4}, {4, 0}, {6, 1}, {3, -1}} {
		if _, err := RandomRegular(tc.n, tc.k, 1); err == nil {
			t.Errorf("n=%d k=%d: no error", tc.n, tc.k)
		}
	}
}

func TestReachable(t *testing.T) {
	g := Ring(6)
	got := g.Reachable(0, func(i int) bool { return i == 3 })
	if !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("reachable past a dead node: %v", got)
	}
}
