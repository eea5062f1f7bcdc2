package sim

import (
	"fmt"

	"github.com/grpc-gossip/gossip/internal/topology"
)

// Topology names accepted by Scenario.Topology.
const (
	TopoRandom = "random" // random connected Degree-regular graph (topology.RandomRegular)
	TopoRing   = "ring"   // the seed's directed ring: node i's only neighbour is i+1
	TopoFull   = "full"   // every node linked to every other (small N only)
)

// MaxFullNodes bounds TopoFull: a full mesh has N·(N−1) directed links
// (about 280 KiB of neighbour state per node at N = 1,000), and building a
// core.Node with d neighbours costs O(d²) (each AddNeighbor recomputes the
// TTL over all neighbours): 5 s for the 1,000-node mesh.
const MaxFullNodes = 1000

// BuildGraph returns the neighbour graph of a scenario.
func BuildGraph(topo string, n, degree int, seed uint64) (topology.Graph, error) {
	switch topo {
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
		return nil, fmt.Errorf("unknown topology %q (want random, ring or full)", topo)
	}
}
