package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Signed messages (Config.Sign, gossipd --sign): the origin signs each
// message it brings into the network with its node certificate's key and
// attaches the certificate; every node checks both before it delivers or
// forwards a message (gossip.WithSecurity wires SignMessage and
// VerifyMessage into the core). docs/SECURITY.md has the rules.

// MaxClockSkew is how far in the future a signed message's created time
// may be, by the receiver's clock, before it is refused.
const MaxClockSkew = time.Minute

// Bounds on the signature fields of a message.
const (
	maxSignatureBytes   = 512
	maxCertificateBytes = 8 << 10
	certCacheSize       = 4096
)

// SignedContent is what an origin's signature covers: a domain tag, then
// the id, the origin, the created time and the payload, each
// length-prefixed. from_hash, hops and the sequence fields change on the
// way and are not covered.
func SignedContent(m *pb.GossipMessage) []byte {
	var b []byte
	put := func(s []byte) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, "gossip.v1.GossipMessage signature v1\x00"...)
	put([]byte(m.GetHash()))
	put([]byte(m.GetOrigin()))
	b = binary.BigEndian.AppendUint64(b, uint64(m.GetCreatedUnixNano()))
	put([]byte(m.GetPayload()))
	put(m.GetBinaryPayload())
	return b
}

// SignatureError is a message refused by VerifyMessage. It is a gRPC
// PERMISSION_DENIED at the RPC boundary.
type SignatureError struct {
	Check string // "unsigned", "certificate", "origin", "signature", "stale", "future"
	Msg   string
}

func (e *SignatureError) Error() string { return "signed messages: " + e.Msg }

// GRPCStatus makes the error PERMISSION_DENIED at the RPC boundary.
func (e *SignatureError) GRPCStatus() *status.Status {
	return status.New(codes.PermissionDenied, e.Error())
}

type signCounters struct {
	unsigned, forged, stale atomic.Uint64
	unsignedAccepted        atomic.Uint64 // in the signing transition
	lastLog                 atomic.Int64  // unix ns of the last refusal logged
}

// certCache remembers certificates already checked, by their DER's hash.
type certCache struct {
	mu sync.Mutex
	m  map[[32]byte]cachedCert
}

type cachedCert struct {
	id    Identity
	pub   crypto.PublicKey
	until time.Time
	roots any // the CA pool it was checked against (a reload makes a new one)
}

// Signing reports whether the Security signs and verifies messages.
func (s *Security) Signing() bool { return s.sign }

// SignTransition reports whether unsigned messages are still accepted
// while signing (Config.SignTransition).
func (s *Security) SignTransition() bool { return s.signTrans }

// SignMessage signs m (its origin is this node) with the node's key, and
// attaches the node's certificate. On failure m stays unsigned, which the
// other nodes refuse; the error is logged.
func (s *Security) SignMessage(m *pb.GossipMessage) {
	pair, err := s.pair.get()
	if err == nil {
		var sig []byte
		sig, err = signWith(pair.PrivateKey, SignedContent(m))
		if err == nil {
			m.Signature, m.OriginCertificate = sig, pair.Leaf.Raw
			return
		}
	}
	s.logger.Error("signed messages: cannot sign; the message will be refused by the other nodes", "hash", m.GetHash(), "err", err.Error())
}

func signWith(key crypto.PrivateKey, content []byte) ([]byte, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return k.Sign(rand.Reader, content, crypto.Hash(0))
	case crypto.Signer:
		d := sha256.Sum256(content)
		return k.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	return nil, fmt.Errorf("key of type %T cannot sign", key)
}

// VerifyMessage checks m's signature: present, made by the key of a node
// certificate of the cluster CA that names m's origin, over m's content,
// and m created at most maxAge ago (the de-duplication window: an older
// replay would not be recognised as a duplicate) and at most MaxClockSkew
// ahead. Refusals are counted and logged (at most once a second). In the
// signing transition (Config.SignTransition) an unsigned message is
// accepted (nil) and counted in Counters.UnsignedAccepted; a signed one
// is checked as always.
func (s *Security) VerifyMessage(now time.Time, m *pb.GossipMessage, maxAge time.Duration) error {
	err := s.verifyMessage(now, m, maxAge)
	if err != nil {
		var se *SignatureError
		errors.As(err, &se)
		switch se.Check {
		case "unsigned":
			if s.signTrans {
				s.sc.unsignedAccepted.Add(1)
				return nil
			}
			s.sc.unsigned.Add(1)
		case "stale", "future":
			s.sc.stale.Add(1)
		default:
			s.sc.forged.Add(1)
		}
		if last := s.sc.lastLog.Load(); now.UnixNano()-last > int64(time.Second) && s.sc.lastLog.CompareAndSwap(last, now.UnixNano()) {
			s.logger.Warn("signed messages: refused a message", "hash", m.GetHash(), "origin", m.GetOrigin(), "from", m.GetFromHash(), "check", se.Check, "err", se.Msg)
		}
	}
	return err
}

func (s *Security) verifyMessage(now time.Time, m *pb.GossipMessage, maxAge time.Duration) error {
	sig, der := m.GetSignature(), m.GetOriginCertificate()
	switch {
	case len(sig) == 0 || len(der) == 0:
		return &SignatureError{"unsigned", fmt.Sprintf("message %q from origin %q is not signed (every node must run with --sign; while turning it on, run the signing nodes with --sign-transition too)", m.GetHash(), m.GetOrigin())}
	case len(sig) > maxSignatureBytes || len(der) > maxCertificateBytes:
		return &SignatureError{"signature", fmt.Sprintf("message %q: signature or certificate too large", m.GetHash())}
	}
	c, err := s.originCert(now, der)
	if err != nil {
		return &SignatureError{"certificate", fmt.Sprintf("message %q: origin certificate: %v", m.GetHash(), err)}
	}
	if c.id.Name != m.GetOrigin() {
		return &SignatureError{"origin", fmt.Sprintf("message %q claims origin %q but is signed by %s", m.GetHash(), m.GetOrigin(), c.id)}
	}
	if !verifySig(c.pub, SignedContent(m), sig) {
		return &SignatureError{"signature", fmt.Sprintf("message %q: the signature of %s does not match its content (forged or altered)", m.GetHash(), c.id)}
	}
	created := time.Unix(0, m.GetCreatedUnixNano())
	switch {
	case m.GetCreatedUnixNano() == 0 || now.Sub(created) > maxAge:
		return &SignatureError{"stale", fmt.Sprintf("message %q was created at %s, more than %v ago (a replay, or the clocks differ)", m.GetHash(), created.UTC().Format(time.RFC3339), maxAge)}
	case created.Sub(now) > MaxClockSkew:
		return &SignatureError{"future", fmt.Sprintf("message %q was created at %s, more than %v ahead of this node's clock", m.GetHash(), created.UTC().Format(time.RFC3339), MaxClockSkew)}
	}
	return nil
}

func verifySig(pub crypto.PublicKey, content, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, content, sig)
	case *ecdsa.PublicKey:
		d := sha256.Sum256(content)
		return ecdsa.VerifyASN1(k, d[:], sig)
	case *rsa.PublicKey:
		d := sha256.Sum256(content)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil
	}
	return false
}

// originCert checks a message's origin certificate as a node certificate
// of the CA (as a handshake would, without the log line), with a cache.
func (s *Security) originCert(now time.Time, der []byte) (cachedCert, error) {
	roots, err := s.v.ca.get()
	if err != nil {
		return cachedCert{}, err
	}
	key := sha256.Sum256(der)
	s.cc.mu.Lock()
	c, ok := s.cc.m[key]
	s.cc.mu.Unlock()
	if ok && now.Before(c.until) && c.roots == any(roots) {
		return c, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return cachedCert{}, err
	}
	id, err := s.v.check([]*x509.Certificate{cert}, true)
	if err != nil {
		return cachedCert{}, err
	}
	c = cachedCert{id: id, pub: cert.PublicKey, until: cert.NotAfter, roots: roots}
	s.cc.mu.Lock()
	if s.cc.m == nil || len(s.cc.m) >= certCacheSize {
		s.cc.m = make(map[[32]byte]cachedCert)
	}
	s.cc.m[key] = c
	s.cc.mu.Unlock()
	return c, nil
}
