package gossip_test

import (
	"context"
	"fmt"
	"time"

	gossip "github.com/grpc-gossip/gossip"
)

// Two nodes form a cluster with Join; the seed reports the newcomer through
// its member event handler, and Leave announces a graceful departure.
func ExampleGossipNode_Join() {
	joined := make(chan gossip.MemberEvent, 16) // the handler must not block: buffer
	seed := gossip.NewGossipNode("seed", "", nil, nil, nil, nil,
		gossip.WithMembership(gossip.DefaultLocalMembershipConfig()),
		gossip.WithMemberEventHandler(func(e gossip.MemberEvent) {
			if e.Kind == gossip.MemberJoined {
				joined <- e
			}
		}))
	defer seed.Close()
	if err := seed.StartGRPCServer("127.0.0.1:0"); err != nil {
		panic(err)
	}

	node := gossip.NewGossipNode("node1", "", nil, nil, nil, nil, gossip.WithMembership(gossip.DefaultLocalMembershipConfig()))
	defer node.Close()
	if err := node.StartGRPCServer("127.0.0.1:0"); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	others, err := node.Join(ctx, []string{seed.ListenAddr()})
	if err != nil {
		panic(err)
	}
	fmt.Println("node1 knows", others, "other member(s)")
	e := <-joined
	fmt.Println("seed saw", e.Member.ID, e.Kind, e.Member.State)
	for _, m := range node.Members() {
		fmt.Println(m.ID, m.State, "self:", m.Self)
	}
	if err := node.Leave(ctx); err != nil {
		panic(err)
	}
	// Output:
	// node1 knows 1 other member(s)
	// seed saw node1 join alive
	// node1 alive self: true
	// seed alive self: false
}
