package gossip

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// Version is reported by Status.
var Version = "0.1.0-dev"

// nodeService serves the client API (NodeService) of a node.
type nodeService struct {
	pbgrpc.UnimplementedNodeServiceServer
	n *GossipNode
}

func (s nodeService) Publish(ctx context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	id, ack, err := s.n.Publish(ctx, req.GetId(), req.GetPayload())
	if err != nil {
		return nil, err
	}
	return &pb.PublishResponse{Id: id, Ack: ack}, nil
}

// Subscribe streams deliveries until the client goes away or the node
// closes (then: Unavailable). A client that disconnects mid-stream just
// ends its subscription.
func (s nodeService) Subscribe(req *pb.SubscribeRequest, stream grpc.ServerStreamingServer[pb.SubscribeResponse]) error {
	sub, err := s.n.Subscribe(int(req.GetBuffer()))
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		select {
		case d, ok := <-sub.C():
			if !ok {
				return status.Error(codes.Unavailable, "node is shutting down")
			}
			if err := stream.Send(deliveryToProto(d)); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-s.n.ctx.Done():
			// Close cancels the node context before it stops the server,
			// which waits for this handler: leave now.
			return status.Error(codes.Unavailable, "node is shutting down")
		}
	}
}

func (s nodeService) Members(context.Context, *pb.MembersRequest) (*pb.MembersResponse, error) {
	return &pb.MembersResponse{Members: membersToProto(s.n.Members())}, nil
}

func (s nodeService) Neighbors(context.Context, *pb.NeighborsRequest) (*pb.NeighborsResponse, error) {
	var out []*pb.Neighbor
	for _, ns := range s.n.NeighborStats() {
		out = append(out, &pb.Neighbor{
			Id: ns.ID, Address: ns.Endpoint, Sent: ns.Sent, Acked: ns.Acked, Failed: ns.Failed,
			Duplicates: ns.Duplicates, LastRtt: duration(ns.LastRTT), SmoothedRtt: duration(ns.SRTT),
			Loss: ns.Loss, LastAck: timestamp(ns.LastAck), LastFailure: timestamp(ns.LastFail),
			Transport: ns.Transport, LazySources: uint32(ns.LazySources),
		})
	}
	return &pb.NeighborsResponse{Neighbors: out}, nil
}

func (s nodeService) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	st := s.n.Stats()
	return &pb.StatusResponse{
		Id: st.ID, AdvertiseAddress: st.Endpoint, ListenAddress: s.n.ListenAddr(),
		StartedAt: timestamp(st.StartedAt), Uptime: duration(st.Uptime),
		Neighbors: uint32(st.Neighbors), Members: uint32(len(s.n.Members())),
		Delivered: st.Delivered, Forwarded: st.Forwards + st.Stream.EagerSent, Duplicates: st.Duplicates,
		Sent: st.Sent + st.Stream.CopiesSent, Acked: st.Acked + st.Stream.CopiesAcked, AckFailed: st.AckFailed, Retries: st.Retries,
		GaveUp: st.GaveUp, SendsDropped: st.SendsDropped, Invalid: st.Invalid, Malformed: st.Malformed,
		Active: uint64(st.Active), Seen: uint64(st.Seen),
		Ttl: duration(st.TTL), Diameter: uint32(st.Diameter), HopLatency: duration(st.HopLatency),
		Subscribers: uint32(st.Subscribers), SubscriberMissed: st.SubscriberMissed,
		Ready: st.Ready, Version: Version,
		Stream: streamStatusToProto(st.Stream),
	}, nil
}

func streamStatusToProto(s StreamStats) *pb.StreamStatus {
	return &pb.StreamStatus{
		StreamPeers: uint32(s.StreamPeers), UnaryPeers: uint32(s.UnaryPeers), Inbound: uint32(s.Inbound),
		EagerSent: s.EagerSent, IhavesSent: s.IHavesSent, IhavesReceived: s.IHavesReceived,
		PrunesSent: s.PrunesSent, PrunesReceived: s.PrunesReceived, GraftsSent: s.GraftsSent, GraftsServed: s.GraftsServed,
		DigestsSent: s.DigestsSent, DigestsReceived: s.DigestsRecv, SyncSent: s.SyncSent, Repaired: s.Repaired,
		HolesSkipped: s.HolesSkipped, CopiesSent: s.CopiesSent, CopiesAcked: s.CopiesAcked,
		EnvelopesSent: s.EnvelopesSent, EnvelopesReceived: s.EnvelopesRecv, Resent: s.Resent,
		Reconnects: s.Reconnects, UnaryFallbacks: s.UnaryFallbacks, BadFrames: s.BadFrames,
		QueuedBytes: uint64(s.QueuedBytes), Deferred: s.Deferred, FramesDropped: s.FramesDropped,
		PublishWaits: s.PublishWaits, PublishRejected: s.PublishRejected, Stored: uint64(s.Stored),
		GraftsDelayed: s.GraftsDelayed, ParentSwitches: s.ParentSwitches, TreeSwaps: s.TreeSwaps, Withdrawn: s.Withdrawn,
	}
}

func deliveryToProto(d Delivery) *pb.SubscribeResponse {
	return &pb.SubscribeResponse{
		Id: d.Hash, Origin: d.Origin, Payload: []byte(d.Payload), Hops: d.Hops, From: d.From,
		ReceivedAt: timestamp(d.ReceivedAt), CreatedAt: timestamp(d.CreatedAt), Missed: d.Missed,
	}
}

// timestamp is nil for the zero time (unset in the protocol).
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func duration(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
