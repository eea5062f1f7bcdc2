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

// grpcMembership is a MembershipService client as a transport.Membership
// (the generated client takes call options, which the seam does not).
type grpcMembership struct {
	c pbgrpc.MembershipServiceClient
}

func (m grpcMembership) Join(ctx context.Context, r *pb.JoinRequest) (*pb.JoinResponse, error) {
	return m.c.Join(ctx, r)
}

func (m grpcMembership) Ping(ctx context.Context, r *pb.PingRequest) (*pb.PingResponse, error) {
	return m.c.Ping(ctx, r)
}

func (m grpcMembership) PingReq(ctx context.Context, r *pb.PingReqRequest) (*pb.PingReqResponse, error) {
	return m.c.PingReq(ctx, r)
}

func (m grpcMembership) PushUpdates(ctx context.Context, r *pb.PushUpdatesRequest) (*pb.PushUpdatesResponse, error) {
	return m.c.PushUpdates(ctx, r)
}

func (m grpcMembership) Sync(ctx context.Context, r *pb.SyncRequest) (*pb.SyncResponse, error) {
	return m.c.Sync(ctx, r)
}

func (m grpcMembership) Link(ctx context.Context, r *pb.LinkRequest) (*pb.LinkResponse, error) {
	return m.c.Link(ctx, r)
}

// grpcMembershipServer serves a node's transport.Membership as the gRPC
// MembershipService.
type grpcMembershipServer struct {
	pbgrpc.UnimplementedMembershipServiceServer
	m transport.Membership
}

func (s grpcMembershipServer) Join(ctx context.Context, r *pb.JoinRequest) (*pb.JoinResponse, error) {
	return s.m.Join(ctx, r)
}

func (s grpcMembershipServer) Ping(ctx context.Context, r *pb.PingRequest) (*pb.PingResponse, error) {
	return s.m.Ping(ctx, r)
}

func (s grpcMembershipServer) PingReq(ctx context.Context, r *pb.PingReqRequest) (*pb.PingReqResponse, error) {
	return s.m.PingReq(ctx, r)
}

func (s grpcMembershipServer) PushUpdates(ctx context.Context, r *pb.PushUpdatesRequest) (*pb.PushUpdatesResponse, error) {
	return s.m.PushUpdates(ctx, r)
}

func (s grpcMembershipServer) Sync(ctx context.Context, r *pb.SyncRequest) (*pb.SyncResponse, error) {
	return s.m.Sync(ctx, r)
}

func (s grpcMembershipServer) Link(ctx context.Context, r *pb.LinkRequest) (*pb.LinkResponse, error) {
	return s.m.Link(ctx, r)
}

// Stream serves Gossip.Stream over gRPC: see ServeStream.
func (n *GossipNode) Stream(stream grpc.BidiStreamingServer[pb.Envelope, pb.Envelope]) error {
	return n.ServeStream(stream.Context(), stream)
}

var _ transport.Handler = (*GossipNode)(nil)
