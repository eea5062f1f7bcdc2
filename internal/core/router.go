package core

import (
	"math/rand/v2"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Router chooses the neighbours a fresh message is forwarded to.
//
// SelectTargets returns at most fanout distinct ids taken from candidates,
// in the order they should be sent to. candidates already exclude the node
// itself, the sender of this copy and the message's origin, and are sorted;
// the Router must not modify or retain the slice (it may return a prefix of
// a copy). rnd is the calling node's own random source and is only used
// during the call. One Router may serve many nodes at once: SelectTargets
// must be safe for concurrent use and must not block.
type Router interface {
	SelectTargets(msg *pb.GossipMessage, candidates []string, fanout int, rnd *rand.Rand) []string
}

// RandomRouter picks fanout targets uniformly at random without repeats:
// the seed's default.
type RandomRouter struct{}

// SelectTargets implements Router with a partial Fisher–Yates shuffle.
func (RandomRouter) SelectTargets(_ *pb.GossipMessage, candidates []string, fanout int, rnd *rand.Rand) []string {
	if fanout <= 0 || len(candidates) == 0 {
		return nil
	}
	out := append([]string(nil), candidates...)
	if fanout >= len(out) {
		return out
	}
	for i := 0; i < fanout; i++ {
		j := i + rnd.IntN(len(out)-i)
		out[i], out[j] = out[j], out[i]
	}
	return out[:fanout]
}
