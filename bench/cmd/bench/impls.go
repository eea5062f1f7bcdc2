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
// this project's systems do (the suite fails if one loses any); memberlist
// and GossipSub do not, and only report their figure.
func promisesNoLoss(name string) bool { return strings.HasPrefix(name, "gossip-") }
