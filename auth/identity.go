// Package auth secures a gossip cluster: mutual TLS between nodes with
// SPIFFE-style identities, bearer tokens for clients, and the gRPC
// interceptors that tell peers from clients. It is used by gossipd and by
// embedders of package gossip alike:
//
//	sec, err := auth.New(auth.Config{
//		Cert: "node.pem", Key: "node-key.pem", CA: "ca.pem",
//		TrustDomain: "gossip", TokenFile: "tokens.txt", Logger: logger,
//	})
//	factory := gossip.NewGossipClientFactory(sec.DialOption())
//	node, err := gossip.New(id, addr, nil, nil, logger, factory, gossip.WithSecurity(sec))
//	err = node.StartGRPCServer(":9001")
//
// Identity is the URI SAN of a certificate: spiffe://<trust-domain>/node/<id>
// for a cluster member, spiffe://<trust-domain>/client/<name> for a client.
// Certificate, key and CA files are read again for each new handshake when
// their size or modification time changed, so replacing them rotates the
// credentials without a restart; connections already up keep theirs.
// docs/SECURITY.md has the threat model and every error an operator sees.
package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind is what an identity is: a cluster member or a client.
type Kind int

const (
	// KindNode is a cluster member: spiffe://<td>/node/<id>.
	KindNode Kind = iota + 1
	// KindClient is a client of the node API: spiffe://<td>/client/<name>.
	KindClient
)

func (k Kind) String() string {
	switch k {
	case KindNode:
		return "node"
	case KindClient:
		return "client"
	}
	return "unknown"
}

// Identity is who a certificate names.
type Identity struct {
	TrustDomain string
	Kind        Kind
	// Name is the node id (KindNode) or the client name (KindClient).
	Name string
}

// URI is the identity as a SPIFFE id: spiffe://gossip/node/a.
func (id Identity) URI() string {
	return (&url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/" + id.Kind.String() + "/" + id.Name}).String()
}

func (id Identity) String() string { return id.URI() }

// NodeID is the SPIFFE id of node id in trust domain td.
func NodeID(td, id string) Identity { return Identity{TrustDomain: td, Kind: KindNode, Name: id} }

// ClientID is the SPIFFE id of client name in trust domain td.
func ClientID(td, name string) Identity {
	return Identity{TrustDomain: td, Kind: KindClient, Name: name}
}

// Errors of ParseID and IdentityOf.
var (
	ErrNoSPIFFEID       = errors.New("certificate has no spiffe:// URI SAN")
	ErrManySPIFFEIDs    = errors.New("certificate has more than one spiffe:// URI SAN")
	ErrBadSPIFFEID      = errors.New("malformed SPIFFE id")
	ErrWrongTrustDomain = errors.New("wrong trust domain")
)

// maxNameBytes bounds the name in an identity (node ids are at most 256
// bytes, see gossip.Config.MaxHashBytes).
const maxNameBytes = 256

// ParseID parses a SPIFFE id of this package's form:
// spiffe://<trust-domain>/node/<id> or spiffe://<trust-domain>/client/<name>.
// The name is one path segment, escaped as in a URL.
func ParseID(u *url.URL) (Identity, error) {
	if u == nil || u.Scheme != "spiffe" {
		return Identity{}, fmt.Errorf("%w: want scheme spiffe", ErrBadSPIFFEID)
	}
	if u.Host == "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Identity{}, fmt.Errorf("%w %q: want spiffe://<trust-domain>/node/<id> or /client/<name>", ErrBadSPIFFEID, u.String())
	}
	kind, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	var id Identity
	switch kind {
	case "node":
		id.Kind = KindNode
	case "client":
		id.Kind = KindClient
	default:
		ok = false
	}
	if !ok || name == "" || strings.Contains(name, "/") || len(name) > maxNameBytes {
		return Identity{}, fmt.Errorf("%w %q: want spiffe://<trust-domain>/node/<id> or /client/<name>", ErrBadSPIFFEID, u.String())
	}
	id.TrustDomain, id.Name = strings.ToLower(u.Host), name
	return id, nil
}

// IdentityOf returns the identity in cert's URI SANs: exactly one spiffe://
// URI is allowed (other URIs are ignored), and it must be in trustDomain.
func IdentityOf(cert *x509.Certificate, trustDomain string) (Identity, error) {
	var found *url.URL
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if found != nil {
			return Identity{}, ErrManySPIFFEIDs
		}
		found = u
	}
	if found == nil {
		return Identity{}, ErrNoSPIFFEID
	}
	id, err := ParseID(found)
	if err != nil {
		return Identity{}, err
	}
	if !strings.EqualFold(id.TrustDomain, trustDomain) {
		return Identity{}, fmt.Errorf("%w %q in %s, want %q (--trust-domain)", ErrWrongTrustDomain, id.TrustDomain, found, trustDomain)
	}
	return id, nil
}
