package auth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pki is a test CA and the files of the certificates it issued.
type pki struct {
	t   *testing.T
	dir string
	td  string
	ca  *CA
	// caFile is the CA certificate's PEM file.
	caFile string
}

func newPKI(t *testing.T, td string) *pki {
	t.Helper()
	ca, err := NewCA(td, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: t.TempDir(), td: td, ca: ca}
	p.caFile = filepath.Join(p.dir, "ca-"+td+".pem")
	if err := os.WriteFile(p.caFile, CertPEM(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes a certificate for id valid over [nb, na] (zero: the
// defaults) and returns its cert and key files.
func (p *pki) issue(id Identity, nb, na time.Time) (certFile, keyFile string) {
	p.t.Helper()
	is, err := p.ca.Issue(id, nb, na)
	if err != nil {
		p.t.Fatal(err)
	}
	base := filepath.Join(p.dir, id.Kind.String()+"-"+id.Name+"-"+is.Cert.SerialNumber.Text(16)[:8])
	certFile, keyFile = base+".pem", base+"-key.pem"
	if err := WriteFiles(certFile, keyFile, is.Cert, is.Key, false); err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile
}

// security is a node's Security with this PKI's files.
func (p *pki) security(node string, mod func(*Config)) *Security {
	p.t.Helper()
	cert, key := p.issue(NodeID(p.td, node), time.Time{}, time.Time{})
	cfg := Config{Cert: cert, Key: key, CA: p.caFile, TrustDomain: p.td}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}
