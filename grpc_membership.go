package gossip

import (
	"context"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
	"github.com/grpc-gossip/gossip/transport"
)

// The gRPC adapters of MembershipService: a client (for grpcTransport) and
// a server (registered by Register) around the transport-neutral
// membershipService (membership_service.go).

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

func (m grpcMembership) Receipts(ctx context.Context, r *pb.ReceiptsRequest) (*pb.ReceiptsResponse, error) {
	return m.c.Receipts(ctx, r)
}

func (s grpcMembershipServer) Receipts(ctx context.Context, r *pb.ReceiptsRequest) (*pb.ReceiptsResponse, error) {
	return s.m.Receipts(ctx, r)
}
