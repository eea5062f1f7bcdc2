package gossip

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/grpc-gossip/gossip/internal/version"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// Version is reported by Status: this module's version in the running
// binary's build information (internal/version): in gossipd, the same as
// `gossipd --version` shows (a tag, a pseudo-version, or for a build
// without one the first 12 digits of the VCS revision); in a program that
// embeds the library, the version of github.com/grpc-gossip/gossip it was
// built with. A program may set it before starting nodes.
var Version = version.Of(modulePath)

// modulePath is this module's path.
const modulePath = "github.com/grpc-gossip/gossip"

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
