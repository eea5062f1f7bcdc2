package auth

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestTransition: a node in the transition mode serves TLS and plaintext
// clients on one port and lets a caller without credentials through,
// still refusing a client certificate on a peer-only RPC; its dials reach
// a plaintext server (after one failed TLS attempt) and a TLS one.
func TestTransition(t *testing.T) {
	p := newPKI(t, "gossip")
	tr := p.security("t", func(c *Config) { c.Transition = true })
	addr, _ := serve(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials())).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("plaintext client: %v", err)
	}
	if _, err := dial(t, addr, p.security("r", nil).DialOption()).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("TLS client: %v", err)
	}
	// The interceptors: nothing presented passes, a client certificate on
	// a peer-only RPC does not.
	pass := func(context.Context, any) (any, error) { return nil, nil }
	if _, err := tr.UnaryInterceptor(callCtx(nil), nil, &grpc.UnaryServerInfo{FullMethod: mPush}, pass); err != nil {
		t.Errorf("plaintext PushUpdates in transition: %v", err)
	}
	cl, _ := p.ca.Issue(ClientID("gossip", "ops"), timeZero, timeZero)
	if _, err := tr.UnaryInterceptor(callCtx(cl.Cert), nil, &grpc.UnaryServerInfo{FullMethod: mPush}, pass); status.Code(err) != codes.PermissionDenied {
		t.Errorf("client certificate on PushUpdates in transition: %v", err)
	}

	// Dialling a plaintext server: the first TLS attempt fails, the
	// reconnection uses plaintext.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain := grpc.NewServer()
	healthpb.RegisterHealthServer(plain, health.NewServer())
	go plain.Serve(lis)
	defer plain.Stop()
	if _, err := dial(t, lis.Addr().String(), tr.DialOption()).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Errorf("transition dialler to a plaintext server: %v", err)
	}
	// A required-TLS server is dialled with TLS.
	raddr, _ := serve(t, p.security("req", nil))
	if _, err := dial(t, raddr, tr.DialOption()).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("transition dialler to a TLS server: %v", err)
	}
}
