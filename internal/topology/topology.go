// Package topology builds the neighbour graphs used by the demo, the tests
// and the simulator: the seed's ring, full meshes and random regular graphs.
package topology

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
