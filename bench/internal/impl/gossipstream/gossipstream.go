// Package gossipstream runs this project's gossip library under the
// benchmark harness over its streaming transport, the library's default:
// one long-lived bidirectional Gossip.Stream per (node, neighbour), opened
// on the node's client connection to the neighbour, carrying batched
// envelopes (messages, cumulative ACKs, IHAVE/GRAFT/PRUNE, anti-entropy
// digests). Dissemination is per-source Plumtree: eager push to every
// stream neighbour at first, PRUNE on duplicates down to a spanning tree
// per source, IHAVE to the other neighbours and GRAFT when an announced
// message does not arrive, plus anti-entropy with a random neighbour every
// SyncInterval.
//
// Profiles (the same overlays and Config as gossip-unary, streaming on):
//
//   - default: what gossipd does. Config{Fanout: FanoutAll}; nodes 2..N
//     Join through node 1 and membership (SWIM) picks each node's
//     neighbours (ceil(ln N) + 2 random members, two-way). The fanout
//     applies only to unary peers (none here):
//     Plumtree pushes to all stream neighbours and prunes to a tree.
//   - equalised: Config{Fanout: Degree} and a full mesh of AddNeighbor.
//     The Degree does not bound a streaming node: Plumtree starts with
//     eager push to all N-1 neighbours and prunes the mesh to a per-source
//     tree, so this profile is not a fixed-fanout one (Describe says so).
//
// Wire counting: msgs = message copies put on the wire: Σ over nodes of
// Stats().Stream.CopiesSent (messages written to neighbours' streams:
// eager, repairs, re-sends) + Stats().Sent (unary attempts, 0 here), read
// when the harness asks; bytes = every byte read and written on the nodes'
// client TCP connections (the counting net.Conn of gossipgrpc): the
// streams are opened on those connections, so this covers envelopes,
// control frames, the neighbours' ACKs and answers, HTTP/2 framing and
// pings. The adapter is gossipgrpc with the Stream transport.
package gossipstream

import (
	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

// Name is the Impl's name.
const Name = "gossip-stream"

// New returns the gossip-stream Impl; Start launches its nodes.
func New() harness.Impl { return gossipgrpc.New(Name, gossipgrpc.Stream) }
