package topology

import (
	"slices"
	"testing"
	"time"
)

// checkRegular fails unless g is a simple connected undirected k-regular
// graph on n nodes with sorted lists.
func checkRegular(t *testing.T, g Graph, n, k int) {
	t.Helper()
	if len(g) != n {
		t.Fatalf("%d nodes, want %d", len(g), n)
	}
	for i, nb := range g {
		if len(nb) != k {
			t.Fatalf("node %d has degree %d, want %d", i, len(nb), k)
		}
		if !slices.IsSorted(nb) {
			t.Fatalf("node %d: neighbours not sorted: %v", i, nb)
		}
		for x, j := range nb {
			if j == i {
				t.Fatalf("node %d: self-loop", i)
			}
			if x > 0 && nb[x-1] == j {
				t.Fatalf("node %d: repeated neighbour %d", i, j)
			}
			if _, found := slices.BinarySearch(g[j], i); !found {
				t.Fatalf("edge %d→%d without %d→%d", i, j, j, i)
			}
		}
	}
	if !g.Connected() {
		t.Fatal("not connected")
	}
}

func TestRandomRegular(t *testing.T) {
	for _, tc := range []struct{ n, k int }{
		{2, 1}, {4, 2}, {5, 2}, {10, 3}, {10, 4}, {10, 9}, {11, 8}, {12, 11}, {20, 4}, {30, 3},
		{50, 3}, {100, 8}, {200, 4}, {1000, 8}, {999, 8}, {2000, 16},
	} {
		for seed := range uint64(5) {
			g, err := RandomRegular(tc.n, tc.k, seed)
			if err != nil {
				t.Fatalf("RandomRegular(%d, %d, %d): %v", tc.n, tc.k, seed, err)
			}
			checkRegular(t, g, tc.n, tc.k)
			again, _ := RandomRegular(tc.n, tc.k, seed)
			if !slices.EqualFunc(g, again, slices.Equal) {
				t.Fatalf("RandomRegular(%d, %d, %d) is not reproducible", tc.n, tc.k, seed)
			}
		}
	}
	a, _ := RandomRegular(1000, 8, 1)
	b, _ := RandomRegular(1000, 8, 2)
	if slices.EqualFunc(a, b, slices.Equal) {
		t.Error("seeds 1 and 2 gave the same graph")
	}
}

// TestRandomRegularSmall draws every possible degree on small graphs,
// where repeated edges are most frequent and switching has the fewest
// edges to choose from, and the complement of a sparse draw gives the
// dense ones.
func TestRandomRegularSmall(t *testing.T) {
	for n := 2; n <= 24; n++ {
		for k := 2; k < n; k++ {
			if n*k%2 != 0 {
				continue
			}
			for seed := range uint64(3) {
				g, err := RandomRegular(n, k, seed)
				if err != nil {
					t.Fatalf("RandomRegular(%d, %d, %d): %v", n, k, seed, err)
				}
				checkRegular(t, g, n, k)
			}
		}
	}
}

func TestRandomRegularRejects(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{5, 3}, {4, 4}, {4, 0}, {5, 0}, {5, 5}, {4, 1}, {6, 1}, {3, -1}} {
		if _, err := RandomRegular(tc.n, tc.k, 1); err == nil {
			t.Errorf("RandomRegular(%d, %d) succeeded", tc.n, tc.k)
		}
	}
}

// TestRandomRegularLarge: the simulator draws graphs of 100,000 nodes and
// more, so the generator must be O(n·k).
func TestRandomRegularLarge(t *testing.T) {
	n := 100000
	if raceEnabled || testing.Short() {
		n = 20000
	}
	start := time.Now()
	g, err := RandomRegular(n, 8, 7)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	checkRegular(t, g, n, 8)
	t.Logf("RandomRegular(%d, 8) took %v", n, took)
	if took > 10*time.Second {
		t.Errorf("RandomRegular(%d, 8) took %v: not O(n·k)", n, took)
	}
}

// BenchmarkRandomRegular is the simulator's largest default graph:
// 100,000 nodes of degree 8.
func BenchmarkRandomRegular(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		if _, err := RandomRegular(100000, 8, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
