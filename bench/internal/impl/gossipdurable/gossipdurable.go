// Package gossipdurable runs gossip-stream (the library's default: streams,
// Plumtree, repair) with persistence on: every node keeps its state and
// delivery log in a bbolt file of its own (gossip.WithDataDir, --sync
// always: each group commit is fsynced before the publishes in it are
// acknowledged and before anything in it is delivered). Compared with
// gossip-stream, it shows the cost of persistence (docs/DESIGN.md §13).
package gossipdurable

import (
	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

// Name is the Impl's name.
const Name = "gossip-durable"

// New returns the gossip-durable Impl; Start launches its nodes.
func New() harness.Impl { return gossipgrpc.NewDurable(Name, gossipgrpc.Stream, gossip.SyncAlways) }
