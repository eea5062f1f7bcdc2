package gossip

import (
	"fmt"
	"sort"
	"sync"
)

// LocalStorage is the seed's storage object: the seen-message caches, the
// per-neighbour ACK table and the adaptive TTL of every node that uses it.
//
// The seed's demo creates one storage for all its nodes; that works here,
// and each node still keeps its own partition: a message seen by node 1 is
// not seen by node 2, and statistics are per node. The partition is created
// by NewGossipNode with the node's limits and removed by Close. See
// docs/DESIGN.md ("Storage and TTL") for the TTL rules.
//
// It is safe for concurrent use.
type LocalStorage struct {
	mu    sync.Mutex
	nodes map[string]*GossipNode
}

// NewLocalStorage returns an empty storage.
func NewLocalStorage() *LocalStorage {
	return &LocalStorage{nodes: make(map[string]*GossipNode)}
}

func (s *LocalStorage) attach(n *GossipNode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nodes[n.Hash]; ok {
		return fmt.Errorf("gossip: storage already holds a live node %q", n.Hash)
	}
	s.nodes[n.Hash] = n
	return nil
}

func (s *LocalStorage) detach(n *GossipNode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes[n.Hash] == n {
		delete(s.nodes, n.Hash)
	}
}

func (s *LocalStorage) node(id string) *GossipNode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[id]
}

// Nodes returns the ids of the live nodes using this storage, sorted.
func (s *LocalStorage) Nodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.nodes))
	for id := range s.nodes {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Seen reports whether node nodeID remembers message msgHash (in hot state
// or in the long-TTL cache). It is false for an unknown node.
func (s *LocalStorage) Seen(nodeID, msgHash string) bool {
	if n := s.node(nodeID); n != nil {
		return n.seen(msgHash)
	}
	return false
}

// Stats returns node nodeID's counters, cache sizes and TTL.
func (s *LocalStorage) Stats(nodeID string) (Stats, bool) {
	if n := s.node(nodeID); n != nil {
		return n.Stats(), true
	}
	return Stats{}, false
}

// NeighborStats returns node nodeID's per-neighbour ACK table.
func (s *LocalStorage) NeighborStats(nodeID string) ([]NeighborStats, bool) {
	if n := s.node(nodeID); n != nil {
		return n.NeighborStats(), true
	}
	return nil, false
}
