package gossip

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpc-gossip/gossip/auth"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// maxPeerBudgets bounds the peers a PeerBudget keeps a bucket for. Past
// it, the idle ones (bucket full again, no stream open) are forgotten;
// when none is idle, new peers share one overflow bucket until some are.
const maxPeerBudgets = 4096

// membershipMethods prefixes the full method names of MembershipService.
const membershipMethods = "/gossip.v1.MembershipService/"

// PeerBudget bounds the bytes each peer may send to the node: a token
// bucket (golang.org/x/time/rate) of bytesPerSecond, holding up to burst
// bytes, per peer — its certificate's node id with WithSecurity (place
// WithPeerBudget after it), else its connection (address and port). It
// covers peer traffic only: what arrives on the Gossip.Stream calls a
// peer opened, PutMessageToClient from a peer (a caller with a node
// certificate, or a message that already has an origin) and
// MembershipService. Client RPCs (NodeService, a client's
// PutMessageToClient) are the PublishLimiter's.
//
// A peer over its budget is slowed, not refused, on streams: after each
// envelope the stream's reader waits until the peer's bucket has paid for
// it before it reads the next one, so the peer's HTTP/2 flow-control window
// closes and its writer blocks (its queue for this node fills, its
// messages are announced instead of pushed, and then its publishers wait
// for room: see docs/SECURITY.md). Nothing is lost. An envelope larger
// than burst is paid in several waits of at most burst bytes: it is never
// refused, it takes size/bytesPerSecond. Unary calls cannot be slowed
// that way: one over the budget fails at once with ResourceExhausted,
// naming the budget. Membership probes (Ping, PingReq) are charged but
// never refused, so that a peer that uses up its budget is not declared
// dead by the probes it can no longer answer — its other traffic pays for
// them. The node serves every other peer as before. It is safe for
// concurrent use.
type PeerBudget struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	peers    map[string]*peerBucket
	overflow *peerBucket // shared by new peers while the map is full of busy ones

	throttled   atomic.Uint64 // stream reads that waited
	throttledNs atomic.Int64  // and how long, in all
	refused     atomic.Uint64 // unary calls refused
}

// peerBucket is one peer's bucket and the streams that hold it.
type peerBucket struct {
	lim     *rate.Limiter
	streams int // Gossip.Stream calls open with it; guarded by PeerBudget.mu
}

// NewPeerBudget allows each peer bytesPerSecond bytes per second on
// average (0 or less: no limit), in bursts of up to burst bytes (below 1:
// one second's worth, bytesPerSecond). Give a burst of at least the
// largest request the node accepts (GossipNode.MaxRecvMsgSize): a unary
// call is charged at most burst bytes, so a larger one is let through
// when the bucket is full, and costs only burst.
func NewPeerBudget(bytesPerSecond float64, burst int) *PeerBudget {
	limit := rate.Limit(bytesPerSecond)
	if bytesPerSecond <= 0 {
		limit = rate.Inf
	}
	if burst < 1 {
		burst = int(min(max(bytesPerSecond, 0), float64(1<<40)))
	}
	return &PeerBudget{limit: limit, burst: max(burst, 1), peers: make(map[string]*peerBucket)}
}

// WithPeerBudget applies b to the node's peer traffic (see PeerBudget),
// counted in Stats.Security.PeerBudgetThrottled, PeerBudgetThrottledTime
// and PeerBudgetRefused.
func WithPeerBudget(b *PeerBudget) Option {
	return optionFunc(func(o *nodeOptions) {
		o.peerBudget = b
		o.serverOpts = append(o.serverOpts, grpc.ChainStreamInterceptor(b.StreamInterceptor), grpc.ChainUnaryInterceptor(b.UnaryInterceptor))
	})
}

// Throttled is the number of stream reads that waited for a peer's
// budget so far, and how long they waited in all.
func (b *PeerBudget) Throttled() (uint64, time.Duration) {
	return b.throttled.Load(), time.Duration(b.throttledNs.Load())
}

// Refused is the number of unary calls refused so far.
func (b *PeerBudget) Refused() uint64 { return b.refused.Load() }

// StreamInterceptor applies the budget to Gossip.Stream: see PeerBudget.
func (b *PeerBudget) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != pbgrpc.Gossip_Stream_FullMethodName {
		return handler(srv, ss)
	}
	bucket := b.acquire(peerName(ss.Context()), true)
	defer b.release(bucket)
	return handler(srv, &budgetStream{ServerStream: ss, b: b, bucket: bucket})
}

// UnaryInterceptor applies the budget to the peer unary calls: see
// PeerBudget.
func (b *PeerBudget) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	probe := false
	switch {
	case info.FullMethod == pbgrpc.MembershipService_Ping_FullMethodName, info.FullMethod == pbgrpc.MembershipService_PingReq_FullMethodName:
		probe = true
	case strings.HasPrefix(info.FullMethod, membershipMethods):
	case info.FullMethod == pbgrpc.Gossip_PutMessageToClient_FullMethodName:
		if !fromPeer(ctx, req) {
			return handler(ctx, req)
		}
	default:
		return handler(ctx, req)
	}
	m, ok := req.(proto.Message)
	if !ok {
		return handler(ctx, req)
	}
	size := min(proto.Size(m), b.burst)
	who := peerName(ctx)
	bucket := b.acquire(who, false)
	if probe {
		bucket.lim.ReserveN(time.Now(), size) // always granted (size ≤ burst): a debt the peer's other traffic pays
		return handler(ctx, req)
	}
	if !bucket.lim.AllowN(time.Now(), size) {
		b.refused.Add(1)
		return nil, status.Errorf(codes.ResourceExhausted, "peer inbound budget: %s is over %s per second (burst %s) of requests and stream traffic to this node; retry later, or raise this node's --peer-inbound-rate and --peer-inbound-burst", who, fmtByteCount(float64(b.limit)), fmtByteCount(float64(b.burst)))
	}
	return handler(ctx, req)
}

// fromPeer reports whether a PutMessageToClient comes from a cluster
// member: a caller with a node certificate or, without one (no security,
// or a plaintext caller during the TLS transition), a message that
// already has an origin (relayed: a client's new message has none).
func fromPeer(ctx context.Context, req any) bool {
	if c, ok := auth.CallerFromContext(ctx); ok {
		switch {
		case c.IsNode():
			return true
		case c.Identity.Kind != 0 || c.Token:
			return false
		}
	}
	m, ok := req.(*pb.GossipMessage)
	return ok && m.GetOrigin() != ""
}

// peerName names the peer of an RPC for the per-peer limits: its
// certificate's node id with security, else its connection.
func peerName(ctx context.Context) string {
	if c, ok := auth.CallerFromContext(ctx); ok && c.IsNode() {
		return c.Identity.String()
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return "connection " + p.Addr.String()
	}
	return "unknown"
}

// acquire returns who's bucket, creating it; stream marks it held until
// release.
func (b *PeerBudget) acquire(who string, stream bool) *peerBucket {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.peers[who]
	if !ok {
		if len(b.peers) >= maxPeerBudgets {
			b.sweepLocked()
		}
		if len(b.peers) >= maxPeerBudgets {
			if b.overflow == nil {
				b.overflow = &peerBucket{lim: rate.NewLimiter(b.limit, b.burst)}
			}
			e = b.overflow
		} else {
			e = &peerBucket{lim: rate.NewLimiter(b.limit, b.burst)}
			b.peers[who] = e
		}
	}
	if stream {
		e.streams++
	}
	return e
}

func (b *PeerBudget) release(e *peerBucket) {
	b.mu.Lock()
	e.streams--
	b.mu.Unlock()
}

// sweepLocked forgets the idle peers: no stream open, bucket full again
// (forgetting them changes nothing: a new bucket starts full).
func (b *PeerBudget) sweepLocked() {
	now := time.Now()
	for who, e := range b.peers {
		if e.streams == 0 && e.lim.TokensAt(now) >= float64(b.burst) {
			delete(b.peers, who)
		}
	}
}

// peerCount is the number of peers with a bucket (tests).
func (b *PeerBudget) peerCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.peers)
}

// pay waits until bucket has paid for n bytes, in waits of at most burst
// bytes each, or until ctx ends (what was not yet paid is given back).
func (b *PeerBudget) pay(ctx context.Context, bucket *peerBucket, n int) error {
	var start time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if !start.IsZero() {
			b.throttled.Add(1)
			b.throttledNs.Add(int64(time.Since(start)))
		}
	}()
	for n > 0 {
		k := min(n, b.burst)
		n -= k
		now := time.Now()
		r := bucket.lim.ReserveN(now, k) // k ≤ burst: always granted
		d := r.DelayFrom(now)
		if d <= 0 {
			continue
		}
		if start.IsZero() {
			start = now
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			r.CancelAt(time.Now())
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil
}

// budgetStream is a Gossip.Stream whose reads pay for what they received.
// Each envelope is handed on at once and paid for before the next read:
// the peer's messages are not delayed, the peer's flow-control window is.
type budgetStream struct {
	grpc.ServerStream
	b      *PeerBudget
	bucket *peerBucket
	owed   int // bytes of the last envelope, not yet paid
}

func (s *budgetStream) RecvMsg(m any) error {
	if s.owed > 0 {
		n := s.owed
		s.owed = 0
		if err := s.b.pay(s.Context(), s.bucket, n); err != nil {
			return err
		}
	}
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		s.owed = proto.Size(pm)
	}
	return nil
}

// fmtByteCount writes n bytes with the largest binary unit that keeps it
// exact, as gossipd's byte flags read it (64MiB, 512KiB, 1000).
func fmtByteCount(n float64) string {
	switch {
	case n >= 1<<20 && n == float64(int64(n)) && int64(n)%(1<<20) == 0:
		return strconv.FormatInt(int64(n)>>20, 10) + "MiB"
	case n >= 1<<10 && n == float64(int64(n)) && int64(n)%(1<<10) == 0:
		return strconv.FormatInt(int64(n)>>10, 10) + "KiB"
	case n == float64(int64(n)):
		return strconv.FormatInt(int64(n), 10) + " bytes"
	}
	return strconv.FormatFloat(n, 'f', -1, 64) + " bytes"
}
