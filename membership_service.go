package gossip

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/swim"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// The server side: MembershipService. Errors become gRPC statuses here.

// membershipService serves MembershipService for a node, on any transport
// (Membership; the gRPC server wraps it in grpcMembershipServer).
type membershipService struct {
	n *GossipNode
}

// Membership returns the node's MembershipService handler
// (transport.Handler).
func (n *GossipNode) Membership() transport.Membership { return membershipService{n: n} }

// started starts membership on the first membership RPC (a seed that never
// called Join).
func (s membershipService) started() (*membership, error) {
	if _, err := s.n.mship.start(); err != nil {
		return nil, asRPCError(err)
	}
	return s.n.mship, nil
}

// Join adds the caller to the membership and returns every member this
// node knows, itself first with self = true.
func (s membershipService) Join(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	pm := req.GetMember()
	if pm.GetId() == "" || pm.GetAddress() == "" {
		return nil, asRPCError(fmt.Errorf("join: %w", ErrEmptyNeighbor))
	}
	if err := s.n.checkClaim(ctx, "join", pm.GetId()); err != nil {
		return nil, err
	}
	if len(pm.GetId()) > maxMemberField || len(pm.GetAddress()) > maxMemberField {
		return nil, status.Errorf(codes.InvalidArgument, "join: member id or address longer than %d bytes", maxMemberField)
	}
	m, err := s.started()
	if err != nil {
		return nil, err
	}
	if pm.GetId() != s.n.Hash { // a twin learns of the conflict from self below
		m.step(swim.Message{Kind: swim.KindSync, From: pm.GetId(), FromAddr: pm.GetAddress(), Join: true, Updates: []swim.Update{{
			ID: pm.GetId(), Addr: pm.GetAddress(), State: swim.Alive, Incarnation: pm.GetIncarnation(), MaxPayload: pm.GetMaxPayloadBytes()}}})
		s.n.logger.Info("member joined through this node", "peer", pm.GetId(), "endpoint", pm.GetAddress())
		m.rebalance(false) // the joiner may be linked before Join returns
	}
	return &pb.JoinResponse{Members: membersToProto(s.n.Members())}, nil
}

// Ping answers a probe.
func (s membershipService) Ping(ctx context.Context, req *pb.PingRequest) (*pb.PingResponse, error) {
	if err := s.n.checkClaim(ctx, "ping", req.GetFrom()); err != nil {
		return nil, err
	}
	m, err := s.started()
	if err != nil {
		return nil, err
	}
	reply, ok := m.step(swim.Message{Kind: swim.KindPing, From: req.GetFrom(), FromAddr: req.GetFromAddress(), Seq: req.GetSeq(),
		Target: req.GetTarget(), Updates: updatesFromProto(req.GetUpdates())})
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "this is %q, not %q", s.n.Hash, req.GetTarget())
	}
	return &pb.PingResponse{Seq: reply.Seq, From: reply.From, Updates: updatesToProto(reply.Updates)}, nil
}

// PingReq probes the target for the caller and answers whether it acked.
func (s membershipService) PingReq(ctx context.Context, req *pb.PingReqRequest) (*pb.PingReqResponse, error) {
	if err := s.n.checkClaim(ctx, "ping-req", req.GetFrom()); err != nil {
		return nil, err
	}
	m, err := s.started()
	if err != nil {
		return nil, err
	}
	if req.GetTargetAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "ping-req: empty target address")
	}
	ping, _ := m.step(swim.Message{Kind: swim.KindPingReq, From: req.GetFrom(), FromAddr: req.GetFromAddress(), Seq: req.GetSeq(),
		Target: req.GetTarget(), TargetAddr: req.GetTargetAddress(), Updates: updatesFromProto(req.GetUpdates())})
	timeout := min(req.GetTimeout().AsDuration(), m.cfg.ProbeInterval*time.Duration(m.cfg.AwarenessMax))
	if timeout <= 0 {
		timeout = m.cfg.ProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	acked := false
	if cli, err := s.n.transport.Membership(ping.ToAddr); err == nil {
		resp, err := cli.Ping(ctx, &pb.PingRequest{Seq: ping.Seq, From: ping.From, FromAddress: ping.FromAddr,
			Target: ping.Target, Updates: updatesToProto(ping.Updates)})
		if err == nil {
			acked = true
			m.step(swim.Message{Kind: swim.KindAck, From: resp.GetFrom(), Seq: resp.GetSeq(), Updates: updatesFromProto(resp.GetUpdates())})
		}
	}
	return &pb.PingReqResponse{Acked: acked, From: s.n.Hash}, nil
}

// PushUpdates merges a gossip round's updates.
func (s membershipService) PushUpdates(ctx context.Context, req *pb.PushUpdatesRequest) (*pb.PushUpdatesResponse, error) {
	if err := s.n.checkClaim(ctx, "push-updates", req.GetFrom()); err != nil {
		return nil, err
	}
	m, err := s.started()
	if err != nil {
		return nil, err
	}
	m.step(swim.Message{Kind: swim.KindGossip, From: req.GetFrom(), FromAddr: req.GetFromAddress(), Updates: updatesFromProto(req.GetUpdates())})
	return &pb.PushUpdatesResponse{}, nil
}

// Sync merges the caller's full state and answers with this node's.
func (s membershipService) Sync(ctx context.Context, req *pb.SyncRequest) (*pb.SyncResponse, error) {
	if err := s.n.checkClaim(ctx, "sync", req.GetFrom()); err != nil {
		return nil, err
	}
	m, err := s.started()
	if err != nil {
		return nil, err
	}
	reply, _ := m.step(swim.Message{Kind: swim.KindSync, From: req.GetFrom(), FromAddr: req.GetFromAddress(), Updates: updatesFromProto(req.GetMembers())})
	return &pb.SyncResponse{From: reply.From, FromAddress: reply.FromAddr, Members: updatesToProto(reply.Updates)}, nil
}

// Link records that the caller chose (or dropped) this node as a
// neighbour.
func (s membershipService) Link(ctx context.Context, req *pb.LinkRequest) (*pb.LinkResponse, error) {
	if req.GetFrom() == "" || req.GetFromAddress() == "" {
		return nil, asRPCError(fmt.Errorf("link: %w", ErrEmptyNeighbor))
	}
	if err := s.n.checkClaim(ctx, "link", req.GetFrom()); err != nil {
		return nil, err
	}
	if len(req.GetFrom()) > maxMemberField || len(req.GetFromAddress()) > maxMemberField {
		return nil, status.Errorf(codes.InvalidArgument, "link: id or address longer than %d bytes", maxMemberField)
	}
	m, err := s.started()
	if err != nil {
		return nil, err
	}
	if err := m.inbound(req.GetFrom(), req.GetFromAddress(), req.GetUnlink()); err != nil {
		return nil, asRPCError(err)
	}
	return &pb.LinkResponse{}, nil
}

// Receipts records receipts of traced messages this node published.
func (s membershipService) Receipts(ctx context.Context, req *pb.ReceiptsRequest) (*pb.ReceiptsResponse, error) {
	if len(req.GetReceipts()) > receiptBatch {
		return nil, status.Errorf(codes.InvalidArgument, "receipts: %d in one request, at most %d", len(req.GetReceipts()), receiptBatch)
	}
	// A node reports its own deliveries only: with TLS the sender is its
	// certificate's node, so no member can claim receipts for another.
	if err := s.n.checkClaim(ctx, "receipts", req.GetFrom()); err != nil {
		return nil, err
	}
	for _, r := range req.GetReceipts() {
		if r.GetNode() != req.GetFrom() {
			return nil, status.Errorf(codes.InvalidArgument, "receipts from %q: a receipt names node %q; a node sends only its own receipts", req.GetFrom(), r.GetNode())
		}
	}
	s.n.addReceipts(req.GetReceipts())
	return &pb.ReceiptsResponse{}, nil
}
