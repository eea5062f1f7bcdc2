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

// Name is the Impl's name; NameNoSync the one with --sync never (commits
// written to the file but never fsynced: what a process crash does not
// lose, without the cost of the disk flush).
const (
	Name       = "gossip-durable"
	NameNoSync = "gossip-durable-nosync"
)

// New returns the gossip-durable Impl; Start launches its nodes.
func New() harness.Impl { return gossipgrpc.NewDurable(Name, gossipgrpc.Stream, gossip.SyncAlways) }

// NewNoSync returns the gossip-durable-nosync Impl.
func NewNoSync() harness.Impl {
	never, _ := gossip.ParseSyncPolicy("never")
	return gossipgrpc.NewDurable(NameNoSync, gossipgrpc.Stream, never)
}
