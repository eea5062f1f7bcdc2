package memnet

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gossipv1 "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// UnaryFunc is the seed's PutMessageToClient as a function.
type UnaryFunc func(ctx context.Context, msg *gossipv1.GossipMessage) (*gossipv1.GossipAck, error)

// Unary returns a Handler that speaks only the seed's unary RPC, like a
// node built from the seed: PutMessageToClient calls f, streams and the
// membership RPCs are answered with codes.Unimplemented (a gossip node
// then sends to it with PutMessageToClient).
func Unary(f UnaryFunc) Handler { return unaryHandler{f} }

type unaryHandler struct{ f UnaryFunc }

func (h unaryHandler) PutMessageToClient(ctx context.Context, msg *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
	return h.f(ctx, msg)
}

func (unaryHandler) ServeStream(context.Context, transport.Stream) error {
	return status.Error(codes.Unimplemented, "memnet: this node serves only PutMessageToClient")
}

func (unaryHandler) Membership() transport.Membership { return noMembership{} }

// noMembership answers every MembershipService RPC with Unimplemented.
type noMembership struct{}

func errNoMembership() error {
	return status.Error(codes.Unimplemented, "memnet: this node does not serve MembershipService")
}

func (noMembership) Join(context.Context, *gossipv1.JoinRequest) (*gossipv1.JoinResponse, error) {
	return nil, errNoMembership()
}

func (noMembership) Ping(context.Context, *gossipv1.PingRequest) (*gossipv1.PingResponse, error) {
	return nil, errNoMembership()
}

func (noMembership) PingReq(context.Context, *gossipv1.PingReqRequest) (*gossipv1.PingReqResponse, error) {
	return nil, errNoMembership()
}

func (noMembership) PushUpdates(context.Context, *gossipv1.PushUpdatesRequest) (*gossipv1.PushUpdatesResponse, error) {
	return nil, errNoMembership()
}

func (noMembership) Sync(context.Context, *gossipv1.SyncRequest) (*gossipv1.SyncResponse, error) {
	return nil, errNoMembership()
}

func (noMembership) Link(context.Context, *gossipv1.LinkRequest) (*gossipv1.LinkResponse, error) {
	return nil, errNoMembership()
}

func (noMembership) Receipts(context.Context, *gossipv1.ReceiptsRequest) (*gossipv1.ReceiptsResponse, error) {
	return nil, errNoMembership()
}
