package sim

import (
	"slices"
	"testing"

	"github.com/grpc-gossip/gossip/internal/topology"
)

func TestBuildGraph(t *testing.T) {
	ring, err := BuildGraph(TopoRing, 5, 0, 1)
	if err != nil || !slices.EqualFunc(ring, topology.Graph{{1}, {2}, {3}, {4}, {0}}, slices.Equal) {
		t.Errorf("ring: %v, %v", ring, err)
	}
	full, err := BuildGraph(TopoFull, 4, 0, 1)
	if err != nil || len(full[2]) != 3 {
		t.Errorf("full: %v, %v", full, err)
	}
	random, err := BuildGraph(TopoRandom, 100, 4, 3)
	if want, _ := topology.RandomRegular(100, 4, 3); err != nil || !slices.EqualFunc(random, want, slices.Equal) {
		t.Errorf("random: %v, want topology.RandomRegular's graph", err)
	}
	if _, err := BuildGraph(TopoFull, MaxFullNodes+1, 0, 1); err == nil {
		t.Error("a full mesh above MaxFullNodes was built")
	}
	if _, err := BuildGraph("star", 5, 0, 1); err == nil {
		t.Error("unknown topology accepted")
	}
}
