package auth

import (
	"bytes"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

var timeZero time.Time

func TestVerifyRefusals(t *testing.T) {
	good := newPKI(t, "gossip")
	rogue := newPKI(t, "gossip") // another CA, same trust domain
	other := newPKI(t, "other")  // the same kind of CA, another trust domain
	var logs bytes.Buffer
	sec := good.security("self", func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	now := time.Now()
	cert := func(p *pki, id Identity, nb, na time.Time) []*x509.Certificate {
		is, err := p.ca.Issue(id, nb, na)
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{is.Cert}
	}
	// A cert of the right CA naming another trust domain.
	wrongTD := cert(good, NodeID("other", "x"), timeZero, timeZero)
	for _, tc := range []struct {
		name     string
		chain    []*x509.Certificate
		wantNode bool
		check    string // "" accepted
		want     Identity
	}{
		{"node", cert(good, NodeID("gossip", "a"), timeZero, timeZero), true, "", NodeID("gossip", "a")},
		{"client on the server side", cert(good, ClientID("gossip", "ops"), timeZero, timeZero), false, "", ClientID("gossip", "ops")},
		{"client where a node is needed", cert(good, ClientID("gossip", "ops"), timeZero, timeZero), true, CheckIdentity, Identity{}},
		{"no certificate", nil, true, CheckNoCertificate, Identity{}},
		{"wrong CA", cert(rogue, NodeID("gossip", "a"), timeZero, timeZero), false, CheckUnknownCA, Identity{}},
		{"wrong CA and trust domain", cert(other, NodeID("other", "a"), timeZero, timeZero), false, CheckUnknownCA, Identity{}},
		{"wrong trust domain", wrongTD, false, CheckTrustDomain, Identity{}},
		{"expired", cert(good, NodeID("gossip", "a"), now.Add(-48*time.Hour), now.Add(-time.Hour)), false, CheckExpired, Identity{}},
		{"not yet valid", cert(good, NodeID("gossip", "a"), now.Add(time.Hour), now.Add(48*time.Hour)), false, CheckNotYetValid, Identity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			before := sec.Counters()
			id, err := sec.v.verify(tc.chain, tc.wantNode, "incoming", "127.0.0.1:1")
			if tc.check == "" {
				if err != nil || id != tc.want {
					t.Fatalf("verify = %v, %v; want %v", id, err, tc.want)
				}
				if sec.Counters() != before {
					t.Errorf("an accepted certificate was counted: %+v", sec.Counters())
				}
				return
			}
			var ce *CertError
			if !errors.As(err, &ce) || ce.Check != tc.check {
				t.Fatalf("verify = %v; want check %s", err, tc.check)
			}
			if sec.Counters() == before {
				t.Errorf("refusal %s not counted", tc.check)
			}
			line := logs.String()
			if !strings.Contains(line, "TLS: refused peer certificate") || !strings.Contains(line, "check="+tc.check) ||
				(len(tc.chain) > 0 && !strings.Contains(line, "serial="+tc.chain[0].SerialNumber.Text(16))) {
				t.Errorf("log line does not say which certificate and which check: %q", line)
			}
		})
	}
	c := sec.Counters()
	if c.Expired != 1 || c.NotYetValid != 1 || c.UnknownCA != 2 || c.TrustDomain != 1 || c.BadIdentity != 1 || c.NoCertificate != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestClientCA(t *testing.T) {
	nodes := newPKI(t, "gossip")
	clients := newPKI(t, "gossip")
	sec := nodes.security("self", func(c *Config) { c.ClientCA = clients.caFile })
	cl, err := clients.ca.Issue(ClientID("gossip", "ops"), timeZero, timeZero)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sec.v.verify([]*x509.Certificate{cl.Cert}, false, "incoming", ""); err != nil {
		t.Errorf("client cert of --client-ca refused: %v", err)
	}
	// A node certificate from the client CA is not a member.
	nd, _ := clients.ca.Issue(NodeID("gossip", "n"), timeZero, timeZero)
	if _, err := sec.v.verify([]*x509.Certificate{nd.Cert}, false, "incoming", ""); err == nil {
		t.Error("a node certificate signed by --client-ca was accepted")
	}
	// A client certificate from the cluster CA is refused: clients are the client CA's.
	cl2, _ := nodes.ca.Issue(ClientID("gossip", "ops"), timeZero, timeZero)
	if _, err := sec.v.verify([]*x509.Certificate{cl2.Cert}, false, "incoming", ""); err == nil {
		t.Error("a client certificate of --tls-ca was accepted although --client-ca is set")
	}
}

func TestNewErrorsNameTheFile(t *testing.T) {
	p := newPKI(t, "gossip")
	cert, key := p.issue(NodeID("gossip", "a"), timeZero, timeZero)
	ccert, ckey := p.issue(ClientID("gossip", "c"), timeZero, timeZero)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing key", Config{Cert: cert, Key: p.dir + "/nope.pem", CA: p.caFile}, "--tls-key " + p.dir + "/nope.pem: no such file"},
		{"key of another cert", Config{Cert: cert, Key: ckey, CA: p.caFile}, "private key does not match"},
		{"client cert as node cert", Config{Cert: ccert, Key: ckey, CA: p.caFile}, "want a node certificate"},
		{"CA not PEM", Config{Cert: cert, Key: key, CA: key}, "no PEM CERTIFICATE block"},
		{"wrong trust domain", Config{Cert: cert, Key: key, CA: p.caFile, TrustDomain: "prod"}, "wrong trust domain"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v; want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestWriteFilesModes(t *testing.T) {
	p := newPKI(t, "gossip")
	cert, key := p.issue(NodeID("gossip", "a"), timeZero, timeZero)
	for f, want := range map[string]os.FileMode{cert: 0o644, key: 0o600} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", f, fi.Mode().Perm(), err, want)
		}
	}
}

// BenchmarkSignMessage and BenchmarkVerifyMessage are the per-message
// costs of signing (at the origin) and verifying (at every node; the
// origin's certificate cached) a 100-byte message, ECDSA P-256.
func BenchmarkSignMessage(b *testing.B) {
	sec, _ := benchSigner(b)
	m := &pb.GossipMessage{Hash: "h", Origin: "o", Payload: strings.Repeat("x", 100), CreatedUnixNano: time.Now().UnixNano()}
	b.ReportAllocs()
	for b.Loop() {
		sec.SignMessage(m)
	}
}

func BenchmarkVerifyMessage(b *testing.B) {
	sec, m := benchSigner(b)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := sec.VerifyMessage(now, m, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSigner(b *testing.B) (*Security, *pb.GossipMessage) {
	ca, err := NewCA("gossip", 0)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	is, _ := ca.Issue(NodeID("gossip", "o"), timeZero, timeZero)
	cert, key, caFile := dir+"/o.pem", dir+"/o-key.pem", dir+"/ca.pem"
	if err := WriteFiles(cert, key, is.Cert, is.Key, true); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(caFile, CertPEM(ca.Cert), 0o644)
	sec, err := New(Config{Cert: cert, Key: key, CA: caFile, Sign: true})
	if err != nil {
		b.Fatal(err)
	}
	m := &pb.GossipMessage{Hash: "h", Origin: "o", Payload: strings.Repeat("x", 100), CreatedUnixNano: time.Now().UnixNano()}
	sec.SignMessage(m)
	return sec, m
}
