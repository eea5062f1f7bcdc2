package gossip

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/auth"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
	"github.com/grpc-gossip/gossip/transport"
)

// Transport carries everything a node sends: the seed's unary
// PutMessageToClient, the per-neighbour Gossip.Stream and the
// MembershipService RPCs. See package transport for the contract. The
// default is gRPC over the connections of a GossipClientFactory
// (NewGRPCTransport); package memnet is an in-memory one. The node
// receives through its own methods (GossipNode implements
// transport.Handler), which the gRPC server (StartGRPCServer, Register)
// or memnet call.
type Transport = transport.Transport

// grpcTransport is Transport over the connections of a
// GossipClientFactory.
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

// OpenStream opens Gossip.Stream on the shared connection to addr. The
// stream is created at once (gRPC does not wait for the server); a peer
// without the RPC answers the first Recv with Unimplemented.
func (t *grpcTransport) OpenStream(ctx context.Context, addr string) (transport.Stream, error) {
	c, err := t.factory.Client(addr)
	if err != nil {
		return nil, err
	}
	s, err := c.Stream(ctx)
	if err != nil {
		return nil, err
	}
	return &certBoundStream{BidiStreamingClient: s, addr: addr}, nil
}

// certBoundStream is a dialled Gossip.Stream whose peer's hello must name
// the node of the server's certificate, when the connection has one
// (mutual TLS): a member cannot answer as another. The node then checks
// that the id is the neighbour it meant to reach (link.read).
type certBoundStream struct {
	grpc.BidiStreamingClient[pb.Envelope, pb.Envelope]
	addr    string
	checked bool // Recv runs on one goroutine (transport.Stream)
}

func (s *certBoundStream) Recv() (*pb.Envelope, error) {
	env, err := s.BidiStreamingClient.Recv()
	if err != nil || s.checked || env.GetHello() == nil {
		return env, err
	}
	s.checked = true
	if id, ok := s.ServerNode(); ok && id != env.GetHello().GetId() {
		return nil, status.Errorf(codes.PermissionDenied, "stream to %s: the server answered as node %q but its certificate is for node %q", s.addr, env.GetHello().GetId(), id)
	}
	return env, nil
}

// ServerNode is the node id of the server's certificate; false without
// TLS. The connection's handshake is over when the stream exists, so the
// dialler can check whom it reached before it sends anything (link).
func (s *certBoundStream) ServerNode() (string, bool) {
	p, ok := peer.FromContext(s.Context())
	if !ok {
		return "", false
	}
	return certNode(p)
}

// certNode is the node id of p's certificate; false without TLS or
// without a node identity.
func certNode(p *peer.Peer) (string, bool) {
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return "", false // plaintext: nothing to bind
	}
	for _, u := range ti.State.PeerCertificates[0].URIs {
		if id, err := auth.ParseID(u); err == nil && id.Kind == auth.KindNode {
			return id.Name, true
		}
	}
	return "", false
}

func (t *grpcTransport) Membership(addr string) (transport.Membership, error) {
	cc, err := t.factory.Conn(addr)
	if err != nil {
		return nil, err
	}
	return grpcMembership{c: pbgrpc.NewMembershipServiceClient(cc), addr: addr}, nil
}

func (t *grpcTransport) Close() error {
	if t.owned {
		return t.factory.Release()
	}
	return nil
}

// Stream serves Gossip.Stream over gRPC: see ServeStream.
func (n *GossipNode) Stream(stream grpc.BidiStreamingServer[pb.Envelope, pb.Envelope]) error {
	return n.ServeStream(stream.Context(), stream)
}

var _ transport.Handler = (*GossipNode)(nil)
