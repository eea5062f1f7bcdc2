package main

import (
	"strings"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipdurable"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipsecure"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipstream"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipsub"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipunary"
	"github.com/grpc-gossip/gossip/bench/internal/impl/memberlist"
)

// impls lists the systems the driver can run, in the order it runs and
// reports them. A new system is one line here.
var impls = []struct {
	name string
	new  func() harness.Impl
}{
	{gossipunary.Name, gossipunary.New},
	{gossipstream.Name, gossipstream.New},
	{gossipsecure.Name, gossipsecure.New},
	{gossipdurable.Name, gossipdurable.New},
	{gossipdurable.NameNoSync, gossipdurable.NewNoSync},
	{"memberlist", memberlist.New},
	{"gossipsub", func() harness.Impl { return gossipsub.New() }},
	// GossipSub with every queue that drops raised to 1,024: the fair comparison under load (it still drops when they fill).
	{"gossipsub-q1024", func() harness.Impl { return gossipsub.New(gossipsub.WithQueues(1024)) }},
}

func newImpl(name string) (harness.Impl, bool) {
	for _, i := range impls {
		if i.name == name {
			return i.new(), true
		}
	}
	return nil, false
}

func implNames() []string {
	out := make([]string, len(impls))
	for i, im := range impls {
		out[i] = im.name
	}
	return out
}

// promisesNoLoss says whether system name promises that every
// acknowledged publish is delivered on every node, also under overload:
// this project's streaming systems do (the suite fails if one loses any).
// gossip-unary, the seed's unary push, does not: a forward given up after
// MaxAttempts is not repaired (docs/DESIGN.md §6, non-guarantees; the
// give-ups are counted in core.gave_up). It, memberlist and GossipSub (in
// either configuration) only report their figure.
func promisesNoLoss(name string) bool {
	return strings.HasPrefix(name, "gossip-") && name != "gossip-unary"
}
