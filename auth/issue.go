package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"time"
)

// Issuing certificates, for gossipctl tls and tests. Keys are ECDSA P-256
// unless given (NewKey(KeyEd25519)).

// Key types of NewKey.
const (
	KeyECDSA   = "ecdsa"   // ECDSA on P-256, signatures over SHA-256
	KeyEd25519 = "ed25519" // Ed25519
)

// NewKey generates a private key of type kt (KeyECDSA or KeyEd25519).
func NewKey(kt string) (crypto.Signer, error) {
	switch kt {
	case KeyECDSA, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key type %q: want %s or %s", kt, KeyECDSA, KeyEd25519)
}

// Default validities of issued certificates.
const (
	DefaultCAValidity   = 5 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a self-signed CA for trustDomain, valid from now for
// validity (0: DefaultCAValidity).
func NewCA(trustDomain string, validity time.Duration) (*CA, error) {
	key, err := NewKey(KeyECDSA)
	if err != nil {
		return nil, err
	}
	return NewCAWithKey(trustDomain, validity, key)
}

// NewCAWithKey is NewCA with the CA's key given.
func NewCAWithKey(trustDomain string, validity time.Duration, key crypto.Signer) (*CA, error) {
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "gossip CA " + trustDomain, Organization: []string{"gossip"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: trustDomain}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key}, nil
}

// Issued is a certificate and its key.
type Issued struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Issue signs a certificate for id, valid from notBefore to notAfter (zero
// values: from a minute ago for DefaultCertValidity). It carries id as its
// only URI SAN and can serve both ends of TLS. hosts (IP addresses or DNS
// names) are added as IP and DNS SANs, for clients that check host names
// (grpcurl, browsers); the nodes and gossipctl check the URI SAN only.
func (ca *CA) Issue(id Identity, notBefore, notAfter time.Time, hosts ...string) (*Issued, error) {
	key, err := NewKey(KeyECDSA)
	if err != nil {
		return nil, err
	}
	return ca.IssueWithKey(id, notBefore, notAfter, key, hosts...)
}

// IssueWithKey is Issue for a key of the caller's (NewKey).
func (ca *CA) IssueWithKey(id Identity, notBefore, notAfter time.Time, key crypto.Signer, hosts ...string) (*Issued, error) {
	if id.Name == "" || (id.Kind != KindNode && id.Kind != KindClient) {
		return nil, errors.New("auth: Issue needs a node or client identity with a name")
	}
	u, err := url.Parse(id.URI())
	if err != nil {
		return nil, err
	}
	if _, err := ParseID(u); err != nil {
		return nil, err
	}
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Minute)
	}
	if notAfter.IsZero() {
		notAfter = notBefore.Add(time.Minute + DefaultCertValidity)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id.Name, OrganizationalUnit: []string{id.Kind.String()}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{u},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: c, Key: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	return n
}

// CertPEM is c PEM-encoded.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM is k PEM-encoded (PKCS #8).
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes the certificate to certPath (mode 0644) and the key to
// keyPath (mode 0600). It refuses to overwrite existing files unless
// overwrite.
func WriteFiles(certPath, keyPath string, c *x509.Certificate, k crypto.Signer, overwrite bool) error {
	kp, err := KeyPEM(k)
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags |= os.O_EXCL
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{keyPath, kp, 0o600}, {certPath, CertPEM(c), 0o644}} {
		fh, err := os.OpenFile(f.path, flags, f.mode)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists: not overwritten (remove it, or write elsewhere)", f.path)
		}
		if err != nil {
			return err
		}
		_, err = fh.Write(f.data)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		if err := os.Chmod(f.path, f.mode); err != nil { // O_TRUNC on an existing file keeps its mode
			return err
		}
	}
	return nil
}

// LoadCA reads a CA written by WriteFiles.
func LoadCA(certPath, keyPath string) (*CA, error) {
	cb, err := readFile("--ca", certPath)
	if err != nil {
		return nil, err
	}
	kb, err := readFile("--ca-key", keyPath)
	if err != nil {
		return nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, fmt.Errorf("%s, %s: want PEM files (a CERTIFICATE and a PRIVATE KEY)", certPath, keyPath)
	}
	c, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok || !c.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate with its key", certPath)
	}
	return &CA{Cert: c, Key: signer}, nil
}
