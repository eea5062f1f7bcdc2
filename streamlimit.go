package gossip

import (
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// StreamLimit bounds the concurrent Gossip.Stream calls one peer may have
// open on the node: a peer is its certificate's node id with
// WithSecurity (place WithStreamLimit after it), else its connection
// (address and port; a node opens one stream per neighbour on one
// connection, plus a short overlap while a stream is re-opened). Over it
// the stream is refused with ResourceExhausted; the peer's other streams
// and everyone else go on. It is safe for concurrent use.
type StreamLimit struct {
	max int

	mu   sync.Mutex
	open map[string]int

	refused atomic.Uint64
}

// NewStreamLimit allows max concurrent streams per peer.
func NewStreamLimit(max int) *StreamLimit {
	return &StreamLimit{max: max, open: make(map[string]int)}
}

// WithStreamLimit applies l to the node's Gossip.Stream calls, counted in
// Stats.Security.StreamsRefused.
func WithStreamLimit(l *StreamLimit) Option {
	return optionFunc(func(o *nodeOptions) {
		o.streamLimit = l
		o.serverOpts = append(o.serverOpts, grpc.ChainStreamInterceptor(l.StreamInterceptor))
	})
}

// Refused is the number of streams refused so far.
func (l *StreamLimit) Refused() uint64 { return l.refused.Load() }

// StreamInterceptor applies the limit to Gossip.Stream.
func (l *StreamLimit) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != pbgrpc.Gossip_Stream_FullMethodName {
		return handler(srv, ss)
	}
	who := peerName(ss.Context())
	l.mu.Lock()
	if l.open[who] >= l.max {
		l.mu.Unlock()
		l.refused.Add(1)
		return status.Errorf(codes.ResourceExhausted, "too many streams: %s already has %d Gossip.Stream calls open on this node (--max-streams-per-peer)", who, l.max)
	}
	l.open[who]++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.open[who]--; l.open[who] == 0 {
			delete(l.open, who)
		}
		l.mu.Unlock()
	}()
	return handler(srv, ss)
}
