package auth

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Class is who may call an RPC.
type Class int

const (
	// ClassOpen needs no credential: the health service (probes), and
	// reflection when it is on.
	ClassOpen Class = iota + 1
	// ClassPeer is for cluster members only: a node certificate.
	ClassPeer
	// ClassClient takes a client or node certificate, or a bearer token.
	ClassClient
)

// MethodClass is the class of the gRPC method fullMethod
// ("/gossip.v1.MembershipService/Join"). Unknown methods are ClassClient:
// they need a credential.
func MethodClass(fullMethod string) Class {
	svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch {
	case svc == "grpc.health.v1.Health":
		return ClassOpen
	case svc == "grpc.reflection.v1.ServerReflection", svc == "grpc.reflection.v1alpha.ServerReflection":
		return ClassOpen // only registered with --reflection
	case svc == "gossip.v1.MembershipService":
		return ClassPeer
	case svc == "gossip.v1.Gossip" && method == "Stream":
		return ClassPeer
	}
	// gossip.v1.NodeService/*, and the seed's Gossip/PutMessageToClient,
	// which peers call with their node certificate and outside clients
	// with a client certificate or a token.
	return ClassClient
}

// Caller is who made an RPC, as the interceptors established it.
type Caller struct {
	// Identity is the verified certificate's; zero without a certificate.
	Identity Identity
	// Token is true when the caller presented a valid bearer token.
	Token bool
}

// IsNode reports whether the caller is a cluster member.
func (c Caller) IsNode() bool { return c.Identity.Kind == KindNode }

type callerKey struct{}

// CallerFromContext returns the caller of the RPC whose context ctx is,
// when the interceptors ran (a node with Security).
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithCaller returns ctx carrying c, as the interceptors do (for
// transports other than gRPC, and tests).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

type authCounters struct {
	unauthenticated, permissionDenied, mismatches atomic.Uint64
}

// UnaryInterceptor authorizes a unary RPC by MethodClass and puts the
// Caller in its context.
func (s *Security) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor authorizes a streaming RPC by MethodClass and puts
// the Caller in its context.
func (s *Security) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, callerStream{ss, ctx})
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c callerStream) Context() context.Context { return c.ctx }

// authorize decides an RPC; the errors are the statuses the caller gets.
func (s *Security) authorize(ctx context.Context, method string) (context.Context, error) {
	class := MethodClass(method)
	if class == ClassOpen {
		return ctx, nil
	}
	c, tokenErr := s.authenticate(ctx)
	if tokenErr != nil {
		s.ac.unauthenticated.Add(1)
		return nil, tokenErr
	}
	if s.transition && c.Identity.Kind == 0 && !c.Token {
		return ctx, nil // as a plaintext node: no caller, no claims checked
	}
	nodeCred := fmt.Sprintf("a node certificate (spiffe://%s/node/<id>) signed by the cluster CA", s.td)
	switch {
	case class == ClassPeer && c.IsNode():
	case class == ClassPeer && (c.Identity.Kind != 0 || c.Token):
		s.ac.permissionDenied.Add(1)
		return nil, status.Errorf(codes.PermissionDenied, "%s is for cluster members: it needs %s; the caller presented %s", method, nodeCred, c.presented())
	case class == ClassPeer:
		s.ac.unauthenticated.Add(1)
		return nil, status.Errorf(codes.Unauthenticated, "%s is for cluster members: it needs %s; the caller presented no certificate", method, nodeCred)
	case c.Identity.Kind != 0 || c.Token:
	default:
		s.ac.unauthenticated.Add(1)
		want := fmt.Sprintf("a client certificate (spiffe://%s/client/<name>)", s.td)
		if s.tokens != nil {
			want += " or an \"authorization: Bearer <token>\" header with a token of --auth-token-file"
		}
		return nil, status.Errorf(codes.Unauthenticated, "%s needs %s; the caller presented neither", method, want)
	}
	return WithCaller(ctx, c), nil
}

func (c Caller) presented() string {
	switch {
	case c.Identity.Kind == KindClient:
		return "a client certificate " + c.Identity.String()
	case c.Identity.Kind == KindNode:
		return "a node certificate " + c.Identity.String()
	case c.Token:
		return "a bearer token"
	}
	return "nothing"
}

// authenticate establishes the caller from the connection's verified
// certificate and the authorization header. A header that is present but
// malformed, or a token that is not on the list, is an error
// (Unauthenticated): a credential presented must be valid.
func (s *Security) authenticate(ctx context.Context) (Caller, error) {
	var c Caller
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			// Verified at the handshake (ServerConfig); parsed again here
			// for the identity only.
			id, err := IdentityOf(ti.State.PeerCertificates[0], s.td)
			if err != nil {
				return c, status.Errorf(codes.Unauthenticated, "peer certificate: %v", err)
			}
			c.Identity = id
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch {
	case len(vals) == 0:
		return c, nil
	case len(vals) > 1:
		return c, status.Error(codes.Unauthenticated, "more than one authorization header: send one, \"Bearer <token>\"")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" || len(tok) > maxTokenBytes {
		return c, status.Error(codes.Unauthenticated, "malformed authorization header: want \"Bearer <token>\"")
	}
	if s.tokens == nil {
		return c, status.Error(codes.Unauthenticated, "bearer tokens are not accepted by this node (no --auth-token-file): use a client certificate")
	}
	if !s.tokens.valid(tok) {
		return c, status.Error(codes.Unauthenticated, "invalid bearer token: not in this node's --auth-token-file")
	}
	c.Token = true
	return c, nil
}

// CheckClaim checks that a request claiming to come from node id claimed
// (a stream hello, a Join, a membership message's from) comes from that
// node: with a caller established by the interceptors, its certificate
// must be the one of claimed. Without a caller (no Security, or a
// transport without interceptors) there is nothing to check and it
// returns nil. The error is PermissionDenied, naming both ids. what names
// the request for the error ("join", "hello", …).
func (s *Security) CheckClaim(ctx context.Context, what, claimed string) error {
	c, ok := CallerFromContext(ctx)
	if !ok || (c.IsNode() && c.Identity.Name == claimed) {
		return nil
	}
	s.ac.mismatches.Add(1)
	s.logger.Warn("auth: refused a request claiming another node id", "request", what, "claimed", claimed, "certificate", c.presented())
	return status.Errorf(codes.PermissionDenied, "%s claims node id %q, but the caller's certificate is %s", what, claimed, c.presented())
}
