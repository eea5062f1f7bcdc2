package auth

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// serve runs a gRPC server with sec's options and the health service on
// 127.0.0.1:0.
func serve(t *testing.T, sec *Security) (string, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(sec.ServerOptions()...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), hs
}

func dial(t *testing.T, addr string, opt grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func servedSerial(t *testing.T, c healthpb.HealthClient) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	ti := p.AuthInfo.(credentials.TLSInfo)
	return ti.State.PeerCertificates[0].SerialNumber.Text(16)
}

// TestRotation: new certificate files are used for new connections, and
// a stream opened before the rotation keeps working.
func TestRotation(t *testing.T) {
	p := newPKI(t, "gossip")
	cert, key := p.issue(NodeID("gossip", "srv"), timeZero, timeZero)
	sec, err := New(Config{Cert: cert, Key: key, CA: p.caFile})
	if err != nil {
		t.Fatal(err)
	}
	addr, hs := serve(t, sec)
	client := p.security("cli", nil)

	old := dial(t, addr, client.DialOption())
	serial1 := servedSerial(t, old)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := old.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v, %v", r, err)
	}

	// Rotate: a new certificate and key in the same files.
	is, err := p.ca.Issue(NodeID("gossip", "srv"), timeZero, timeZero)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(cert, key, is.Cert, is.Key, true); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second) // a new mtime even on a coarse clock
	os.Chtimes(cert, later, later)
	os.Chtimes(key, later, later)

	fresh := dial(t, addr, client.DialOption())
	if got, want := servedSerial(t, fresh), is.Cert.SerialNumber.Text(16); got != want || got == serial1 {
		t.Errorf("a new connection got certificate %s; want the rotated %s (old %s)", got, want, serial1)
	}
	// The stream from before still works.
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("the stream opened before the rotation: %v, %v", r, err)
	}
	if got := servedSerial(t, old); got != serial1 {
		t.Errorf("the old connection now shows %s; it keeps %s", got, serial1)
	}

	// A CA rotation: clients of a new CA are refused until the bundle
	// holds it, then accepted (new handshakes only).
	ca2 := newPKI(t, "gossip")
	c2 := ca2.security("cli2", nil)
	if _, err := dial(t, addr, c2.DialOption()).Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("a certificate of the new CA before the bundle has it: %v", err)
	}
	bundle := append(CertPEM(p.ca.Cert), CertPEM(ca2.ca.Cert)...)
	if err := os.WriteFile(p.caFile, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p.caFile, later, later)
	// c2's own CA file must trust the server's CA too.
	os.WriteFile(ca2.caFile, bundle, 0o644)
	os.Chtimes(ca2.caFile, later, later)
	if _, err := dial(t, addr, c2.DialOption()).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("after the CA bundle was extended: %v", err)
	}
}

// TestHandshakeRefusals: certificates the server refuses at the
// handshake, with what the dialling side sees; and the server side refuses
// to talk to a server that is not a cluster member.
func TestHandshakeRefusals(t *testing.T) {
	p := newPKI(t, "gossip")
	sec := p.security("srv", nil)
	addr, _ := serve(t, sec)
	rogue := newPKI(t, "gossip")
	now := time.Now()

	withCert := func(pp *pki, id Identity, nb, na time.Time) grpc.DialOption {
		cert, key := pp.issue(id, nb, na)
		// The dialler trusts the server's CA: only the server's check is tested.
		cfg, err := ClientTLSConfig(p.caFile, cert, key, "")
		if err != nil {
			t.Fatal(err)
		}
		return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
	}
	for _, tc := range []struct {
		name  string
		opt   grpc.DialOption
		check func(Counters) uint64
	}{
		{"self-signed rogue", withCert(rogue, NodeID("gossip", "x"), timeZero, timeZero), func(c Counters) uint64 { return c.UnknownCA }},
		{"expired", withCert(p, NodeID("gossip", "x"), now.Add(-48*time.Hour), now.Add(-time.Hour)), func(c Counters) uint64 { return c.Expired }},
		{"not yet valid", withCert(p, NodeID("gossip", "x"), now.Add(time.Hour), now.Add(48*time.Hour)), func(c Counters) uint64 { return c.NotYetValid }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.check(sec.Counters())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := dial(t, addr, tc.opt).Check(ctx, &healthpb.HealthCheckRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Errorf("Check = %v; want Unavailable (handshake refused)", err)
			}
			if tc.check(sec.Counters()) != before+1 {
				t.Errorf("refusal not counted: %+v", sec.Counters())
			}
		})
	}
	// Plaintext to a TLS server fails; health over TLS without a client
	// certificate works (probes).
	if _, err := dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials())).Check(context.Background(), &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("plaintext to a TLS server succeeded")
	}
	cfg, err := ClientTLSConfig(p.caFile, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg))).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a client certificate: %v", err)
	}
	// The dialling side refuses a server of another CA.
	rogueSrv := rogue.security("evil", nil)
	raddr, _ := serve(t, rogueSrv)
	before := sec.Counters().UnknownCA
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := dial(t, raddr, sec.DialOption()).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "not signed by the CA of --tls-ca") {
		t.Errorf("dialling a rogue server: %v", err)
	}
	if sec.Counters().UnknownCA != before+1 {
		t.Error("the rogue server's certificate was not counted")
	}
}

// TestRotationHalfWritten: a certificate replaced before its key (a
// mismatched pair) keeps the previous credentials in use, is reported once
// per change (security.reload_errors), and the pair is picked up once the
// key follows.
func TestRotationHalfWritten(t *testing.T) {
	p := newPKI(t, "gossip")
	cert, key := p.issue(NodeID("gossip", "srv"), timeZero, timeZero)
	sec, err := New(Config{Cert: cert, Key: key, CA: p.caFile})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := sec.pair.get()
	is, _ := p.ca.Issue(NodeID("gossip", "srv"), timeZero, timeZero)
	os.WriteFile(cert, CertPEM(is.Cert), 0o644)
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(cert, later, later)
	for range 3 {
		if got, err := sec.pair.get(); err != nil || got != old {
			t.Fatalf("half-written rotation: %v, %v; want the previous pair", got, err)
		}
	}
	if n := sec.Counters().ReloadErrors; n != 1 {
		t.Errorf("reload errors %d, want 1 (once per change)", n)
	}
	kp, _ := KeyPEM(is.Key)
	os.WriteFile(key, kp, 0o600)
	os.Chtimes(key, later, later)
	if got, err := sec.pair.get(); err != nil || got.Leaf.SerialNumber.Cmp(is.Cert.SerialNumber) != 0 {
		t.Errorf("after the key: %v, %v; want the new pair", got, err)
	}
}
