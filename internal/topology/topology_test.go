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

func TestReachable(t *testing.T) {
	g := Ring(6)
	got := g.Reachable(0, func(i int) bool { return i == 3 })
	if !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("reachable past a dead node: %v", got)
	}
}
