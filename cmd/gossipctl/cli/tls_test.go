package cli

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pkiDir creates a CA, a certificate for node gossipd-1 (startDaemon's
// id) and one for client ops with gossipctl tls, and a token file.
func pkiDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	wantOK(t, gossipctl(t, "tls", "ca", "create", "--out-dir", dir))
	ca, key := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	wantOK(t, gossipctl(t, "tls", "cert", "create", "--node", "gossipd-1", "--ca", ca, "--ca-key", key, "--out-dir", dir))
	wantOK(t, gossipctl(t, "tls", "cert", "create", "--client", "ops", "--ca", ca, "--ca-key", key, "--out-dir", dir))
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte("# gossipctl\ntok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTLSCreate(t *testing.T) {
	dir := pkiDir(t)
	for file, san := range map[string]string{"node-gossipd-1.pem": "spiffe://gossip/node/gossipd-1", "client-ops.pem": "spiffe://gossip/client/ops"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.URIs) != 1 || c.URIs[0].String() != san || c.IsCA {
			t.Errorf("%s: URI SANs %v, CA %v; want %s", file, c.URIs, c.IsCA, san)
		}
		if d := c.NotAfter.Sub(c.NotBefore).Hours() / 24; d < 364 || d > 366 {
			t.Errorf("%s: valid %.0f days", file, d)
		}
	}
	for _, f := range []string{caKeyFile, "node-gossipd-1-key.pem", "client-ops-key.pem"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	ca, key := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	wantOneLineError(t, gossipctl(t, "tls", "cert", "create", "--node", "gossipd-1", "--ca", ca, "--ca-key", key, "--out-dir", dir), exitFail, "already exists: not overwritten")
	wantOneLineError(t, gossipctl(t, "tls", "ca", "create", "--out-dir", dir), exitFail, "already exists")
	if r := gossipctl(t, "tls", "cert", "create", "--node", "a", "--client", "b"); r.code != exitUsage || !strings.Contains(r.stderr, "exactly one of --node ID and --client NAME") {
		t.Errorf("--node and --client: %d %q", r.code, r.stderr)
	}
	if r := gossipctl(t, "tls", "cert", "create", "--ca", filepath.Join(dir, "nope.pem")); r.code != exitUsage {
		t.Errorf("neither --node nor --client: %d %q", r.code, r.stderr)
	}
	wantOneLineError(t, gossipctl(t, "tls", "cert", "create", "--node", "x", "--ca", filepath.Join(dir, "nope.pem"), "--out-dir", dir), exitFail, "nope.pem: no such file")
	if r := gossipctl(t, "tls", "ca", "create", "--key-type", "rsa", "--out-dir", t.TempDir()); r.code != exitUsage || !strings.Contains(r.stderr, `unknown key type "rsa"`) {
		t.Errorf("--key-type rsa: %d %q", r.code, r.stderr)
	}
	// ed25519 keys, for the CA and a node.
	ed := t.TempDir()
	wantOK(t, gossipctl(t, "tls", "ca", "create", "--key-type", "ed25519", "--out-dir", ed))
	wantOK(t, gossipctl(t, "tls", "cert", "create", "--node", "n", "--key-type", "ed25519", "--ca", filepath.Join(ed, caCertFile), "--ca-key", filepath.Join(ed, caKeyFile), "--out-dir", ed))
	b, _ := os.ReadFile(filepath.Join(ed, "node-n.pem"))
	blk, _ := pem.Decode(b)
	if c, err := x509.ParseCertificate(blk.Bytes); err != nil || c.PublicKeyAlgorithm != x509.Ed25519 || c.SignatureAlgorithm != x509.PureEd25519 {
		t.Errorf("--key-type ed25519: %v %v, %v", c.PublicKeyAlgorithm, c.SignatureAlgorithm, err)
	}
}

// TestSecureDaemon: gossipctl against a gossipd with mTLS and tokens, each
// credential and each refusal.
func TestSecureDaemon(t *testing.T) {
	dir := pkiDir(t)
	f := func(name string) string { return filepath.Join(dir, name) }
	addr := startDaemon(t, "--tls-cert", f("node-gossipd-1.pem"), "--tls-key", f("node-gossipd-1-key.pem"),
		"--tls-ca", f(caCertFile), "--auth-token-file", f("tokens"))
	tlsArgs := []string{"--addr", addr, "--tls-ca", f(caCertFile)}
	with := func(args ...string) []string {
		return append(append(append([]string(nil), tlsArgs...), args...), "members")
	}

	if r := gossipctl(t, with("--token", "tok-1")...); r.code != exitOK || !strings.Contains(r.stdout, "gossipd-1") {
		t.Errorf("members with a token: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	wantOK(t, gossipctl(t, with("--tls-cert", f("client-ops.pem"), "--tls-key", f("client-ops-key.pem"))...))
	env := map[string]string{"GOSSIPCTL_ADDR": addr, "GOSSIPCTL_TLS_CA": f(caCertFile), "GOSSIPCTL_TOKEN": "tok-1"}
	wantOK(t, runWith(t, t.Context(), strings.NewReader(""), func(k string) string { return env[k] }, "members"))

	wantOneLineError(t, gossipctl(t, with()...), exitFail, `needs a client certificate (spiffe://gossip/client/<name>) or an "authorization: Bearer <token>" header with a token of --auth-token-file; the caller presented neither (Unauthenticated)`)
	wantOneLineError(t, gossipctl(t, with("--token", "tok-2")...), exitFail, "invalid bearer token: not in this node's --auth-token-file (Unauthenticated)")
	wantOneLineError(t, gossipctl(t, "--addr", addr, "members"), exitFail, "if the node has TLS on, give --tls-ca")
	// The node's key as a client certificate of another CA.
	other := t.TempDir()
	wantOK(t, gossipctl(t, "tls", "ca", "create", "--out-dir", other))
	wantOK(t, gossipctl(t, "tls", "cert", "create", "--client", "ops", "--ca", filepath.Join(other, caCertFile), "--ca-key", filepath.Join(other, caKeyFile), "--out-dir", other))
	wantOneLineError(t, gossipctl(t, with("--tls-cert", filepath.Join(other, "client-ops.pem"), "--tls-key", filepath.Join(other, "client-ops-key.pem"))...), exitFail,
		"the node refused this client's TLS certificate, or is not a gossipd with TLS")
	wantOneLineError(t, gossipctl(t, "--addr", addr, "--tls-ca", filepath.Join(other, caCertFile), "--token", "tok-1", "members"), exitFail,
		"the node's certificate was refused: refused peer certificate spiffe://gossip/node/gossipd-1 (unknown_ca)")
	// Health needs no credential (probes).
	wantOK(t, gossipctl(t, append(tlsArgs, "health")...))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", "x", "members"}, "--token needs --tls-ca"},
		{[]string{"--tls-ca", "ca.pem", "--tls-cert", "c.pem", "members"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "members"}, "--tls-cert needs --tls-ca"},
	} {
		if r := gossipctl(t, tc.args...); r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d %q; want usage error %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestPublishRate: gossipd --publish-rate refuses a client over its rate
// with RESOURCE_EXHAUSTED, which gossipctl shows on one line.
func TestPublishRate(t *testing.T) {
	addr := startDaemon(t, "--publish-rate", "0.001", "--publish-burst", "1")
	wantOK(t, gossipctl(t, "--addr", addr, "publish", "one"))
	wantOneLineError(t, gossipctl(t, "--addr", addr, "publish", "two"), exitFail, "publish rate limit: client 127.0.0.1 is over 0.001 new messages per second (burst 1); slow down and retry")
}
