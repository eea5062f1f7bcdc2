package auth

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
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

// TestEd25519: certificates with ed25519 keys (gossipctl tls --key-type
// ed25519) work for mutual TLS and for signed messages.
func TestEd25519(t *testing.T) {
	caKey, err := NewKey(KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCAWithKey("gossip", 0, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: t.TempDir(), td: "gossip", ca: ca}
	p.caFile = p.dir + "/ca.pem"
	os.WriteFile(p.caFile, CertPEM(ca.Cert), 0o644)
	sec := func(id string) *Security {
		k, err := NewKey(KeyEd25519)
		if err != nil {
			t.Fatal(err)
		}
		is, err := ca.IssueWithKey(NodeID("gossip", id), timeZero, timeZero, k)
		if err != nil {
			t.Fatal(err)
		}
		cert, key := p.dir+"/"+id+".pem", p.dir+"/"+id+"-key.pem"
		if err := WriteFiles(cert, key, is.Cert, is.Key, false); err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{Cert: cert, Key: key, CA: p.caFile, Sign: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	srv, cli := sec("s"), sec("c")
	addr, _ := serve(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := dial(t, addr, cli.DialOption()).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("mutual TLS with ed25519 certificates: %v", err)
	}
	m := &pb.GossipMessage{Hash: "h", Origin: "c", Payload: "x", CreatedUnixNano: time.Now().UnixNano()}
	cli.SignMessage(m)
	if err := srv.VerifyMessage(time.Now(), m, time.Hour); err != nil {
		t.Errorf("an ed25519 signature: %v", err)
	}
	m.Payload = "y"
	if err := srv.VerifyMessage(time.Now(), m, time.Hour); err == nil {
		t.Error("an altered ed25519-signed message verified")
	}
}
