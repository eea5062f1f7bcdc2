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
	TopoRandom     = "random" // random connected Degree-regular graph (RandomRegular)
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
		return RandomRegular(n, degree, seed)
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

// RandomRegular returns a random simple connected undirected k-regular
// graph on n nodes, reproducible from seed, in O(n·k) expected time.
//
// topology.RandomRegular draws from nearly the same distribution but
// builds its adjacency lists with an n×n scan: 0.6 s at n = 10,000 and
// about a minute at 100,000. Here the configuration model pairs the n·k
// half-edges by one shuffle; the few self-loops and repeated edges it
// makes (about (k−1)/2 and (k−1)²/4 in expectation, whatever n) are
// removed by random switches — replace the bad edge {a,b} and a random
// good edge {c,d} by {a,c} and {b,d} — which keep every degree. The rare
// disconnected draw is rejected. Dense graphs (k > (n−1)/2), where
// switching would struggle, come from topology.RandomRegular.
func RandomRegular(n, k int, seed uint64) (topology.Graph, error) {
	switch {
	case k <= 0 || k >= n:
		return nil, fmt.Errorf("random regular graph: degree %d must be between 1 and n-1 = %d", k, n-1)
	case n*k%2 != 0:
		return nil, fmt.Errorf("random regular graph: n·k = %d·%d must be even", n, k)
	case k == 1 && n > 2:
		return nil, fmt.Errorf("random regular graph: a 1-regular graph on %d nodes is never connected", n)
	case 2*k > n-1:
		return topology.RandomRegular(n, k, seed)
	}
	rnd := rand.New(rand.NewPCG(seed, seed^0x243f6a8885a308d3))
	for range 100 {
		if g, ok := configurationModel(n, k, rnd); ok && g.Connected() {
			return g, nil
		}
	}
	return nil, fmt.Errorf("random regular graph: no simple connected %d-regular graph on %d nodes found", k, n)
}

func edgeKey(a, b int32) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(a)<<32 | uint64(b)
}

// configurationModel draws one random pairing and switches its bad edges
// away; ok is false when a bad edge could not be switched.
func configurationModel(n, k int, rnd *rand.Rand) (topology.Graph, bool) {
	stubs := make([]int32, n*k)
	for i := range stubs {
		stubs[i] = int32(i / k)
	}
	rnd.Shuffle(len(stubs), func(i, j int) { stubs[i], stubs[j] = stubs[j], stubs[i] })
	m := len(stubs) / 2
	a, b := stubs[:m], stubs[m:] // edge e is {a[e], b[e]}

	count := make(map[uint64]int32, m) // multiplicity of each non-loop edge
	var bad []int
	for e := range m {
		if a[e] == b[e] {
			bad = append(bad, e)
			continue
		}
		key := edgeKey(a[e], b[e])
		count[key]++
		if count[key] > 1 {
			bad = append(bad, e)
		}
	}
	isGood := func(e int) bool { return a[e] != b[e] && count[edgeKey(a[e], b[e])] == 1 }
	for _, e := range bad {
		switched := false
		for try := 0; try < 1000 && !switched; try++ {
			f := rnd.IntN(m)
			if f == e || !isGood(f) {
				continue
			}
			c, d := a[f], b[f]
			if rnd.IntN(2) == 0 {
				c, d = d, c
			}
			x, y := a[e], b[e]
			if x == c || y == d || edgeKey(x, c) == edgeKey(y, d) || count[edgeKey(x, c)] > 0 || count[edgeKey(y, d)] > 0 {
				continue
			}
			if x != y {
				count[edgeKey(x, y)]--
			}
			delete(count, edgeKey(c, d))
			count[edgeKey(x, c)]++
			count[edgeKey(y, d)]++
			a[e], b[e] = x, c
			a[f], b[f] = y, d
			switched = true
		}
		if !switched {
			return nil, false
		}
	}
	g := make(topology.Graph, n)
	flat := make([]int, 0, n*k) // one backing array for all lists
	for i := range g {
		g[i] = flat[i*k : i*k : (i+1)*k]
	}
	for e := range m {
		g[a[e]] = append(g[a[e]], int(b[e]))
		g[b[e]] = append(g[b[e]], int(a[e]))
	}
	for i := range g {
		slices.Sort(g[i])
	}
	return g, true
}
