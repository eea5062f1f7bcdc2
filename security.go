package gossip

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/auth"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// WithSecurity secures the node with sec (package auth): StartGRPCServer
// and ServerOptions serve with its TLS credentials and authorization
// interceptors, reflection is off unless sec allows it, and every claim
// of a node id on an authenticated connection — a stream's hello, a Join,
// the sender of a membership message, the previous hop of a relayed
// message — must match the caller's certificate. With sec's Config.Sign
// the node signs the messages it originates and drops, before delivering
// or forwarding, every message whose signature does not check
// (auth.Security.VerifyMessage). Dial the other nodes with sec's
// credentials too: NewGossipClientFactory(sec.DialOption()).
// docs/SECURITY.md has the threat model.
func WithSecurity(sec *auth.Security) Option {
	return optionFunc(func(o *nodeOptions) {
		o.sec = sec
		o.serverOpts = append(o.serverOpts, sec.ServerOptions()...)
	})
}

// Security is the node's auth.Security (WithSecurity), nil without one.
func (n *GossipNode) Security() *auth.Security { return n.sec }

// SecurityStats are the counters of authentication and authorization
// (zero without WithSecurity) and of the limits (each zero without its
// option: WithPublishLimit, WithSubscriberLimits, WithSubscriberBytes,
// WithStreamLimit, WithPeerBudget).
type SecurityStats struct {
	CertExpired              uint64 `stat:"security.cert_expired,counter" help:"TLS handshakes refused: the peer's certificate had expired"`
	CertNotYetValid          uint64 `stat:"security.cert_not_yet_valid,counter" help:"TLS handshakes refused: the peer's certificate was not yet valid (clock skew?)"`
	CertUnknownCA            uint64 `stat:"security.cert_unknown_ca,counter" help:"TLS handshakes refused: the peer's certificate was not signed by the configured CA"`
	CertTrustDomain          uint64 `stat:"security.cert_trust_domain,counter" help:"TLS handshakes refused: the peer's SPIFFE id was of another trust domain"`
	CertBadIdentity          uint64 `stat:"security.cert_bad_identity,counter" help:"TLS handshakes refused: no or a malformed SPIFFE id, or a server that is not a node"`
	CertMissing              uint64 `stat:"security.cert_missing,counter" help:"TLS handshakes refused: a dialled server presented no certificate"`
	ReloadErrors             uint64 `stat:"security.reload_errors,counter" help:"certificate, key, CA or token files that failed to reload (the previous ones stayed in use)"`
	Unauthenticated          uint64 `stat:"security.unauthenticated,counter" help:"RPCs refused with UNAUTHENTICATED: no credential, or an invalid token"`
	PermissionDenied         uint64 `stat:"security.permission_denied,counter" help:"RPCs refused with PERMISSION_DENIED: a client credential on a peer-only RPC"`
	IdentityMismatches       uint64 `stat:"security.identity_mismatches,counter" help:"requests refused because the node id they claimed was not the caller certificate's"`
	PublishRateLimited       uint64 `stat:"security.publish_rate_limited,counter" help:"publishes refused with RESOURCE_EXHAUSTED: the client was over its publish rate (WithPublishLimit)"`
	MessagesUnsigned         uint64 `stat:"security.messages_unsigned,counter" help:"messages dropped with signing on: no signature (the origin does not run with --sign)"`
	MessagesForged           uint64 `stat:"security.messages_forged,counter" help:"messages dropped with signing on: a bad signature, an origin certificate not of the CA, or signed by another node than its origin"`
	MessagesUnsignedAccepted uint64 `stat:"security.messages_unsigned_accepted,counter" help:"messages accepted without a signature in the signing transition (--sign-transition): from nodes not signing yet"`
	MessagesStale            uint64 `stat:"security.messages_stale,counter" help:"messages dropped with signing on: created longer ago than LongTTL (a replay) or too far in the future"`
	SubscribersRefused       uint64 `stat:"security.subscribers_refused,counter" help:"Subscribe calls refused with RESOURCE_EXHAUSTED: too many subscribers, or their buffers' budget spent (WithSubscriberLimits)"`
	SlowConsumers            uint64 `stat:"security.slow_consumers,counter" help:"subscriptions cut off as slow consumers: over their share of the subscriber byte budget (WithSubscriberBytes), each told where to resume"`
	StreamsRefused           uint64 `stat:"security.streams_refused,counter" help:"Gossip.Stream calls refused with RESOURCE_EXHAUSTED: the peer had its maximum open (WithStreamLimit)"`

	PeerBudgetThrottled     uint64        `stat:"security.peer_budget_throttled,counter" help:"stream reads that waited because the peer was over its inbound byte budget (WithPeerBudget): the peer was slowed, nothing lost"`
	PeerBudgetThrottledTime time.Duration `stat:"security.peer_budget_throttled_seconds,counter" help:"time stream reads waited for peers' inbound byte budgets, seconds in all"`
	PeerBudgetRefused       uint64        `stat:"security.peer_budget_refused,counter" help:"unary peer calls (PutMessageToClient, MembershipService) refused with RESOURCE_EXHAUSTED: the peer was over its inbound byte budget (WithPeerBudget)"`
}

func (n *GossipNode) securityStats() SecurityStats {
	s := SecurityStats{SlowConsumers: n.slowConsumers.Load()}
	if n.limiter != nil {
		s.PublishRateLimited = n.limiter.Refused()
	}
	if n.sublimits != nil {
		s.SubscribersRefused = n.sublimits.Refused()
	}
	if n.streamLimit != nil {
		s.StreamsRefused = n.streamLimit.Refused()
	}
	if n.peerBudget != nil {
		s.PeerBudgetThrottled, s.PeerBudgetThrottledTime = n.peerBudget.Throttled()
		s.PeerBudgetRefused = n.peerBudget.Refused()
	}
	if n.sec == nil {
		return s
	}
	c := n.sec.Counters()
	return SecurityStats{
		PublishRateLimited: s.PublishRateLimited, SubscribersRefused: s.SubscribersRefused, StreamsRefused: s.StreamsRefused,
		SlowConsumers:       s.SlowConsumers,
		PeerBudgetThrottled: s.PeerBudgetThrottled, PeerBudgetThrottledTime: s.PeerBudgetThrottledTime, PeerBudgetRefused: s.PeerBudgetRefused,
		CertExpired: c.Expired, CertNotYetValid: c.NotYetValid, CertUnknownCA: c.UnknownCA,
		CertTrustDomain: c.TrustDomain, CertBadIdentity: c.BadIdentity, CertMissing: c.NoCertificate,
		ReloadErrors: c.ReloadErrors, Unauthenticated: c.Unauthenticated, PermissionDenied: c.PermissionDenied,
		IdentityMismatches: c.IdentityMismatches,
		MessagesUnsigned:   c.Unsigned, MessagesForged: c.Forged, MessagesStale: c.Stale,
		MessagesUnsignedAccepted: c.UnsignedAccepted,
	}
}

// checkClaim checks that the caller of ctx is node claimed (see
// auth.Security.CheckClaim); nil without security.
func (n *GossipNode) checkClaim(ctx context.Context, what, claimed string) error {
	if n.sec == nil {
		return nil
	}
	return n.sec.CheckClaim(ctx, what, claimed)
}

// checkPut applies WithSecurity's rules to a PutMessageToClient: a node
// names itself as the previous hop (from_hash) or nobody; a client (client
// certificate or token) can only bring a new message into the network, so
// it cannot set the fields only nodes set (origin, seq_node).
func (n *GossipNode) checkPut(ctx context.Context, msg *pb.GossipMessage) error {
	if n.sec == nil {
		return nil
	}
	c, ok := auth.CallerFromContext(ctx)
	switch {
	case !ok:
		return nil
	case c.IsNode():
		if msg.GetFromHash() == "" {
			return nil
		}
		return n.sec.CheckClaim(ctx, "PutMessageToClient's from_hash", msg.GetFromHash())
	case msg.GetOrigin() != "" || msg.GetSeqNode() != "":
		return status.Error(codes.PermissionDenied, "only cluster members relay messages: a client's PutMessageToClient must leave origin and seq_node empty (the node it reaches sets them)")
	}
	return nil
}
