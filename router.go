package gossip

import "github.com/grpc-gossip/gossip/internal/core"

// Router chooses the neighbours a fresh message is forwarded to:
//
//	SelectTargets(msg *pb.GossipMessage, candidates []string, fanout int, rnd *rand.Rand) []string
//
// It returns at most fanout distinct ids from candidates (the node's
// neighbours minus itself, the sender and the origin, sorted), without
// modifying or retaining the slice. rnd is the node's own random source.
// One Router may be shared by many nodes, so it must be safe for concurrent
// use, and it must not block.
type Router = core.Router

// RandomRouter picks targets uniformly at random without repeats (the
// seed's behaviour, and the default).
type RandomRouter = core.RandomRouter

// NewRandomRouter returns the default Router.
func NewRandomRouter() Router { return RandomRouter{} }
