package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/auth"
	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// mkPKI creates, with gossipctl tls, a CA in dir and certificates for the
// given nodes and clients.
func mkPKI(t *testing.T, dir string, nodes, clients []string) {
	t.Helper()
	run := func(args ...string) {
		if out, errOut, code := ctl(t, nil, append(args, "--out-dir", dir)...); code != 0 {
			t.Fatalf("gossipctl %v: exit %d: %s %s", args, code, out, errOut)
		}
	}
	run("tls", "ca", "create")
	ca := []string{"--ca", filepath.Join(dir, "gossip-ca.pem"), "--ca-key", filepath.Join(dir, "gossip-ca-key.pem")}
	for _, n := range nodes {
		run(append([]string{"tls", "cert", "create", "--node", n}, ca...)...)
	}
	for _, c := range clients {
		run(append([]string{"tls", "cert", "create", "--client", c}, ca...)...)
	}
}

// TestSecureCluster: three gossipd with mTLS and bearer tokens form a
// cluster that works with gossipctl (token and client certificate); every
// bad credential is refused with its code; the issue-10 eviction (a
// client's PushUpdates) and a node impersonating another fail; a rogue
// gossipd with a certificate of another CA, even one naming a member's
// id, never appears in a member list; reflection is off.
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	mkPKI(t, dir, []string{"n1", "n2", "n3"}, []string{"ops"})
	f := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(f("tokens"), []byte("# operators\ntok-e2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secure := func(id string) []string {
		return []string{"--tls-cert", f("node-" + id + ".pem"), "--tls-key", f("node-" + id + "-key.pem"),
			"--tls-ca", f("gossip-ca.pem"), "--auth-token-file", f("tokens"), "--sign"}
	}
	n1 := startDaemon(t, "n1", secure("n1")...)
	nodes := []*daemon{n1,
		startDaemon(t, "n2", append(secure("n2"), "--join", n1.addr)...),
		startDaemon(t, "n3", append(secure("n3"), "--join", n1.addr)...)}
	tlsCA := []string{"--tls-ca", f("gossip-ca.pem")}
	tok := append(tlsCA, "--token", "tok-e2e")
	cert := append(tlsCA, "--tls-cert", f("client-ops.pem"), "--tls-key", f("client-ops-key.pem"))
	members := func(d *daemon) map[string]memberRow {
		out, errOut, code := ctl(t, nil, append(append([]string{"--addr", d.addr, "-o", "json"}, tok...), "members")...)
		if code != 0 {
			t.Fatalf("members on %s: exit %d: %s", d.id, code, errOut)
		}
		var rows []memberRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
		m := map[string]memberRow{}
		for _, r := range rows {
			m[r.ID] = r
		}
		return m
	}
	for _, d := range nodes {
		if s := strings.Join(d.err.snapshot(), "\n"); !strings.Contains(s, `"security":"mTLS (trust domain gossip; clients: certificates or bearer tokens of `) || !strings.Contains(s, `; signed messages)"`) {
			t.Errorf("%s: no security in the start line", d.id)
		}
		testutil.WaitFor(t, 15*time.Second, d.id+" sees 3 alive", func() error {
			// Health needs no credential (probes).
			if out, errOut, code := ctl(t, nil, append([]string{"--addr", d.addr, "health"}, tlsCA...)...); code != 0 {
				return fmt.Errorf("health: %s %s", out, errOut)
			}
			alive := 0
			for _, m := range members(d) {
				if m.State == "alive" {
					alive++
				}
			}
			if alive != 3 {
				return fmt.Errorf("%d alive", alive)
			}
			return nil
		})
	}

	// A message published with a token on n1 reaches a subscriber with a
	// client certificate on n3.
	sub := start(t, nil, "gossipctl", append(append([]string{"--addr", nodes[2].addr}, cert...), "subscribe")...)
	testutil.WaitFor(t, 10*time.Second, "subscriber on n3", func() error {
		out, _, _ := ctl(t, nil, append(append([]string{"--addr", nodes[2].addr, "-o", "json"}, tok...), "status")...)
		if !strings.Contains(out, `"subscribers": 1`) && !strings.Contains(out, `"subscribers":1`) {
			return fmt.Errorf("status %s", out)
		}
		return nil
	})
	if out, errOut, code := ctl(t, nil, append(append([]string{"--addr", n1.addr}, tok...), "publish", "--id", "sec-1", "over mTLS")...); code != 0 {
		t.Fatalf("publish with a token: exit %d: %s %s", code, out, errOut)
	}
	sub.out.waitLine(t, "the message on n3's subscriber", 10*time.Second, func(s string) bool { return strings.Contains(s, `"sec-1"`) })

	// Each bad credential, with gossipctl.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"plaintext", nil, "if the node has TLS on, give --tls-ca"},
		{"no credential", tlsCA, "the caller presented neither (Unauthenticated)"},
		{"wrong token", append(tlsCA, "--token", "nope"), "invalid bearer token: not in this node's --auth-token-file (Unauthenticated)"},
	} {
		_, errOut, code := ctl(t, nil, append(append([]string{"--addr", n1.addr}, tc.args...), "members")...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d %q; want 1 and %q", tc.name, code, errOut, tc.want)
		}
		t.Logf("%s: gossipctl members → exit %d: %s", tc.name, code, strings.TrimSpace(errOut))
	}

	// Raw gRPC with each credential, on the peer-only PushUpdates: the
	// eviction of n2 that a plain client could do before.
	grpcAs := func(certFile, keyFile string) *grpc.ClientConn {
		cfg, err := auth.ClientTLSConfig(f("gossip-ca.pem"), certFile, keyFile, "")
		if err != nil {
			t.Fatal(err)
		}
		cc, err := grpc.NewClient(n1.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	n2 := nodes[1]
	evict := &pb.PushUpdatesRequest{From: "n1", FromAddress: n1.addr, Updates: []*pb.MemberUpdate{{
		Id: "n2", Address: n2.addr, State: pb.MemberState_MEMBER_STATE_DEAD, Incarnation: 1 << 40}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		cc   *grpc.ClientConn
		ctx  context.Context
		want codes.Code
	}{
		{"client certificate", grpcAs(f("client-ops.pem"), f("client-ops-key.pem")), ctx, codes.PermissionDenied},
		{"bearer token", grpcAs("", ""), metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer tok-e2e"), codes.PermissionDenied},
		{"no credential", grpcAs("", ""), ctx, codes.Unauthenticated},
		{"n3's certificate claiming n1", grpcAs(f("node-n3.pem"), f("node-n3-key.pem")), ctx, codes.PermissionDenied},
	} {
		_, err := pbgrpc.NewMembershipServiceClient(tc.cc).PushUpdates(tc.ctx, evict)
		if status.Code(err) != tc.want {
			t.Errorf("PushUpdates with %s: %v; want %v", tc.name, err, tc.want)
		}
		t.Logf("PushUpdates with %s → %v", tc.name, err)
	}
	// Signed messages: n3 (as if compromised) cannot inject a message in
	// n2's name, signed or not.
	forged := &pb.GossipMessage{Hash: "forged", FromHash: "n3", Origin: "n2", Payload: "n3 speaking for n2", CreatedUnixNano: time.Now().UnixNano()}
	_, err := pbgrpc.NewGossipClient(grpcAs(f("node-n3.pem"), f("node-n3-key.pem"))).PutMessageToClient(ctx, forged)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "is not signed") {
		t.Errorf("an unsigned message in n2's name: %v; want PermissionDenied", err)
	}
	t.Logf("unsigned message in n2's name → %v", err)
	// Reflection is off with TLS (no --reflection).
	rs, err := reflectionpb.NewServerReflectionClient(grpcAs("", "")).ServerReflectionInfo(ctx)
	if err == nil {
		rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		_, err = rs.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection: %v; want Unimplemented", err)
	}

	// A rogue gossipd: its own CA, a certificate naming member n2, and the
	// cluster's CA as --tls-ca so it gets as far as presenting it.
	rogueDir := t.TempDir()
	mkPKI(t, rogueDir, []string{"n2"}, nil)
	rogue := startDaemon(t, "n2", "--tls-cert", filepath.Join(rogueDir, "node-n2.pem"), "--tls-key", filepath.Join(rogueDir, "node-n2-key.pem"),
		"--tls-ca", f("gossip-ca.pem"), "--join", n1.addr)
	refusal := n1.err.waitLine(t, "n1 refusing the rogue's certificate", 15*time.Second, func(s string) bool {
		return strings.Contains(s, `"TLS: refused peer certificate"`) && strings.Contains(s, `"check":"unknown_ca"`)
	})
	t.Logf("n1 log: %s", refusal)
	// Its join was refused at the handshake (the line above): nobody lists
	// its address, and n2 is alive at its own.
	for _, d := range nodes {
		for id, m := range members(d) {
			if m.Address == rogue.addr {
				t.Errorf("%s lists the rogue's address as %s", d.id, id)
			}
			if id == "n2" && (m.State != "alive" || m.Address != n2.addr) {
				t.Errorf("%s sees n2 %s at %s", d.id, m.State, m.Address)
			}
		}
	}
	st := statusOf2(t, n1, tok)
	for _, k := range []string{"security.permission_denied", "security.unauthenticated", "security.identity_mismatches", "security.cert_unknown_ca", "security.messages_unsigned"} {
		if v, _ := st[k].(float64); v < 1 {
			t.Errorf("%s = %v on n1", k, st[k])
		}
	}
	if code := sub.stop(t, syscall.SIGINT, 10*time.Second); code != 0 {
		t.Errorf("subscribe: exit %d", code)
	}
	for _, d := range append(nodes, rogue) {
		if code := d.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Errorf("%s: exit %d", d.id, code)
		}
	}
}

// statusOf2 is statusOf with credentials.
func statusOf2(t *testing.T, d *daemon, creds []string) map[string]any {
	t.Helper()
	out, errOut, code := ctl(t, nil, append(append([]string{"--addr", d.addr, "-o", "json"}, creds...), "status")...)
	if code != 0 {
		t.Fatalf("gossipctl status on %s: exit %d: %s", d.id, code, errOut)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	groups, _ := st["counters"].(map[string]any)
	for g, cs := range groups {
		for name, v := range cs.(map[string]any) {
			st[g+"."+name] = v
		}
	}
	return st
}

// TestTokenReloadOnSIGHUP: gossipd re-reads --auth-token-file on SIGHUP.
// The new file has the old one's size and modification time, so only the
// signal can have made the node notice it.
func TestTokenReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	mkPKI(t, dir, []string{"h1"}, nil)
	f := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(f("tokens"), []byte("old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f("tokens"))
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "h1", "--tls-cert", f("node-h1.pem"), "--tls-key", f("node-h1-key.pem"), "--tls-ca", f("gossip-ca.pem"), "--auth-token-file", f("tokens"))
	members := func(tok string) int {
		_, _, code := ctl(t, nil, "--addr", d.addr, "--tls-ca", f("gossip-ca.pem"), "--token", tok, "members")
		return code
	}
	if members("old-token") != 0 || members("new-token") != 1 {
		t.Fatal("initial tokens")
	}
	if err := os.WriteFile(f("tokens"), []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f("tokens"), fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the 1 s change check: the file looks unchanged
	if members("old-token") != 0 {
		t.Fatal("the node re-read a file whose size and time did not change")
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.err.waitLine(t, "the SIGHUP reload", 10*time.Second, func(s string) bool { return strings.Contains(s, "SIGHUP: reloaded --auth-token-file") })
	if members("new-token") != 0 || members("old-token") != 1 {
		t.Error("after SIGHUP: the new token is not accepted or the old one still is")
	}
	if code := d.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
