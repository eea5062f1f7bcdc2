package gossip

import (
	"context"

	"google.golang.org/grpc"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
	"github.com/grpc-gossip/gossip/transport"
)

// Transport carries everything a node sends: the seed's unary
// PutMessageToClient, the per-neighbour Gossip.Stream and the
// MembershipService RPCs. See package transport for the contract. The
// default is gRPC over the connections of a GossipClientFactory
// (NewGRPCTransport); package memnet is an in-memory one. The node
// receives through its own methods (GossipNode implements
// transport.Handler), which the gRPC server (StartGRPCServer, Register)
// or memnet call.
type Transport = transport.Transport

// grpcTransport is Transport over the connections of a
// GossipClientFactory.
type grpcTransport struct {
	factory *GossipClientFactory
	owned   bool // Close releases the factory
}

// NewGRPCTransport returns a Transport over f's connections. Its Close does
// not release f: the factory's creator owns it.
func NewGRPCTransport(f *GossipClientFactory) Transport { return &grpcTransport{factory: f} }

func (t *grpcTransport) Send(ctx context.Context, addr string, msg *pb.GossipMessage) (*pb.GossipAck, error) {
	c, err := t.factory.Client(addr)
	if err != nil {
		return nil, err
	}
	return c.PutMessageToClient(ctx, msg)
}

// OpenStream opens Gossip.Stream on the shared connection to addr. The
// stream is created at once (gRPC does not wait for the server); a peer
// without the RPC answers the first Recv with Unimplemented.
func (t *grpcTransport) OpenStream(ctx context.Context, addr string) (transport.Stream, error) {
	c, err := t.factory.Client(addr)
	if err != nil {
		return nil, err
	}
	return c.Stream(ctx)
}

func (t *grpcTransport) Membership(addr string) (transport.Membership, error) {
	cc, err := t.factory.Conn(addr)
	if err != nil {
		return nil, err
	}
	return grpcMembership{pbgrpc.NewMembershipServiceClient(cc)}, nil
}

func (t *grpcTransport) Close() error {
	if t.owned {
		return t.factory.Release()
	}
	return nil
}

// Stream serves Gossip.Stream over gRPC: see ServeStream.
func (n *GossipNode) Stream(stream grpc.BidiStreamingServer[pb.Envelope, pb.Envelope]) error {
	return n.ServeStream(stream.Context(), stream)
}

var _ transport.Handler = (*GossipNode)(nil)
