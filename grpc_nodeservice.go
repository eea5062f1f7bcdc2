package gossip

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// Version is reported by Status.
var Version = "0.1.0-dev"

// NextOffsetHeader is the response header Subscribe sends as soon as the
// subscription is registered: the offset the next message delivered will
// have (the liveness signal; see the proto).
const NextOffsetHeader = "gossip-next-offset"

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
	from := FromNow()
	switch st := req.GetStart().(type) {
	case *pb.SubscribeRequest_FromOffset:
		from = FromOffset(st.FromOffset)
	case *pb.SubscribeRequest_FromTime:
		if err := st.FromTime.CheckValid(); err != nil {
			return status.Errorf(codes.InvalidArgument, "from_time: %v", err)
		}
		from = FromTime(st.FromTime.AsTime())
	case *pb.SubscribeRequest_FromEarliest:
		if st.FromEarliest {
			from = FromEarliest()
		}
	}
	sub, next, err := s.n.subscribeAt(int(req.GetBuffer()), from)
	if err != nil {
		return err
	}
	defer sub.Close()
	// The liveness signal: registered, every later delivery reaches it.
	if err := stream.SendHeader(metadata.Pairs(NextOffsetHeader, strconv.FormatUint(next, 10))); err != nil {
		return err
	}
	for {
		select {
		case d, ok := <-sub.C():
			if !ok {
				if err := sub.Err(); err != nil {
					return asRPCError(err)
				}
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
	cs := st.Counters()
	out := make([]*pb.Counter, len(cs))
	for i, c := range cs {
		out[i] = &pb.Counter{Name: c.Name, Group: c.Group, Kind: string(c.Kind), Help: c.Help, Value: c.Value}
	}
	return &pb.StatusResponse{
		Id: st.ID, AdvertiseAddress: st.Endpoint, ListenAddress: s.n.ListenAddr(),
		StartedAt: timestamp(st.StartedAt), Uptime: duration(st.Uptime),
		Ready: st.Ready, Version: Version, Counters: out,
	}, nil
}

func deliveryToProto(d Delivery) *pb.SubscribeResponse {
	return &pb.SubscribeResponse{
		Id: d.Hash, Origin: d.Origin, Payload: []byte(d.Payload), Hops: d.Hops, From: d.From,
		ReceivedAt: timestamp(d.ReceivedAt), CreatedAt: timestamp(d.CreatedAt), Missed: d.Missed,
		Offset: d.Offset,
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
