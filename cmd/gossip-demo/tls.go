package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/grpc-gossip/gossip/auth"
)

// demoPKI is the CA of one --tls run and the directory of its files
// (auth.New reads files, so that rotation works; the demo's are temporary).
type demoPKI struct {
	dir    string
	ca     *auth.CA
	caFile string
}

func newDemoPKI() (*demoPKI, error) {
	dir, err := os.MkdirTemp("", "gossip-demo-tls-")
	if err != nil {
		return nil, fmt.Errorf("--tls: %w", err)
	}
	ca, err := auth.NewCA(auth.DefaultTrustDomain, 24*time.Hour)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--tls: %w", err)
	}
	p := &demoPKI{dir: dir, ca: ca, caFile: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(p.caFile, auth.CertPEM(ca.Cert), 0o644); err != nil {
		p.remove()
		return nil, fmt.Errorf("--tls: %w", err)
	}
	return p, nil
}

// security issues node id's certificate and returns its Security.
func (p *demoPKI) security(id string, logger *slog.Logger) (*auth.Security, error) {
	is, err := p.ca.Issue(auth.NodeID(auth.DefaultTrustDomain, id), time.Time{}, time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("--tls: certificate for %s: %w", id, err)
	}
	cert, key := filepath.Join(p.dir, id+".pem"), filepath.Join(p.dir, id+"-key.pem")
	if err := auth.WriteFiles(cert, key, is.Cert, is.Key, false); err != nil {
		return nil, fmt.Errorf("--tls: %w", err)
	}
	return auth.New(auth.Config{Cert: cert, Key: key, CA: p.caFile, Logger: logger})
}

func (p *demoPKI) remove() { os.RemoveAll(p.dir) }
