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
	id, ack, err := s.n.Publish(ctx, req.GetId(), req.GetPayload(), requestOptions(req)...)
	if err != nil {
		return nil, err
	}
	return &pb.PublishResponse{Id: id, Ack: ack}, nil
}

// requestOptions are the PublishOptions a request asks for.
func requestOptions(req *pb.PublishRequest) []PublishOption {
	if req.GetTrace() {
		return []PublishOption{Traced()}
	}
	return nil
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
	// A queue, not a channel: it allocates what it holds, not the whole
	// buffer a client may ask for (subqueue.go).
	sub, next, err := s.n.subscribeAt(int(req.GetBuffer()), from, true)
	if err != nil {
		return err
	}
	defer sub.Close()
	// The liveness signal: registered, every later delivery reaches it.
	if err := stream.SendHeader(metadata.Pairs(NextOffsetHeader, strconv.FormatUint(next, 10))); err != nil {
		return err
	}
	for {
		// Close cancels the node context before it stops the server, which
		// waits for this handler: next returns then.
		d, err := sub.next(stream.Context().Done(), s.n.ctx.Done())
		if err != nil {
			switch {
			case stream.Context().Err() != nil:
				return status.FromContextError(stream.Context().Err()).Err()
			case sub.Err() != nil:
				return asRPCError(sub.Err()) // a slow consumer, or a replay overtaken
			}
			return status.Error(codes.Unavailable, "node is shutting down")
		}
		if err := stream.Send(deliveryToProto(d)); err != nil {
			return err
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

// Watch streams the node's WatchEvents until the client goes away or the
// node closes (then: Unavailable).
func (s nodeService) Watch(req *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchEvent]) error {
	w, err := s.n.Watch(int(req.GetBuffer()))
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		select {
		case e, ok := <-w.C():
			if !ok {
				return status.Error(codes.Unavailable, "node is shutting down")
			}
			if err := stream.Send(watchEventToProto(e)); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-s.n.ctx.Done():
			return status.Error(codes.Unavailable, "node is shutting down")
		}
	}
}

// memberEventKinds maps MemberEventKind to the wire's kinds.
var memberEventKinds = map[MemberEventKind]pb.WatchEventKind{
	MemberJoined:      pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_JOINED,
	MemberUpdated:     pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_UPDATED,
	MemberSuspected:   pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_SUSPECT,
	MemberAliveAgain:  pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_REFUTED,
	MemberDied:        pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_DEAD,
	MemberLeftCluster: pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_LEFT,
	MemberReaped:      pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_REAPED,
}

func watchEventToProto(e WatchEvent) *pb.WatchEvent {
	out := &pb.WatchEvent{At: timestamp(e.At), Peer: e.Peer, Address: e.Address, Message: e.Message, Missed: e.Missed}
	switch e.Kind {
	case WatchMember:
		out.Kind = memberEventKinds[e.Member.Kind]
		out.Member = membersToProto([]Member{e.Member.Member})[0]
	case WatchNeighborAdded:
		out.Kind = pb.WatchEventKind_WATCH_EVENT_KIND_NEIGHBOR_ADDED
	case WatchNeighborRemoved:
		out.Kind = pb.WatchEventKind_WATCH_EVENT_KIND_NEIGHBOR_REMOVED
	case WatchWarning:
		out.Kind = pb.WatchEventKind_WATCH_EVENT_KIND_WARNING
	}
	return out
}

// Trace returns the receipts of a traced message this node published.
func (s nodeService) Trace(_ context.Context, req *pb.TraceRequest) (*pb.TraceResponse, error) {
	t, ok := s.n.Trace(req.GetId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no trace of message %q on %s: it was not traced, not published here (ask its origin), or newer traces replaced it (the last %d are kept)",
			logID(req.GetId()), s.n.Hash, maxTraces)
	}
	return s.traceToProto(t), nil
}

// Traces returns the most recent traces this node keeps.
func (s nodeService) Traces(context.Context, *pb.TracesRequest) (*pb.TracesResponse, error) {
	var out []*pb.TraceResponse
	for _, t := range s.n.Traces(0) {
		out = append(out, s.traceToProto(t))
	}
	return &pb.TracesResponse{Traces: out}, nil
}

func (s nodeService) traceToProto(t Trace) *pb.TraceResponse {
	live := s.n.mship.numLive()
	if live == 0 { // no membership: this node and its neighbours
		for _, m := range s.n.Members() {
			if m.State == MemberAlive || m.State == MemberSuspect {
				live++
			}
		}
	}
	out := &pb.TraceResponse{Id: t.ID, Origin: s.n.Hash, PublishedAt: timestamp(t.PublishedAt),
		LiveMembers: uint32(live), Dropped: t.Dropped}
	for _, r := range t.Receipts {
		out.Receipts = append(out.Receipts, &pb.Receipt{Id: t.ID, Node: r.Node, From: r.From, Hops: r.Hops,
			DeliveredAt: timestamp(r.DeliveredAt), Repaired: r.Repaired})
	}
	return out
}
