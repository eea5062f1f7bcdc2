package gossip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// DefaultRPCTimeout is the timeout of ContextWithTimeout.
const DefaultRPCTimeout = 2 * time.Second

// GossipClientFactory is the seed's reusable client connection pool: one
// grpc.ClientConn per endpoint, created on first use and shared by every
// caller afterwards (also under concurrent first use: an endpoint is never
// dialled twice). Release closes them all. It is safe for concurrent use.
//
// Connections are plaintext by default (the seed has no TLS yet); pass
// grpc.WithTransportCredentials in NewGossipClientFactory to change that.
type GossipClientFactory struct {
	timeout  time.Duration
	dialOpts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// clientKeepalive is the keepalive of GossipClientFactory's connections: a
// ping after 10 s without traffic, also on idle connections, and the
// connection is closed (and redialled on next use) when the ping is not
// answered within 5 s. A half-open connection to a peer that vanished
// (host down, network cut) is thus noticed within 15 s even when no RPC
// is running; SWIM's probes have their own, shorter deadlines. It matches
// the servers' KeepaliveEnforcementPolicy (MinTime 5 s).
var clientKeepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}

// FlowWindowBytes is the HTTP/2 flow-control window, per stream and per
// connection, of the connections GossipClientFactory dials and of the
// servers that use a node's ServerOptions: static, so gRPC's dynamic
// windows (BDP estimation) are off.
//
// Why: with dynamic windows, every DATA frame that arrives while no
// estimate is running makes the receiver send a PING and a WINDOW_UPDATE,
// and the sender answers the PING. A gossip stream at a moderate rate
// sends small envelopes one by one, so that tripled the syscalls per
// envelope: at N = 20 and one message at a time, 88 write(2) calls per
// message became 32 with a static window, and the time to every node fell
// by a quarter (docs/PERFORMANCE.md). A static window also bounds what a
// slow receiver can have sent to it but not yet read, per stream, to this
// many bytes (dynamic windows grow to 16 MiB), so backpressure reaches the
// sender's queues (Config.StreamQueueBytes) sooner.
//
// The cost: one stream moves at most this many bytes per round trip, 10
// MiB/s on a 100 ms path (about 160 messages of 64 KiB a second per link).
// A message larger than the window still goes through (gRPC widens the
// window for it while it is read). To change the size, pass
// grpc.WithStaticStreamWindowSize and grpc.WithStaticConnWindowSize to
// NewGossipClientFactory and grpc.StaticStreamWindowSize and
// grpc.StaticConnWindowSize to WithServerOptions: both override these
// defaults (gossipd: --flow-window-bytes).
const FlowWindowBytes = 1 << 20

// NewGossipClientFactory returns an empty factory. dialOpts are added after
// the defaults (plaintext credentials, keepalive pings after 10 s idle with
// a 5 s timeout, 20 MiB message limits, static flow-control windows of
// FlowWindowBytes), so they may override them.
func NewGossipClientFactory(dialOpts ...grpc.DialOption) *GossipClientFactory {
	defaults := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(clientKeepalive),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(20<<20), grpc.MaxCallSendMsgSize(20<<20)),
		grpc.WithStaticStreamWindowSize(FlowWindowBytes),
		grpc.WithStaticConnWindowSize(FlowWindowBytes),
	}
	return &GossipClientFactory{
		timeout:  DefaultRPCTimeout,
		dialOpts: append(defaults, dialOpts...),
		conns:    make(map[string]*grpc.ClientConn),
	}
}

// Conn returns the shared connection to endpoint ("host:port"), creating
// it on first use. Creating does not wait for the connection: the first
// RPC does, and fails with Unavailable if the endpoint is down.
func (f *GossipClientFactory) Conn(endpoint string) (*grpc.ClientConn, error) {
	if endpoint == "" {
		return nil, errors.New("gossip: empty endpoint")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if cc, ok := f.conns[endpoint]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(endpoint, f.dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("gossip: dial %q: %w", endpoint, err)
	}
	f.conns[endpoint] = cc
	return cc, nil
}

// Client is GetClient with the error returned.
func (f *GossipClientFactory) Client(endpoint string) (pbgrpc.GossipClient, error) {
	cc, err := f.Conn(endpoint)
	if err != nil {
		return nil, err
	}
	return pbgrpc.NewGossipClient(cc), nil
}

// GetClient returns a Gossip client on the shared connection to endpoint,
// as in the seed:
//
//	cli := factory.GetClient(endpoint)
//	resp, err := cli.PutMessageToClient(ctx, msg)
//
// If the connection cannot be created (empty or malformed endpoint,
// released factory) the returned client fails every call with that error.
func (f *GossipClientFactory) GetClient(endpoint string) pbgrpc.GossipClient {
	c, err := f.Client(endpoint)
	if err != nil {
		code := codes.InvalidArgument
		if errors.Is(err, ErrClosed) {
			code = codes.Unavailable
		}
		return errClient{status.Error(code, err.Error())}
	}
	return c
}

// ContextWithTimeout returns a context for one outgoing RPC: parent with
// the factory's timeout (DefaultRPCTimeout).
func (f *GossipClientFactory) ContextWithTimeout(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, f.timeout)
}

// Len returns the number of cached connections.
func (f *GossipClientFactory) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// Release closes every cached connection; the factory cannot be used
// afterwards (calls fail with ErrClosed). A second Release returns
// ErrClosed.
func (f *GossipClientFactory) Release() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	f.closed = true
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	var errs []error
	for _, cc := range conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

type errClient struct{ err error }

func (c errClient) PutMessageToClient(context.Context, *pb.GossipMessage, ...grpc.CallOption) (*pb.GossipAck, error) {
	return nil, c.err
}

func (c errClient) Stream(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[pb.Envelope, pb.Envelope], error) {
	return nil, c.err
}
