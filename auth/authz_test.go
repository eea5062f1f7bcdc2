package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const (
	mPush    = "/gossip.v1.MembershipService/PushUpdates"
	mJoin    = "/gossip.v1.MembershipService/Join"
	mStream  = "/gossip.v1.Gossip/Stream"
	mPut     = "/gossip.v1.Gossip/PutMessageToClient"
	mPublish = "/gossip.v1.NodeService/Publish"
	mHealth  = "/grpc.health.v1.Health/Check"
)

// callCtx is the server-side context of an RPC from a caller with cert
// (nil: none) and the given authorization header values.
func callCtx(cert *x509.Certificate, auth ...string) context.Context {
	ctx := context.Background()
	p := &peer.Peer{}
	if cert != nil {
		p.AuthInfo = credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}}
	}
	ctx = peer.NewContext(ctx, p)
	if len(auth) > 0 {
		md := metadata.MD{}
		for _, a := range auth {
			md.Append("authorization", a)
		}
		ctx = metadata.NewIncomingContext(ctx, md)
	}
	return ctx
}

func writeTokens(t *testing.T, lines ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAuthorize(t *testing.T) {
	p := newPKI(t, "gossip")
	sec := p.security("self", func(c *Config) { c.TokenFile = writeTokens(t, "# ops", "s3cret", "", "other-token") })
	issue := func(id Identity) *x509.Certificate {
		is, err := p.ca.Issue(id, timeZero, timeZero)
		if err != nil {
			t.Fatal(err)
		}
		return is.Cert
	}
	node, client := issue(NodeID("gossip", "a")), issue(ClientID("gossip", "ops"))
	ok := codes.OK
	for _, tc := range []struct {
		name   string
		method string
		ctx    context.Context
		want   codes.Code
		msg    string // in the error
	}{
		{"node on PushUpdates", mPush, callCtx(node), ok, ""},
		{"node on Stream", mStream, callCtx(node), ok, ""},
		{"client cert on PushUpdates", mPush, callCtx(client), codes.PermissionDenied, "needs a node certificate (spiffe://gossip/node/<id>)"},
		{"token on Join", mJoin, callCtx(nil, "Bearer s3cret"), codes.PermissionDenied, "the caller presented a bearer token"},
		{"nothing on PushUpdates", mPush, callCtx(nil), codes.Unauthenticated, "presented no certificate"},
		{"nothing on Stream", mStream, callCtx(nil), codes.Unauthenticated, "is for cluster members"},
		{"token on Publish", mPublish, callCtx(nil, "Bearer s3cret"), ok, ""},
		{"scheme case", mPublish, callCtx(nil, "bearer other-token"), ok, ""},
		{"client cert on Publish", mPublish, callCtx(client), ok, ""},
		{"node cert on Publish", mPublish, callCtx(node), ok, ""},
		{"client cert on PutMessageToClient", mPut, callCtx(client), ok, ""},
		{"token on PutMessageToClient", mPut, callCtx(nil, "Bearer s3cret"), ok, ""},
		{"nothing on Publish", mPublish, callCtx(nil), codes.Unauthenticated, "needs a client certificate (spiffe://gossip/client/<name>) or an \"authorization: Bearer <token>\" header"},
		{"wrong token", mPublish, callCtx(nil, "Bearer s3cre"), codes.Unauthenticated, "invalid bearer token"},
		{"wrong token with a client cert", mPublish, callCtx(client, "Bearer nope"), codes.Unauthenticated, "invalid bearer token"},
		{"comment is no token", mPublish, callCtx(nil, "Bearer # ops"), codes.Unauthenticated, ""},
		{"basic auth", mPublish, callCtx(nil, "Basic czNjcmV0"), codes.Unauthenticated, "want \"Bearer <token>\""},
		{"two headers", mPublish, callCtx(nil, "Bearer s3cret", "Bearer s3cret"), codes.Unauthenticated, "more than one"},
		{"health is open", mHealth, callCtx(nil), ok, ""},
		{"unknown method needs credentials", "/x.Y/Z", callCtx(nil), codes.Unauthenticated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Caller
			_, err := sec.UnaryInterceptor(tc.ctx, nil, &grpc.UnaryServerInfo{FullMethod: tc.method}, func(ctx context.Context, _ any) (any, error) {
				got, _ = CallerFromContext(ctx)
				return nil, nil
			})
			if c := status.Code(err); c != tc.want || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("%s: %v; want %v with %q", tc.method, err, tc.want, tc.msg)
			}
			if tc.want == ok && tc.method != mHealth && got.Identity.Kind == 0 && !got.Token {
				t.Errorf("no caller in the handler's context")
			}
		})
	}
	c := sec.Counters()
	if c.PermissionDenied != 2 || c.Unauthenticated != 9 {
		t.Errorf("counters %+v", c)
	}
	// The stream interceptor decides the same way.
	err := sec.StreamInterceptor(nil, fakeStream{ctx: callCtx(client)}, &grpc.StreamServerInfo{FullMethod: mStream},
		func(any, grpc.ServerStream) error { return nil })
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("client cert on Gossip/Stream: %v", err)
	}
	err = sec.StreamInterceptor(nil, fakeStream{ctx: callCtx(node)}, &grpc.StreamServerInfo{FullMethod: mStream},
		func(_ any, ss grpc.ServerStream) error {
			if c, ok := CallerFromContext(ss.Context()); !ok || c.Identity != NodeID("gossip", "a") {
				t.Errorf("stream context has caller %+v, %v", c, ok)
			}
			return nil
		})
	if err != nil {
		t.Errorf("node on Gossip/Stream: %v", err)
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

func TestCheckClaim(t *testing.T) {
	p := newPKI(t, "gossip")
	sec := p.security("self", nil)
	a := WithCaller(context.Background(), Caller{Identity: NodeID("gossip", "a")})
	if err := sec.CheckClaim(a, "join", "a"); err != nil {
		t.Errorf("A claiming A: %v", err)
	}
	err := sec.CheckClaim(a, "join", "b")
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `join claims node id "b", but the caller's certificate is a node certificate spiffe://gossip/node/a`) {
		t.Errorf("A claiming B: %v", err)
	}
	tok := WithCaller(context.Background(), Caller{Token: true})
	if status.Code(sec.CheckClaim(tok, "ping", "a")) != codes.PermissionDenied {
		t.Error("a token claiming a node id was accepted")
	}
	if err := sec.CheckClaim(context.Background(), "join", "b"); err != nil {
		t.Errorf("no caller (plaintext transport): %v", err)
	}
	if sec.Counters().IdentityMismatches != 2 {
		t.Errorf("mismatches %d", sec.Counters().IdentityMismatches)
	}
}

func TestTokenFileReload(t *testing.T) {
	p := newPKI(t, "gossip")
	f := writeTokens(t, "old-token")
	sec := p.security("self", func(c *Config) { c.TokenFile = f })
	try := func(tok string) codes.Code {
		_, err := sec.UnaryInterceptor(callCtx(nil, "Bearer "+tok), nil, &grpc.UnaryServerInfo{FullMethod: mPublish},
			func(context.Context, any) (any, error) { return nil, nil })
		return status.Code(err)
	}
	if try("old-token") != codes.OK || try("new-token") != codes.Unauthenticated {
		t.Fatal("initial tokens")
	}
	if err := os.WriteFile(f, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// SIGHUP's path: at once.
	if err := sec.Reload(); err != nil {
		t.Fatal(err)
	}
	if try("new-token") != codes.OK || try("old-token") != codes.Unauthenticated {
		t.Error("Reload did not switch the tokens")
	}
	// A broken file keeps the previous tokens.
	if err := os.WriteFile(f, []byte("two words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sec.Reload(); err == nil {
		t.Error("Reload of a bad file succeeded")
	}
	if try("new-token") != codes.OK {
		t.Error("a bad file dropped the tokens in use")
	}
	// Without Reload: noticed by its size and time within tokenCheckEvery.
	if err := os.WriteFile(f, []byte("third-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(f, future, future); err != nil {
		t.Fatal(err)
	}
	sec.tokens.mu.Lock()
	sec.tokens.checked = time.Time{} // as if tokenCheckEvery had passed
	sec.tokens.mu.Unlock()
	if try("third-token") != codes.OK {
		t.Error("a changed token file was not picked up")
	}
}

// FuzzAuthorize: whatever the authorization header and the certificate's
// URI SAN, the interceptor does not panic, and a peer-only RPC is let
// through only for a node identity of the trust domain.
func FuzzAuthorize(f *testing.F) {
	f.Add("Bearer s3cret", "spiffe://gossip/node/a")
	f.Add("bearer  s3cret ", "spiffe://gossip/client/a")
	f.Add("Bearer", "spiffe://other/node/a")
	f.Add("", "spiffe://gossip/node/a/b")
	f.Add("Bearer \x00", "spiffe://GOSSIP/node/%2F")
	ca, err := NewCA("gossip", 0)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	is, _ := ca.Issue(NodeID("gossip", "self"), timeZero, timeZero)
	cert, key, caFile, tokens := dir+"/n.pem", dir+"/n-key.pem", dir+"/ca.pem", dir+"/tokens"
	if err := WriteFiles(cert, key, is.Cert, is.Key, true); err != nil {
		f.Fatal(err)
	}
	os.WriteFile(caFile, CertPEM(ca.Cert), 0o644)
	os.WriteFile(tokens, []byte("s3cret\n"), 0o600)
	sec, err := New(Config{Cert: cert, Key: key, CA: caFile, TokenFile: tokens})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authz, san string) {
		c := &x509.Certificate{}
		if u, err := url.Parse(san); err == nil {
			c.URIs = []*url.URL{u}
		}
		var vals []string
		if authz != "" {
			vals = []string{authz}
		}
		for _, m := range []string{mPush, mPublish, mPut} {
			var got Caller
			_, err := sec.UnaryInterceptor(callCtx(c, vals...), nil, &grpc.UnaryServerInfo{FullMethod: m}, func(ctx context.Context, _ any) (any, error) {
				got, _ = CallerFromContext(ctx)
				return nil, nil
			})
			if err == nil && m == mPush && (got.Identity.Kind != KindNode || got.Identity.TrustDomain != "gossip") {
				t.Fatalf("PushUpdates let through %+v (san %q, authorization %q)", got, san, authz)
			}
			if err != nil {
				if s, ok := status.FromError(err); !ok || (s.Code() != codes.Unauthenticated && s.Code() != codes.PermissionDenied) {
					t.Fatalf("error %v is not Unauthenticated or PermissionDenied", err)
				}
			}
		}
	})
}
