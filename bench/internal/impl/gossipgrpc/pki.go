package gossipgrpc

import (
	"os"
	"path/filepath"
	"time"

	"github.com/grpc-gossip/gossip/auth"
)

// benchPKI is the CA of one secure run, in a temporary directory.
type benchPKI struct {
	dir    string
	ca     *auth.CA
	caFile string
}

func newBenchPKI() (*benchPKI, error) {
	dir, err := os.MkdirTemp("", "gossip-bench-tls-")
	if err != nil {
		return nil, err
	}
	ca, err := auth.NewCA(auth.DefaultTrustDomain, 24*time.Hour)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &benchPKI{dir: dir, ca: ca, caFile: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(p.caFile, auth.CertPEM(ca.Cert), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// security is node id's mTLS and signing.
func (p *benchPKI) security(id string) (*auth.Security, error) {
	is, err := p.ca.Issue(auth.NodeID(auth.DefaultTrustDomain, id), time.Time{}, time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	cert, key := filepath.Join(p.dir, id+".pem"), filepath.Join(p.dir, id+"-key.pem")
	if err := auth.WriteFiles(cert, key, is.Cert, is.Key, false); err != nil {
		return nil, err
	}
	return auth.New(auth.Config{Cert: cert, Key: key, CA: p.caFile, Sign: true})
}
