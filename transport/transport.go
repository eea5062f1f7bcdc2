// Package transport is the seam between a gossip node and the network:
// every byte a node sends goes through a Transport, and every byte it
// receives comes in through its Handler. There are two implementations:
// gRPC (the default, in package gossip: gossip.NewGRPCTransport and
// GossipNode's gRPC server) and an in-memory network for tests and
// simulations (package memnet), so the path users run is the path the
// deterministic in-memory tests run.
//
// A node sends three kinds of traffic, and the seam has one part for each:
//
//   - the seed's unary RPC, PutMessageToClient (Transport.Send);
//   - one long-lived stream of Envelopes per neighbour, Gossip.Stream
//     (Transport.OpenStream, served by Handler.ServeStream);
//   - the membership protocol's RPCs, MembershipService
//     (Transport.Membership, served by Handler.Membership).
//
// Errors are gRPC status errors (google.golang.org/grpc/status), whatever
// the implementation: codes.Unavailable for a peer that cannot be reached
// or a stream that broke, codes.DeadlineExceeded when ctx's deadline
// passed first, codes.Unimplemented for a peer (or transport) without the
// streaming RPC, and the peer's own code for a rejection. The node decides
// retries and fallbacks by these codes.
package transport

import (
	"context"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Transport carries a node's traffic to other nodes, which it names by
// address (host:port for gRPC, any string for memnet). Its methods are
// called concurrently from many goroutines. Messages passed in are shared
// with other sends and must not be modified or retained after the call
// returns; messages returned belong to the caller.
type Transport interface {
	// Send delivers msg to the node at addr with the seed's unary
	// PutMessageToClient and returns its acknowledgement. It blocks until
	// the ACK arrives, the call fails, or ctx ends.
	Send(ctx context.Context, addr string, msg *pb.GossipMessage) (*pb.GossipAck, error)

	// OpenStream opens Gossip.Stream to the node at addr. The stream lives
	// until ctx ends (which is how the caller closes it), the peer ends
	// it, or the connection breaks; after that Send and Recv fail. A peer
	// without the streaming RPC fails it, or the first Recv, with
	// codes.Unimplemented (the node then sends to it with Send).
	OpenStream(ctx context.Context, addr string) (Stream, error)

	// Membership returns a client of the MembershipService of the node at
	// addr. Each of its calls is one RPC: bounded by its ctx, failing
	// with a status error. Getting the client does not contact the peer.
	Membership(addr string) (Membership, error)

	// Close releases the transport's resources; calls after Close fail
	// with codes.Unavailable. Streams it opened end.
	Close() error
}

// Stream is one Gossip.Stream, from either end: a reliable, ordered
// sequence of Envelopes in each direction. Send may block while the
// peer does not read (flow control). Send and Recv may be called
// concurrently with each other, but neither concurrently with itself.
// Recv returns io.EOF when the peer ended the stream cleanly, a status
// error otherwise.
type Stream interface {
	Send(*pb.Envelope) error
	Recv() (*pb.Envelope, error)
}

// Membership is the MembershipService, on both sides of the seam: a
// client of a remote node (Transport.Membership) and the handler of the
// local one (Handler.Membership). See gossip_rpc.proto for each RPC.
type Membership interface {
	Join(context.Context, *pb.JoinRequest) (*pb.JoinResponse, error)
	Ping(context.Context, *pb.PingRequest) (*pb.PingResponse, error)
	PingReq(context.Context, *pb.PingReqRequest) (*pb.PingReqResponse, error)
	PushUpdates(context.Context, *pb.PushUpdatesRequest) (*pb.PushUpdatesResponse, error)
	Sync(context.Context, *pb.SyncRequest) (*pb.SyncResponse, error)
	Link(context.Context, *pb.LinkRequest) (*pb.LinkResponse, error)
	// Receipts carries receipts of traced messages to their origin.
	Receipts(context.Context, *pb.ReceiptsRequest) (*pb.ReceiptsResponse, error)
}

// Handler is the receiving side of a node: what a transport hands incoming
// traffic to. *gossip.GossipNode implements it. Its methods are called
// concurrently; their errors go back to the caller unchanged, so they are
// status errors (or implement GRPCStatus).
type Handler interface {
	// PutMessageToClient handles one unary message (the seed's RPC).
	PutMessageToClient(ctx context.Context, msg *pb.GossipMessage) (*pb.GossipAck, error)
	// ServeStream serves one stream a peer opened, until the stream ends
	// or ctx (the stream's context: cancelled when the peer goes away) is
	// done. Its return value ends the stream: nil as io.EOF at the peer,
	// an error as that error.
	ServeStream(ctx context.Context, s Stream) error
	// Membership returns the node's MembershipService handler.
	Membership() Membership
}

// Limits is implemented by a Handler that refuses requests above a size,
// as a gRPC server with grpc.MaxRecvMsgSize does: in-memory transports use
// it to refuse what the real server would (codes.ResourceExhausted).
type Limits interface {
	// MaxRecvMsgSize is the largest request or stream message accepted,
	// in bytes of its encoding.
	MaxRecvMsgSize() int
}
