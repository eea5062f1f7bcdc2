// Package gossip is a decentralised broadcast library over gRPC: publish a
// message on any node and every node delivers it to its application once.
//
// It keeps the seed system's names so its users feel at home:
//
//	storage := gossip.NewLocalStorage()
//	router := gossip.NewRandomRouter()
//	factory := gossip.NewGossipClientFactory()
//	node := gossip.NewGossipNode("node1", "127.0.0.1:9001", storage, router, logger, factory)
//	node.StartGRPCServer(":9001")
//	node.AddNeighbor("node2", "127.0.0.1:9002")
//	msg := &pb.GossipMessage{Hash: "123", FromHash: node.Hash, Payload: "hello"}
//	node.PutMessageToClient(context.Background(), msg) // publish locally
//
// A GossipNode is the runtime around a pure protocol core
// (internal/core): it owns the goroutines, timers and the Transport, and
// serialises calls into the core. Transports carry messages between nodes:
// the gRPC one (the seed's unary PutMessageToClient, through a
// GossipClientFactory) by default, and the in-memory one of package memnet
// for tests and simulations.
//
// Every delivered message gets an offset in the node's delivery log
// (Delivery.Offset); SubscribeFrom replays the log from an offset, a time
// or the earliest retained message, then continues live. WithDataDir
// keeps the node's state and log on disk, so that a node restarted on it
// delivers nothing twice and fetches what it missed (docs/DESIGN.md §13).
//
// See docs/DESIGN.md for the protocol, the state of a message on a node,
// the TTL rules and what is and is not guaranteed.
package gossip
