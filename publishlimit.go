package gossip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/auth"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// maxPublishers bounds the publishers a PublishLimiter tracks at once;
// past it, publishers whose bucket is full again (idle) are forgotten.
const maxPublishers = 10000

// PublishLimiter limits the rate at which each client brings new messages
// into the network: NodeService.Publish, and the seed's
// PutMessageToClient of a message without an origin (copies relayed by
// other nodes carry one and are never limited). A client is its
// certificate's identity or its token when the node has WithSecurity
// (place WithPublishLimit after WithSecurity), else its IP address. Over
// the limit a call fails at once with ResourceExhausted, naming the limit;
// the node serves everyone else as before. It is safe for concurrent use.
type PublishLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter

	refused atomic.Uint64
}

// NewPublishLimiter allows each client perSecond new messages per second
// on average, in bursts of up to burst (at least 1).
func NewPublishLimiter(perSecond float64, burst int) *PublishLimiter {
	return &PublishLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), buckets: make(map[string]*rate.Limiter)}
}

// WithPublishLimit limits each client's publishes with l (see
// PublishLimiter), counted in Stats.Security.PublishRateLimited.
func WithPublishLimit(l *PublishLimiter) Option {
	return optionFunc(func(o *nodeOptions) {
		o.limiter = l
		o.serverOpts = append(o.serverOpts, grpc.ChainUnaryInterceptor(l.UnaryInterceptor))
	})
}

// Refused is the number of calls refused so far.
func (l *PublishLimiter) Refused() uint64 { return l.refused.Load() }

// UnaryInterceptor applies the limit to the calls it covers.
func (l *PublishLimiter) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	switch info.FullMethod {
	case pbgrpc.NodeService_Publish_FullMethodName:
	case pbgrpc.Gossip_PutMessageToClient_FullMethodName:
		if m, ok := req.(*pb.GossipMessage); !ok || m.GetOrigin() != "" {
			return handler(ctx, req)
		}
	default:
		return handler(ctx, req)
	}
	who, exempt := publisherOf(ctx)
	if !exempt && !l.allow(who) {
		l.refused.Add(1)
		return nil, status.Errorf(codes.ResourceExhausted, "publish rate limit: %s is over %g new messages per second (burst %d); slow down and retry", who, float64(l.limit), l.burst)
	}
	return handler(ctx, req)
}

func (l *PublishLimiter) allow(who string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[who]
	if !ok {
		if len(l.buckets) >= maxPublishers {
			for k, v := range l.buckets {
				if v.Tokens() >= float64(l.burst) {
					delete(l.buckets, k)
				}
			}
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[who] = b
	}
	return b.Allow()
}

// publisherOf names the caller for the limit; cluster members (node
// certificates) are exempt: they relay, and their own publishes are
// limited where their clients call them.
func publisherOf(ctx context.Context) (string, bool) {
	if c, ok := auth.CallerFromContext(ctx); ok {
		switch {
		case c.IsNode():
			return "", true
		case c.Identity.Kind != 0:
			return c.Identity.String(), false
		case c.Token:
			md, _ := metadata.FromIncomingContext(ctx)
			sum := sha256.Sum256([]byte(fmt.Sprint(md.Get("authorization"))))
			return "the client of token sha256:" + hex.EncodeToString(sum[:4]), false
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		return "client " + host, false
	}
	return "client unknown", false
}
