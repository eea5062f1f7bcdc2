package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/topology"
)

// checkRegular fails unless g is a simple connected undirected k-regular
// graph on n nodes.
func checkRegular(t *testing.T, g topology.Graph, n, k int) {
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
	for _, tt := range []struct{ n, k int }{
		{2, 1}, {4, 2}, {5, 2}, {10, 3}, {10, 4}, {11, 8}, {12, 11}, {50, 3}, {200, 4}, {1000, 8}, {999, 8}, {2000, 16},
	} {
		for seed := range uint64(3) {
			g, err := RandomRegular(tt.n, tt.k, seed)
			if err != nil {
				t.Fatalf("RandomRegular(%d, %d, %d): %v", tt.n, tt.k, seed, err)
			}
			checkRegular(t, g, tt.n, tt.k)
			again, _ := RandomRegular(tt.n, tt.k, seed)
			if !slices.EqualFunc(g, again, slices.Equal) {
				t.Fatalf("RandomRegular(%d, %d, %d) is not reproducible", tt.n, tt.k, seed)
			}
		}
	}
	a, _ := RandomRegular(1000, 8, 1)
	b, _ := RandomRegular(1000, 8, 2)
	if slices.EqualFunc(a, b, slices.Equal) {
		t.Error("seeds 1 and 2 gave the same graph")
	}
	for _, bad := range []struct{ n, k int }{{5, 0}, {5, 5}, {5, 3}, {4, 1}} {
		if _, err := RandomRegular(bad.n, bad.k, 1); err == nil {
			t.Errorf("RandomRegular(%d, %d) succeeded", bad.n, bad.k)
		}
	}
}

// TestRandomRegularLarge is the reason RandomRegular exists:
// topology.RandomRegular is quadratic and takes about a minute here.
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

func TestBuildGraph(t *testing.T) {
	ring, err := BuildGraph(TopoRing, 5, 0, 1)
	if err != nil || !slices.EqualFunc(ring, topology.Graph{{1}, {2}, {3}, {4}, {0}}, slices.Equal) {
		t.Errorf("ring: %v, %v", ring, err)
	}
	full, err := BuildGraph(TopoFull, 4, 0, 1)
	if err != nil || len(full[2]) != 3 {
		t.Errorf("full: %v, %v", full, err)
	}
	if _, err := BuildGraph(TopoFull, MaxFullNodes+1, 0, 1); err == nil {
		t.Error("a full mesh above MaxFullNodes was built")
	}
	if _, err := BuildGraph("star", 5, 0, 1); err == nil {
		t.Error("unknown topology accepted")
	}
}
