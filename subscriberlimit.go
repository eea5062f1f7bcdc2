package gossip

import (
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// minSubscriberBuffer is the smallest buffer a subscriber is granted when
// the budget runs low; below it the subscription is refused.
const minSubscriberBuffer = 64

// SubscriberLimits bounds the gRPC subscriptions (NodeService.Subscribe)
// of a node: at most MaxSubscribers at once, and at most
// MaxBufferedMessages buffer slots reserved by all of them together (each
// subscription reserves its requested buffer, or
// DefaultSubscriptionBuffer, when it starts; a request larger than what
// remains is granted what remains, down to 64). Slots used to be allocated
// when a subscription started (about 130 bytes each: 1,000 subscribers
// asking for 65,536 each once grew a daemon to 8.5 GB); gRPC subscribers'
// buffers now grow with what they hold, bounded in bytes by
// WithSubscriberBytes, and the budget bounds how many messages they may
// lag behind in all. Over a limit Subscribe fails
// with ResourceExhausted saying which; the other subscribers are not
// affected. It is safe for concurrent use.
type SubscriberLimits struct {
	maxSubs, maxSlots int

	mu       sync.Mutex
	subs     int
	reserved int

	refused atomic.Uint64
}

// NewSubscriberLimits returns limits of maxSubscribers subscriptions and
// maxBufferedMessages buffer slots in all (0: no bound of that kind).
func NewSubscriberLimits(maxSubscribers, maxBufferedMessages int) *SubscriberLimits {
	return &SubscriberLimits{maxSubs: maxSubscribers, maxSlots: maxBufferedMessages}
}

// WithSubscriberLimits applies l to the node's gRPC Subscribe calls,
// counted in Stats.Security.SubscribersRefused.
func WithSubscriberLimits(l *SubscriberLimits) Option {
	return optionFunc(func(o *nodeOptions) {
		o.sublimits = l
		o.serverOpts = append(o.serverOpts, grpc.ChainStreamInterceptor(l.StreamInterceptor))
	})
}

// DefaultSubscriberBytes is gossipd's --subscriber-bytes: 256 MiB.
const DefaultSubscriberBytes = 256 << 20

// WithSubscriberBytes bounds, in bytes, what the buffers of all the
// node's subscriptions (Subscribe, SubscribeFrom, and through them the
// gRPC Subscribe calls) hold together, the NATS way: each live
// subscription's share is budget divided by the live subscriptions, and
// one that already holds deliveries and would go over its share with the
// next is cut off as a slow consumer — removed, its buffer dropped (the
// memory goes back at once), C closed, and Err a *SlowConsumerError
// (errors.Is ErrSlowConsumer) naming the offset to resume from; a gRPC
// Subscribe ends with RESOURCE_EXHAUSTED saying so. A subscriber that
// keeps up is never cut off (an empty buffer takes any message). Counted
// in Stats.Security.SlowConsumers; Stats.SubscriberBytes is what the
// buffers hold. A delivery is accounted as its payload and ids plus the
// Delivery struct (about 136 bytes); the payload of a message is shared
// by its subscriptions, so the figure is an upper bound. A replay
// (SubscribeFrom a past position) waits for its reader and is not cut
// off while replaying. budget ≤ 0: no bound (the default of the library;
// gossipd's default is DefaultSubscriberBytes).
func WithSubscriberBytes(budget int64) Option {
	return optionFunc(func(o *nodeOptions) { o.subBytes = max(budget, 0) })
}

// Refused is the number of subscriptions refused so far.
func (l *SubscriberLimits) Refused() uint64 { return l.refused.Load() }

// StreamInterceptor applies the limits to NodeService.Subscribe: it
// reserves the request's buffer when the handler reads the request
// (clamping it to what remains), and releases it when the call ends.
func (l *SubscriberLimits) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != pbgrpc.NodeService_Subscribe_FullMethodName {
		return handler(srv, ss)
	}
	ls := &limitedStream{ServerStream: ss, l: l}
	defer ls.release()
	return handler(srv, ls)
}

type limitedStream struct {
	grpc.ServerStream
	l       *SubscriberLimits
	granted int // slots reserved; 0: nothing reserved yet
	counted bool
}

func (s *limitedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	req, ok := m.(*pb.SubscribeRequest)
	if !ok || s.counted {
		return nil
	}
	if req.GetBuffer() > MaxSubscriptionBuffer {
		return nil // Subscribe refuses it (InvalidArgument): nothing to reserve
	}
	want := int(req.GetBuffer())
	if want == 0 {
		want = DefaultSubscriptionBuffer
	}
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxSubs > 0 && l.subs >= l.maxSubs {
		l.refused.Add(1)
		return status.Errorf(codes.ResourceExhausted, "too many subscribers: this node serves at most %d at once (--max-subscribers); retry later or subscribe on another node", l.maxSubs)
	}
	grant := want
	if l.maxSlots > 0 && l.reserved+grant > l.maxSlots {
		grant = l.maxSlots - l.reserved
		if grant < min(minSubscriberBuffer, want) {
			l.refused.Add(1)
			return status.Errorf(codes.ResourceExhausted, "subscriber buffers full: %d of %d buffered messages are reserved by %d subscribers (--subscriber-buffer-budget); retry later, ask for a smaller buffer, or subscribe on another node", l.reserved, l.maxSlots, l.subs)
		}
	}
	if grant != want {
		req.Buffer = uint32(grant)
	}
	l.subs++
	l.reserved += grant
	s.granted, s.counted = grant, true
	return nil
}

func (s *limitedStream) release() {
	if !s.counted {
		return
	}
	s.l.mu.Lock()
	s.l.subs--
	s.l.reserved -= s.granted
	s.l.mu.Unlock()
}
