package gossip

import (
	"context"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Transport carries messages from this node to others.
//
// Send delivers msg to the node at addr and returns its acknowledgement. It
// blocks until the ACK arrives, the send fails, or ctx ends; it is called
// concurrently from many goroutines. msg is shared with other sends and
// must not be modified or retained after Send returns. Errors should be
// gRPC status errors (Unavailable for an unreachable peer,
// DeadlineExceeded for a timeout, the peer's own code for a rejection):
// the node retries Unavailable, DeadlineExceeded and Aborted.
//
// Receiving is not part of the interface: a node receives through its
// PutMessageToClient method, which the gRPC server (StartGRPCServer) or an
// in-memory network (package memnet) calls. A streaming transport fits the
// same contract: Send enqueues on the peer's stream and waits for the ACK
// frame.
//
// Close releases the transport's resources; Send after Close fails.
type Transport interface {
	Send(ctx context.Context, addr string, msg *pb.GossipMessage) (*pb.GossipAck, error)
	Close() error
}

// grpcTransport sends with the seed's unary PutMessageToClient RPC over the
// connections of a GossipClientFactory.
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

func (t *grpcTransport) Close() error {
	if t.owned {
		return t.factory.Release()
	}
	return nil
}
