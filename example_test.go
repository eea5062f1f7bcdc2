package gossip_test

import (
	"context"
	"fmt"
	"log/slog"

	gossip "github.com/grpc-gossip/gossip"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// The seed's "Using GossipNode", with two nodes on ephemeral ports.
func Example() {
	storage := gossip.NewLocalStorage()
	router := gossip.NewRandomRouter()
	logger := slog.New(slog.DiscardHandler)
	factory := gossip.NewGossipClientFactory()
	defer factory.Release()

	got := make(chan gossip.Delivery, 1)
	node2 := gossip.NewGossipNode("node2", "", storage, router, logger, factory,
		gossip.WithDeliveryHandler(func(d gossip.Delivery) { got <- d }))
	defer node2.Close()
	if err := node2.StartGRPCServer("127.0.0.1:0"); err != nil {
		panic(err)
	}

	node := gossip.NewGossipNode("node1", "", storage, router, logger, factory)
	defer node.Close()
	if err := node.StartGRPCServer("127.0.0.1:0"); err != nil {
		panic(err)
	}
	node.AddNeighbor("node2", node2.ListenAddr())

	msg := &pb.GossipMessage{Hash: "123", FromHash: node.Hash, Payload: "hello"}
	ack, err := node.PutMessageToClient(context.Background(), msg) // publish locally
	if err != nil {
		panic(err)
	}
	fmt.Println("ack from", ack.GetFrom())
	d := <-got
	fmt.Printf("node2 delivered %s from %s: %q after %d hop(s)\n", d.Hash, d.Origin, d.Payload, d.Hops)
	// Output:
	// ack from node1
	// node2 delivered 123 from node1: "hello" after 1 hop(s)
}

// A subscriber that remembers the last offset it processed resumes from
// the next one: the log replays what it missed, then it continues live.
func ExampleGossipNode_SubscribeFrom() {
	node := gossip.NewGossipNode("node1", "", nil, nil, nil, nil)
	defer node.Close()
	for _, p := range []string{"one", "two", "three"} {
		node.Publish(context.Background(), "", []byte(p))
	}
	lastProcessed := uint64(1) // e.g. read back from a file
	sub, err := node.SubscribeFrom(0, gossip.FromOffset(lastProcessed+1))
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	for range 2 {
		d := <-sub.C()
		fmt.Println(d.Offset, d.Payload)
	}
	// Output:
	// 2 two
	// 3 three
}
