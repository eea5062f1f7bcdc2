package auth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTrustDomain is the trust domain when Config.TrustDomain is empty.
const DefaultTrustDomain = "gossip"

// Checks a peer certificate can fail, as logged (key check) and counted.
const (
	CheckNoCertificate = "no_certificate" // the server sent none
	CheckExpired       = "expired"
	CheckNotYetValid   = "not_yet_valid"
	CheckUnknownCA     = "unknown_ca"   // not signed by the configured CA
	CheckTrustDomain   = "trust_domain" // a SPIFFE id of another trust domain
	CheckIdentity      = "identity"     // no, several or a malformed SPIFFE id, or a client certificate where a node's is needed
)

// tlsCounters count refused certificates, by check.
type tlsCounters struct {
	expired, notYetValid, unknownCA, trustDomain, identity, noCert atomic.Uint64
	reloadErrors                                                   atomic.Uint64
}

func (c *tlsCounters) count(check string) {
	switch check {
	case CheckExpired:
		c.expired.Add(1)
	case CheckNotYetValid:
		c.notYetValid.Add(1)
	case CheckUnknownCA:
		c.unknownCA.Add(1)
	case CheckTrustDomain:
		c.trustDomain.Add(1)
	case CheckNoCertificate:
		c.noCert.Add(1)
	default:
		c.identity.Add(1)
	}
}

// verifier checks peer certificates against the CA files, reloaded as
// they change.
type verifier struct {
	td       string
	ca       *watched[*x509.CertPool]
	clientCA *watched[*x509.CertPool] // nil: client certificates chain to ca
	now      func() time.Time
	logger   *slog.Logger
	counters *tlsCounters
}

// CertError is a refused peer certificate: which certificate, which check.
type CertError struct {
	Check   string // one of the Check constants
	Subject string // the certificate's subject and SPIFFE id, "" without one
	Err     error
}

func (e *CertError) Error() string {
	if e.Subject == "" {
		return fmt.Sprintf("refused peer certificate (%s): %v", e.Check, e.Err)
	}
	return fmt.Sprintf("refused peer certificate %s (%s): %v", e.Subject, e.Check, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// verify checks the chain a peer presented. wantNode: the peer must be a
// cluster member (this side dialled it); otherwise a client certificate
// is accepted too, checked against the client CA when there is one.
// direction and addr are for the log line.
func (v *verifier) verify(chain []*x509.Certificate, wantNode bool, direction, addr string) (Identity, error) {
	id, err := v.check(chain, wantNode)
	if err != nil {
		var ce *CertError
		if errors.As(err, &ce) {
			v.counters.count(ce.Check)
			attrs := []any{"direction", direction, "remote", addr, "check", ce.Check, "err", ce.Err.Error()}
			if len(chain) > 0 {
				leaf := chain[0]
				attrs = append(attrs, "subject", leaf.Subject.String(), "san", uriSANs(leaf), "issuer", leaf.Issuer.String(),
					"serial", leaf.SerialNumber.Text(16), "not_before", leaf.NotBefore.UTC().Format(time.RFC3339), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			v.logger.Warn("TLS: refused peer certificate", attrs...)
		}
	}
	return id, err
}

func (v *verifier) check(chain []*x509.Certificate, wantNode bool) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, &CertError{Check: CheckNoCertificate, Err: errors.New("the peer presented no certificate")}
	}
	leaf := chain[0]
	subject := describe(leaf)
	now := v.now()
	switch {
	case now.After(leaf.NotAfter):
		return Identity{}, &CertError{CheckExpired, subject, fmt.Errorf("expired at %s (now %s)", leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	case now.Before(leaf.NotBefore):
		return Identity{}, &CertError{CheckNotYetValid, subject, fmt.Errorf("not valid before %s (now %s): check the clocks", leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	// The pool follows the kind the certificate claims; the claim is only
	// believed once the chain verifies against that pool.
	claimed, _ := IdentityOf(leaf, v.td)
	pools, which := v.ca, "--tls-ca"
	if claimed.Kind == KindClient && v.clientCA != nil && !wantNode {
		pools, which = v.clientCA, "--client-ca"
	}
	roots, err := pools.get()
	if err != nil {
		return Identity{}, &CertError{CheckUnknownCA, subject, fmt.Errorf("cannot read %s: %w", which, err)}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		var cie x509.CertificateInvalidError
		if errors.As(err, &cie) && cie.Reason == x509.Expired {
			return Identity{}, &CertError{CheckExpired, subject, fmt.Errorf("a certificate of its chain is outside its validity: %w", err)}
		}
		return Identity{}, &CertError{CheckUnknownCA, subject, fmt.Errorf("not signed by the CA of %s: %w", which, err)}
	}
	id, err := IdentityOf(leaf, v.td)
	switch {
	case errors.Is(err, ErrWrongTrustDomain):
		return Identity{}, &CertError{CheckTrustDomain, subject, err}
	case err != nil:
		return Identity{}, &CertError{CheckIdentity, subject, fmt.Errorf("%w: a certificate needs one URI SAN spiffe://%s/node/<id> or spiffe://%s/client/<name>", err, v.td, v.td)}
	case wantNode && id.Kind != KindNode:
		return Identity{}, &CertError{CheckIdentity, subject, fmt.Errorf("%s is not a node identity: the server is not a cluster member", id)}
	}
	return id, nil
}

// describe names a certificate in errors: its SPIFFE id, else its subject.
func describe(c *x509.Certificate) string {
	if s := uriSANs(c); s != "" {
		return s
	}
	if s := c.Subject.String(); s != "" {
		return "\"" + s + "\""
	}
	return "serial " + c.SerialNumber.Text(16)
}

func uriSANs(c *x509.Certificate) string {
	s := make([]string, len(c.URIs))
	for i, u := range c.URIs {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}

// loadPool reads a PEM bundle of CA certificates.
func loadPool(setting, path string) (*x509.CertPool, error) {
	b, err := readFile(setting, path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: certificate %d: %w", setting, path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s %s: no PEM CERTIFICATE block: want the CA certificate(s), PEM-encoded", setting, path)
	}
	return pool, nil
}

// loadKeyPair reads a certificate (chain) and its key.
func loadKeyPair(certPath, keyPath, td string, wantKind Kind) (*tls.Certificate, error) {
	cb, err := readFile("--tls-cert", certPath)
	if err != nil {
		return nil, err
	}
	kb, err := readFile("--tls-key", keyPath)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", certPath, keyPath, err)
	}
	id, err := IdentityOf(pair.Leaf, td)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %w", certPath, err)
	}
	if wantKind != 0 && id.Kind != wantKind {
		return nil, fmt.Errorf("--tls-cert %s is for %s, want a %s certificate", certPath, id, wantKind)
	}
	return &pair, nil
}

// remote is the address of a handshake's peer, for logs.
func remote(c net.Conn) string {
	if c == nil || c.RemoteAddr() == nil {
		return ""
	}
	return c.RemoteAddr().String()
}
