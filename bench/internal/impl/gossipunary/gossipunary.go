// Package gossipunary runs this project's gossip library under the
// benchmark harness over the seed's unary transport, explicitly
// (Config.DisableStreaming = true): one unary PutMessageToClient RPC per
// forwarded copy, on one gRPC connection per (sender, neighbour) pair,
// with an ACK per copy and retries after AckTimeout.
//
// Profiles:
//
//   - default: what gossipd does, but unary. Config{Fanout: FanoutAll,
//     DisableStreaming: true}, other fields at their defaults; nodes 2..N
//     Join through node 1 and membership (SWIM) picks each node's
//     neighbours (ceil(ln N) + 2 random members, two-way). Messages flood
//     that overlay: one RPC per overlay edge per message.
//   - equalised: Config{Fanout: Degree, DisableStreaming: true}, full mesh
//     (AddNeighbor): each fresh message goes to Degree neighbours chosen
//     uniformly at random, excluding the sender and the origin — the same
//     fanout as memberlist's GossipNodes and GossipSub's D in that profile.
//     Push gossip with a fixed fanout is probabilistic: a node may be
//     missed by every forwarder.
//
// Wire counting: msgs = PutMessageToClient requests sent, retries included
// (a client-side grpc stats.Handler); bytes = every byte read and written
// on the nodes' client TCP connections (requests, ACKs, HTTP/2 framing and
// headers, pings, window updates). The adapter is gossipgrpc with the
// Unary transport; see that package for the details.
package gossipunary

import (
	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

// Name is the Impl's name.
const Name = "gossip-unary"

// New returns the gossip-unary Impl; Start launches its nodes.
func New() harness.Impl { return gossipgrpc.New(Name, gossipgrpc.Unary) }
