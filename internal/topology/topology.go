// Package topology builds the neighbour graphs used by the demo, the tests
// and the simulator: the seed's ring, full meshes and random regular graphs.
package topology

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Graph is a directed adjacency list: g[i] lists the nodes i sends to
// (its neighbours), sorted. Undirected graphs list each edge both ways.
type Graph [][]int

// Ring is the seed's ring: node i's only neighbour is i+1, wrapping.
func Ring(n int) Graph {
	g := make(Graph, n)
	for i := range g {
		if n > 1 {
			g[i] = []int{(i + 1) % n}
		}
	}
	return g
}

// Full connects every node to every other.
func Full(n int) Graph {
	g := make(Graph, n)
	for i := range g {
		for j := range n {
			if j != i {
				g[i] = append(g[i], j)
			}
		}
	}
	return g
}

// RandomRegular returns a random simple connected undirected k-regular
// graph on n nodes, reproducible from seed. It needs 0 < k < n and n·k
// even. Sparse graphs are drawn by the Steger–Wormald pairing (pair random
// free half-edges of different, not yet adjacent nodes; restart when
// stuck), which is close to uniform; a dense graph (k > (n-1)/2) is the
// complement of a sparse one. Disconnected draws are rejected.
func RandomRegular(n, k int, seed uint64) (Graph, error) {
	switch {
	case k <= 0 || k >= n:
		return nil, fmt.Errorf("random regular graph: degree %d must be between 1 and n-1 = %d", k, n-1)
	case n*k%2 != 0:
		return nil, fmt.Errorf("random regular graph: n·k = %d·%d must be even", n, k)
	case k == 1 && n > 2:
		return nil, fmt.Errorf("random regular graph: a 1-regular graph on %d nodes is never connected", n)
	}
	rnd := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	dense := k > (n-1)/2
	kk := k
	if dense {
		kk = n - 1 - k
	}
	for attempt := 0; attempt < 1000; attempt++ {
		adj, ok := stegerWormald(n, kk, rnd)
		if !ok {
			continue
		}
		g := make(Graph, n)
		for i := range g {
			if dense { // the complement: every node not adjacent in the sparse draw
				for j := range n {
					if j != i && !adj[i][j] {
						g[i] = append(g[i], j)
					}
				}
				continue
			}
			for j := range adj[i] {
				g[i] = append(g[i], j)
			}
			slices.Sort(g[i])
		}
		if g.Connected() {
			return g, nil
		}
	}
	return nil, fmt.Errorf("random regular graph: no simple connected %d-regular graph on %d nodes found", k, n)
}

// stegerWormald pairs the n·k half-edges at random, only ever joining two
// different nodes not yet adjacent; ok is false when it got stuck.
func stegerWormald(n, k int, rnd *rand.Rand) (adj []map[int]bool, ok bool) {
	adj = make([]map[int]bool, n)
	for i := range adj {
		adj[i] = make(map[int]bool, k)
	}
	free := make([]int, 0, n*k)
	for i := range n * k {
		free = append(free, i/k)
	}
	for len(free) > 0 {
		paired := false
		for try := 0; try < 50*len(free); try++ {
			i, j := rnd.IntN(len(free)), rnd.IntN(len(free))
			a, b := free[i], free[j]
			if a == b || adj[a][b] {
				continue
			}
			adj[a][b], adj[b][a] = true, true
			if i < j {
				i, j = j, i
			}
			free[i] = free[len(free)-1]
			free = free[:len(free)-1]
			free[j] = free[len(free)-1]
			free = free[:len(free)-1]
			paired = true
			break
		}
		if !paired {
			return nil, false
		}
	}
	return adj, true
}

// Connected reports whether every node is reachable from node 0 following
// edges in their direction (for a ring or an undirected graph, whether the
// graph is connected).
func (g Graph) Connected() bool {
	return len(g) == 0 || len(g.Reachable(0, nil)) == len(g)
}

// Reachable returns the nodes reachable from start without passing through
// a node for which dead returns true (dead may be nil). start is included.
func (g Graph) Reachable(start int, dead func(int) bool) []int {
	seen := make([]bool, len(g))
	seen[start] = true
	queue := []int{start}
	for i := 0; i < len(queue); i++ {
		for _, j := range g[queue[i]] {
			if !seen[j] && (dead == nil || !dead(j)) {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	return queue
}
