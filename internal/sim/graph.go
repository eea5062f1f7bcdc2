package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/grpc-gossip/gossip/internal/topology"
)

// Topology names accepted by Scenario.Topology.
const (
	// TopoMembership is the overlay the daemon's membership builds: each
	// node chooses k = ceil(ln N) + FanoutExtra random members and tells
	// each (Link), so every link is two-way and a node's degree is about
	// 2k (MembershipOverlay).
	TopoMembership = "membership"
	TopoRandom     = "random" // random connected Degree-regular graph (topology.RandomRegular)
	TopoRing       = "ring"   // the seed's directed ring: node i's only neighbour is i+1
	TopoFull       = "full"   // every node linked to every other (small N only)
)

// MaxFullNodes bounds TopoFull: a full mesh has N·(N−1) directed links
// (about 280 KiB of neighbour state per node at N = 1,000), and building a
// core.Node with d neighbours costs O(d²) (each AddNeighbor recomputes the
// TTL over all neighbours): 5 s for the 1,000-node mesh.
const MaxFullNodes = 1000

// BuildGraph returns the neighbour graph of a scenario (for
// TopoMembership, the undirected union of every node's choices with the
// default FanoutExtra 2).
func BuildGraph(topo string, n, degree int, seed uint64) (topology.Graph, error) {
	return buildGraph(topo, n, degree, 2, seed)
}

func buildGraph(topo string, n, degree, extra int, seed uint64) (topology.Graph, error) {
	switch topo {
	case TopoMembership:
		_, g := MembershipOverlay(n, extra, seed)
		return g, nil
	case TopoRing:
		return topology.Ring(n), nil
	case TopoFull:
		if n > MaxFullNodes {
			return nil, fmt.Errorf("full topology: %d nodes is too many (at most %d)", n, MaxFullNodes)
		}
		return topology.Full(n), nil
	case TopoRandom:
		return topology.RandomRegular(n, degree, seed)
	default:
		return nil, fmt.Errorf("unknown topology %q (want membership, random, ring or full)", topo)
	}
}

// MembershipK is the number of members a node chooses as neighbours when
// it knows live members (itself included): ceil(ln live) + extra, as the
// runtime's rebalance computes it (0 when alone).
func MembershipK(live, extra int) int {
	if live <= 1 {
		return 0
	}
	return int(math.Ceil(math.Log(float64(live)))) + extra
}

// MembershipOverlay is the overlay the daemon's membership builds once
// every node knows every other: each node chooses k = MembershipK(n,
// extra) distinct random members (chosen[i], in the order chosen), and
// each chosen member links back, so the graph g (sorted, undirected) has
// degree about 2k. A choice that was already a neighbour (the other
// chose it first) adds nothing, as in the runtime, where such a member is
// already linked and not a candidate.
func MembershipOverlay(n, extra int, seed uint64) (chosen [][]int32, g topology.Graph) {
	rnd := rand.New(rand.NewPCG(seed^0x6d656d62, seed^0x7273))
	k := min(MembershipK(n, extra), n-1)
	chosen = make([][]int32, n)
	nb := make([]map[int32]bool, n)
	for i := range nb {
		nb[i] = make(map[int32]bool, 2*k)
	}
	for i := range n {
		for len(chosen[i]) < k && len(nb[i]) < n-1 {
			j := int32(rnd.IntN(n))
			if int(j) == i || nb[i][j] {
				continue
			}
			chosen[i] = append(chosen[i], j)
			nb[i][j], nb[j][int32(i)] = true, true
		}
	}
	g = make(topology.Graph, n)
	for i := range g {
		g[i] = make([]int, 0, len(nb[i]))
		for j := range nb[i] {
			g[i] = append(g[i], int(j))
		}
		slices.Sort(g[i])
	}
	return chosen, g
}
