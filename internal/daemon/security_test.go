package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/auth"
)

// certFiles writes a CA and a node certificate for id into a temp dir.
func certFiles(t *testing.T, id string) (cert, key, ca string) {
	t.Helper()
	dir := t.TempDir()
	c, err := auth.NewCA("gossip", 0)
	if err != nil {
		t.Fatal(err)
	}
	ca = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, auth.CertPEM(c.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	is, err := c.Issue(auth.NodeID("gossip", id), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem")
	if err := auth.WriteFiles(cert, key, is.Cert, is.Key, false); err != nil {
		t.Fatal(err)
	}
	return cert, key, ca
}

// TestSecurityStart: with TLS the id defaults to the certificate's and the
// start line says so; an --id that is not the certificate's, or a missing
// file, fails the start with one line naming the setting; without TLS
// the daemon warns that the cluster is open.
func TestSecurityStart(t *testing.T) {
	cert, key, ca := certFiles(t, "node-from-cert")
	cfg := testConfig("")
	cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = cert, key, ca
	r := runDaemon(t, cfg)
	if r.id != "node-from-cert" {
		t.Errorf("id %q; want the certificate's", r.id)
	}
	if s := r.log.find("gossipd started")[0].attrs["security"]; !strings.HasPrefix(s, "mTLS (trust domain gossip") {
		t.Errorf("start line security=%q", s)
	}
	if len(r.log.find("TLS is off: the cluster is open — anyone who can reach --listen can join, evict members, read and publish messages; set --tls-cert, --tls-key and --tls-ca (docs/SECURITY.md)")) != 0 {
		t.Error("the open-cluster warning with TLS on")
	}

	bad := cfg
	bad.ID = "other"
	err := Run(context.Background(), bad, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `--id "other", but --tls-cert `+cert+` is for spiffe://gossip/node/node-from-cert`) {
		t.Errorf("--id not the certificate's: %v", err)
	}
	missing := cfg
	missing.TLSKey = filepath.Join(t.TempDir(), "nope.pem")
	if err := Run(context.Background(), missing, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--tls-key "+missing.TLSKey+": no such file") {
		t.Errorf("missing key: %v", err)
	}

	open := runDaemon(t, testConfig("plain"))
	if len(open.log.find("TLS is off: the cluster is open — anyone who can reach --listen can join, evict members, read and publish messages; set --tls-cert, --tls-key and --tls-ca (docs/SECURITY.md)")) != 1 {
		t.Error("no open-cluster warning without TLS")
	}
}

func TestSecurityCrossChecks(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert (from the command line) needs --tls-key and --tls-ca too"},
		{[]string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, "needs --tls-ca too"},
		{[]string{"--auth-token-file", "t"}, "--auth-token-file t (from the command line) needs TLS"},
		{[]string{"--client-ca", "c"}, "--client-ca c (from the command line) needs TLS"},
		{[]string{"--trust-domain", "Bad Domain"}, "is not a trust domain"},
		{[]string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--sign-transition"}, "--sign-transition (from the command line) needs --sign"},
	} {
		if _, _, err := load(t, tc.args, nil, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want %q", tc.args, err, tc.want)
		}
	}
	// A bare --reflection is true.
	if cfg, _, err := load(t, []string{"--reflection"}, nil, ""); err != nil || !cfg.Reflection {
		t.Errorf("--reflection: %v, %v", cfg.Reflection, err)
	}
}
