package gossip

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
	"github.com/grpc-gossip/gossip/transport"
)

// The gRPC adapters of MembershipService: a client (for grpcTransport) and
// a server (registered by Register) around the transport-neutral
// membershipService (membership_service.go).

// grpcMembership is a MembershipService client as a transport.Membership
// (the generated client takes call options, which the seam does not).
// With mutual TLS, an answer that names its sender (Ping, PingReq, Sync;
// the seed's own entry of a Join) must name the node of the server's
// certificate: a member cannot answer as another, so that an ack for a
// probed member comes from that member (membership_client.go checks that
// it names the member probed). Streams are bound the same way
// (certBoundStream).
type grpcMembership struct {
	c    pbgrpc.MembershipServiceClient
	addr string
}

// bind checks that from, the sender an answer to call names, is the node
// of the server's certificate in p (nothing to check without TLS).
func (m grpcMembership) bind(call string, p *peer.Peer, from string) error {
	if id, ok := certNode(p); ok && id != from {
		return status.Errorf(codes.PermissionDenied, "membership %s to %s: the server answered as node %q but its certificate is for node %q", call, m.addr, from, id)
	}
	return nil
}

func (m grpcMembership) Join(ctx context.Context, r *pb.JoinRequest) (*pb.JoinResponse, error) {
	var p peer.Peer
	resp, err := m.c.Join(ctx, r, grpc.Peer(&p))
	if err != nil {
		return nil, err
	}
	for _, pm := range resp.GetMembers() {
		if pm.GetSelf() {
			if err := m.bind("join", &p, pm.GetId()); err != nil {
				return nil, err
			}
		}
	}
	return resp, nil
}

func (m grpcMembership) Ping(ctx context.Context, r *pb.PingRequest) (*pb.PingResponse, error) {
	var p peer.Peer
	resp, err := m.c.Ping(ctx, r, grpc.Peer(&p))
	if err != nil {
		return nil, err
	}
	return resp, m.bind("ping", &p, resp.GetFrom())
}

func (m grpcMembership) PingReq(ctx context.Context, r *pb.PingReqRequest) (*pb.PingReqResponse, error) {
	var p peer.Peer
	resp, err := m.c.PingReq(ctx, r, grpc.Peer(&p))
	if err != nil {
		return nil, err
	}
	return resp, m.bind("ping-req", &p, resp.GetFrom())
}

func (m grpcMembership) PushUpdates(ctx context.Context, r *pb.PushUpdatesRequest) (*pb.PushUpdatesResponse, error) {
	return m.c.PushUpdates(ctx, r)
}

func (m grpcMembership) Sync(ctx context.Context, r *pb.SyncRequest) (*pb.SyncResponse, error) {
	var p peer.Peer
	resp, err := m.c.Sync(ctx, r, grpc.Peer(&p))
	if err != nil {
		return nil, err
	}
	return resp, m.bind("sync", &p, resp.GetFrom())
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
