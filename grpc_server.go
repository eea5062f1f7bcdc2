package gossip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// StartGRPCServer listens on port and serves the node's services (see
// Register) and gRPC reflection (so grpcurl works; with WithSecurity only
// if its Config.Reflection) in the background until Close. port is
// ":9001", "9001", "127.0.0.1:9001" or "127.0.0.1:0" (an ephemeral port:
// see ListenAddr). It returns once the listener is bound. If the node's
// Endpoint is empty or ends in ":0", it is set to the bound address; call
// it before other goroutines read Endpoint.
func (n *GossipNode) StartGRPCServer(port string) error {
	addr := port
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	if n.closed {
		return ErrClosed
	}
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	if n.server != nil {
		return ErrServerStarted
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gossip: StartGRPCServer: %w", err)
	}
	srv := grpc.NewServer(n.ServerOptions()...)
	n.Register(srv)
	if n.sec == nil || n.sec.Reflection() {
		reflection.Register(srv)
	}
	n.server, n.lis = srv, lis
	if n.Endpoint == "" || strings.HasSuffix(n.Endpoint, ":0") {
		n.Endpoint = lis.Addr().String() // before the node is shared: see StartGRPCServer
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(lis); err != nil {
			n.logger.Error("gRPC server stopped", "err", err)
		}
	}()
	n.logger.Info("gRPC server listening", "addr", lis.Addr().String())
	return nil
}

// ListenAddr returns the address the gRPC server is bound to: the one of
// StartGRPCServer, or the one given to SetListenAddr; "" before either.
func (n *GossipNode) ListenAddr() string {
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	switch {
	case n.lis != nil:
		return n.lis.Addr().String()
	case n.listenAddr != "":
		return n.listenAddr
	}
	return ""
}

// SetListenAddr tells a node served on a caller's own gRPC server (see
// Register) the address that server is bound to, for ListenAddr and Status.
func (n *GossipNode) SetListenAddr(addr string) {
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	n.listenAddr = addr
}

// MaxHeaderBytes bounds the request metadata (headers) the node's server
// accepts, in bytes as HTTP/2 counts them: a request over it is refused
// before it reaches the node. (gRPC's default is 16 MiB: 1,000 headers of
// 8 KiB were accepted.)
const MaxHeaderBytes = 64 << 10

// ServerOptions are the options StartGRPCServer uses: a receive limit just
// above MaxPayloadBytes (so an oversized payload reaches validation and
// gets a clear ResourceExhausted), a bound on request metadata
// (MaxHeaderBytes), the codec that lets undecodable
// requests be answered with InvalidArgument, keepalive enforcement
// compatible with GossipClientFactory's pings, static flow-control windows
// of FlowWindowBytes (no BDP pings), then the WithServerOptions
// ones (and those of WithSecurity and WithPublishLimit). Use them when
// registering the node on a server of your own.
func (n *GossipNode) ServerOptions() []grpc.ServerOption {
	return append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(n.MaxRecvMsgSize()),
		grpc.MaxHeaderListSize(MaxHeaderBytes),
		grpc.StaticStreamWindowSize(FlowWindowBytes),
		grpc.StaticConnWindowSize(FlowWindowBytes),
		grpc.ForceServerCodecV2(lenientCodec{encoding.GetCodecV2(encproto.Name)}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}, n.serverOpts...)
}

// MaxRecvMsgSize is the largest request or stream envelope the node's
// server accepts, in encoded bytes (transport.Limits): a message of
// MaxPayloadBytes with ids at their limits and the framing of one
// envelope. ServerOptions sets it as gRPC's MaxRecvMsgSize.
func (n *GossipNode) MaxRecvMsgSize() int {
	return n.cfg.MaxPayloadBytes + 3*n.cfg.MaxHashBytes + 64<<10
}

// Register registers the node's services on s — Gossip (node to node),
// NodeService (the client API) and MembershipService (Join) — for a
// caller that runs its own gRPC server. With the codec of ServerOptions on s, a request
// whose bytes do not decode as a GossipMessage is answered with
// InvalidArgument; without it, grpc-go answers Internal.
func (n *GossipNode) Register(s grpc.ServiceRegistrar) {
	desc := pbgrpc.Gossip_ServiceDesc
	desc.Methods = append([]grpc.MethodDesc(nil), desc.Methods...)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "PutMessageToClient" {
			desc.Methods[i].Handler = n.putHandler
		}
	}
	s.RegisterService(&desc, n)
	pbgrpc.RegisterNodeServiceServer(s, nodeService{n: n})
	pbgrpc.RegisterMembershipServiceServer(s, grpcMembershipServer{m: n.Membership()})
}

func (n *GossipNode) putHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	lm := &lenientGossipMessage{GossipMessage: new(pb.GossipMessage)}
	if err := dec(lm); err != nil {
		return nil, err
	}
	if lm.decodeErr != nil {
		n.malformed.Add(1)
		n.logger.Warn("rejected undecodable message", "err", lm.decodeErr)
		return nil, status.Errorf(codes.InvalidArgument, "malformed GossipMessage: %v", lm.decodeErr)
	}
	in := lm.GossipMessage
	if interceptor == nil {
		return n.PutMessageToClient(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: pbgrpc.Gossip_PutMessageToClient_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return n.PutMessageToClient(ctx, req.(*pb.GossipMessage))
	})
}

// stopServer stops the gRPC server gracefully, cutting RPCs still running
// after ShutdownTimeout.
func (n *GossipNode) stopServer() {
	n.srvMu.Lock()
	srv := n.server
	n.srvMu.Unlock()
	if srv == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(n.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		srv.Stop()
		<-done
	}
}

// lenientGossipMessage is what the PutMessageToClient handler decodes
// into. With lenientCodec the decode error is kept here instead of being
// returned: grpc-go answers a codec error itself, with Internal, before the
// handler can choose the code. Without lenientCodec it decodes as a plain
// GossipMessage (it embeds one, so it is a proto.Message).
type lenientGossipMessage struct {
	*pb.GossipMessage
	decodeErr error
}

// lenientCodec is grpc's proto codec, except that it records decode errors
// of a lenientGossipMessage in the message.
type lenientCodec struct{ encoding.CodecV2 }

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if lm, ok := v.(*lenientGossipMessage); ok {
		if err := c.CodecV2.Unmarshal(data, lm.GossipMessage); err != nil {
			lm.decodeErr = err
		}
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}
