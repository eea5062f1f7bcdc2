// Package gossipv1grpc is the generated gRPC code of the gossip.v1 wire
// protocol's services (gossip_rpc.proto): Gossip (the seed's
// PutMessageToClient, and Stream), NodeService (the client API) and
// MembershipService (between nodes). Their messages are in package
// gossipv1. Import it as pbgrpc beside pb:
//
//	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
//	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
//
//	cli := pbgrpc.NewGossipClient(conn)
//	ack, err := cli.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "123", Payload: "hello"})
package gossipv1grpc
