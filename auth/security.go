package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Config is the security configuration of one node. The field comments
// name gossipd's flags.
type Config struct {
	// Cert and Key are the node's certificate (PEM, optionally followed by
	// intermediates) and private key (--tls-cert, --tls-key). The
	// certificate must carry the URI SAN spiffe://<TrustDomain>/node/<id>.
	Cert, Key string
	// CA is the PEM bundle of the CA that signs cluster members, and
	// clients unless ClientCA is set (--tls-ca).
	CA string
	// ClientCA is a separate PEM bundle for client certificates
	// (--client-ca). Empty: CA signs clients too.
	ClientCA string
	// TrustDomain is the SPIFFE trust domain (--trust-domain). Default
	// DefaultTrustDomain.
	TrustDomain string
	// TokenFile holds the bearer tokens clients may present, one per line
	// (--auth-token-file). Empty: clients need a client certificate.
	TokenFile string
	// Reflection keeps gRPC reflection on (--reflection); without it a
	// node with security registers none.
	Reflection bool
	// Transition accepts plaintext as well as TLS, dials TLS with a
	// fallback to plaintext, and requires no credential (one presented is
	// checked): the middle step of turning TLS on in a running cluster
	// (--tls-transition; see transition.go).
	Transition bool
	// Sign makes the node sign the messages it originates and verify
	// every message before it delivers or forwards it (--sign; sign.go).
	// Every node of the cluster must have it, or SignTransition.
	Sign bool
	// SignTransition, with Sign, is the middle step of turning signing on
	// in a running cluster (--sign-transition): the node signs its own
	// messages and refuses every signed message whose signature does not
	// check, but accepts, delivers and forwards unsigned ones (counted in
	// Counters.UnsignedAccepted) — those of the nodes not yet signing.
	SignTransition bool
	// Logger receives refusals (warn) and reloads (info). Nil discards.
	Logger *slog.Logger
	// Now is the clock certificates are checked against. Nil: time.Now.
	Now func() time.Time
}

// Security is a node's credentials and policy: TLS configurations that
// reload their files, the token list, and the interceptors. It is safe for
// concurrent use; nothing in it needs closing.
type Security struct {
	td         string
	reflection bool
	transition bool
	sign       bool
	signTrans  bool // Config.SignTransition
	logger     *slog.Logger
	pair       *watched[*tls.Certificate]
	v          *verifier
	tokens     *tokenFile // nil without TokenFile
	tc         tlsCounters
	ac         authCounters
	sc         signCounters
	cc         certCache
}

// New loads cfg's files (each error names its flag and file) and returns
// the node's Security.
func New(cfg Config) (*Security, error) {
	if cfg.Cert == "" || cfg.Key == "" || cfg.CA == "" {
		return nil, errors.New("auth: --tls-cert, --tls-key and --tls-ca are required together")
	}
	if cfg.SignTransition && !cfg.Sign {
		return nil, errors.New("auth: --sign-transition needs --sign: it is signing with unsigned messages still accepted")
	}
	s := &Security{td: cfg.TrustDomain, reflection: cfg.Reflection, transition: cfg.Transition, sign: cfg.Sign, signTrans: cfg.SignTransition, logger: cfg.Logger}
	if s.td == "" {
		s.td = DefaultTrustDomain
	}
	if s.logger == nil {
		s.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	var err error
	onErr := func(setting string) func(error) {
		return func(err error) {
			s.tc.reloadErrors.Add(1)
			s.logger.Error("TLS: reloading "+setting+" failed; still using the previous one", "err", err.Error())
		}
	}
	if s.pair, err = newWatched(func() (*tls.Certificate, error) {
		p, err := loadKeyPair(cfg.Cert, cfg.Key, s.td, KindNode)
		if err == nil {
			s.logger.Info("TLS: loaded node certificate", "file", cfg.Cert, "san", uriSANs(p.Leaf),
				"not_after", p.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return p, err
	}, onErr("--tls-cert/--tls-key"), cfg.Cert, cfg.Key); err != nil {
		return nil, err
	}
	s.v = &verifier{td: s.td, now: now, logger: s.logger, counters: &s.tc}
	if s.v.ca, err = newWatched(func() (*x509.CertPool, error) { return loadPool("--tls-ca", cfg.CA) }, onErr("--tls-ca"), cfg.CA); err != nil {
		return nil, err
	}
	if cfg.ClientCA != "" {
		if s.v.clientCA, err = newWatched(func() (*x509.CertPool, error) { return loadPool("--client-ca", cfg.ClientCA) }, onErr("--client-ca"), cfg.ClientCA); err != nil {
			return nil, err
		}
	}
	if cfg.TokenFile != "" {
		if s.tokens, err = newTokenFile(cfg.TokenFile, s.logger); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// TrustDomain is the trust domain identities are checked in.
func (s *Security) TrustDomain() string { return s.td }

// Reflection reports whether gRPC reflection stays on (Config.Reflection).
func (s *Security) Reflection() bool { return s.reflection }

// Identity is the identity of the node's own certificate, as loaded now.
func (s *Security) Identity() (Identity, error) {
	p, err := s.pair.get()
	if err != nil {
		return Identity{}, err
	}
	return IdentityOf(p.Leaf, s.td)
}

// ServerConfig is the TLS configuration of the node's server: TLS 1.3, the
// node certificate as loaded at each handshake, and client certificates
// requested but optional (a client may use a token instead; the
// interceptors decide per RPC). A certificate presented is verified at
// the handshake: a bad one fails it.
func (s *Security) ServerConfig() *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS13}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		addr := remote(hello.Conn)
		return &tls.Config{
			MinVersion:     tls.VersionTLS13,
			NextProtos:     []string{"h2"}, // gRPC's ALPN: credentials.NewTLS adds it to the base config only
			ClientAuth:     tls.RequestClientCert,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.pair.get() },
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return nil // no certificate: the interceptors ask for a token or refuse
				}
				_, err := s.v.verify(cs.PeerCertificates, false, "incoming", addr)
				return err
			},
		}, nil
	}
	return base
}

// ClientConfig is the TLS configuration of the node's dials to other
// nodes: TLS 1.3, the node certificate as the client certificate, and the
// server's certificate verified against the CA and required to be a node
// identity of the trust domain. Host names are not checked (nodes dial
// addresses, and the identity is in the URI SAN): the server's node id is
// then checked against the id it claims in its answers.
func (s *Security) ClientConfig() *tls.Config { return s.clientConfigFor("") }

func (s *Security) clientConfigFor(addr string) *tls.Config {
	return clientConfig(s.v, func() (*tls.Certificate, error) { return s.pair.get() }, addr)
}

func clientConfig(v *verifier, cert func() (*tls.Certificate, error), addr string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verification is VerifyConnection's, against the CA file as it
		// is now; InsecureSkipVerify only turns off the host name check
		// and crypto/tls's own chain check.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert()
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := v.verify(cs.PeerCertificates, true, "outgoing", addr)
			return err
		},
	}
}

// DialOption is the transport credentials of the node's dials
// (ClientConfig), for gossip.NewGossipClientFactory.
func (s *Security) DialOption() grpc.DialOption {
	var c credentials.TransportCredentials = dialCreds{credentials.NewTLS(s.ClientConfig()), s}
	if s.transition {
		c = fallbackDialCreds{c, s, &sync.Map{}}
	}
	return grpc.WithTransportCredentials(c)
}

// Transition reports whether the Security is in the transition mode
// (Config.Transition).
func (s *Security) Transition() bool { return s.transition }

// dialCreds is ClientConfig's credentials with the dialled address in the
// log line of a refused server certificate.
type dialCreds struct {
	credentials.TransportCredentials
	s *Security
}

func (d dialCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(d.s.clientConfigFor(authority)).ClientHandshake(ctx, authority, conn)
}

func (d dialCreds) Clone() credentials.TransportCredentials {
	return dialCreds{d.TransportCredentials.Clone(), d.s}
}

// ServerOptions are the server's credentials (ServerConfig) and the
// authorization interceptors (UnaryInterceptor, StreamInterceptor).
// gossip.WithSecurity adds them to the node's ServerOptions.
func (s *Security) ServerOptions() []grpc.ServerOption {
	var creds credentials.TransportCredentials = credentials.NewTLS(s.ServerConfig())
	if s.transition {
		creds = eitherServerCreds{creds}
	}
	return []grpc.ServerOption{
		grpc.Creds(creds),
		grpc.ChainUnaryInterceptor(s.UnaryInterceptor),
		grpc.ChainStreamInterceptor(s.StreamInterceptor),
	}
}

// Reload re-reads the token file now (SIGHUP). Certificate files are
// checked at every handshake anyway.
func (s *Security) Reload() error {
	if s.tokens == nil {
		return nil
	}
	return s.tokens.reload()
}

// ClientTLSConfig is the TLS configuration of a client of a node (such as
// gossipctl): the server must present a node certificate signed by the CA
// in caFile, of trustDomain (default DefaultTrustDomain). certFile and
// keyFile, both or neither, are a client certificate
// (spiffe://<td>/client/<name>) or a node certificate to present.
func ClientTLSConfig(caFile, certFile, keyFile, trustDomain string) (*tls.Config, error) {
	if trustDomain == "" {
		trustDomain = DefaultTrustDomain
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if caFile == "" {
		return nil, errors.New("--tls-ca is required with TLS: the CA that signed the node certificates")
	}
	pool, err := loadPool("--tls-ca", caFile)
	if err != nil {
		return nil, err
	}
	v := &verifier{td: trustDomain, now: time.Now, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), counters: &tlsCounters{},
		ca: &watched[*x509.CertPool]{val: pool, ok: true}}
	var cert func() (*tls.Certificate, error)
	if certFile != "" {
		pair, err := loadKeyPair(certFile, keyFile, trustDomain, 0)
		if err != nil {
			return nil, err
		}
		cert = func() (*tls.Certificate, error) { return pair, nil }
	}
	return clientConfig(v, cert, ""), nil
}

// Counters are a Security's counts since New.
type Counters struct {
	// Refused peer certificates (both directions), by check.
	Expired, NotYetValid, UnknownCA, TrustDomain, BadIdentity, NoCertificate uint64
	// ReloadErrors counts reloads of a file that failed (the previous
	// credentials stayed in use).
	ReloadErrors uint64
	// RPCs refused by the interceptors.
	Unauthenticated, PermissionDenied uint64
	// IdentityMismatches counts requests whose claimed node id was not the
	// one of the caller's certificate (see CheckClaim).
	IdentityMismatches uint64
	// Messages refused by VerifyMessage: unsigned, forged (a bad
	// signature or certificate, or another origin's), stale (created
	// outside the window).
	Unsigned, Forged, Stale uint64
	// UnsignedAccepted counts the unsigned messages accepted in the
	// signing transition (Config.SignTransition); they are not in
	// Unsigned.
	UnsignedAccepted uint64
}

// Counters returns the counts so far.
func (s *Security) Counters() Counters {
	return Counters{
		Expired: s.tc.expired.Load(), NotYetValid: s.tc.notYetValid.Load(), UnknownCA: s.tc.unknownCA.Load(),
		TrustDomain: s.tc.trustDomain.Load(), BadIdentity: s.tc.identity.Load(), NoCertificate: s.tc.noCert.Load(),
		ReloadErrors:    s.tc.reloadErrors.Load(),
		Unauthenticated: s.ac.unauthenticated.Load(), PermissionDenied: s.ac.permissionDenied.Load(),
		IdentityMismatches: s.ac.mismatches.Load(),
		Unsigned:           s.sc.unsigned.Load(), Forged: s.sc.forged.Load(), Stale: s.sc.stale.Load(),
		UnsignedAccepted: s.sc.unsignedAccepted.Load(),
	}
}

// String is for logs: what the node verifies.
func (s *Security) String() string {
	if s.transition {
		return fmt.Sprintf("TLS transition (trust domain %s; plaintext accepted, no credential required)", s.td)
	}
	signed := ""
	switch {
	case s.signTrans:
		signed = "; signed messages, unsigned ones still accepted (signing transition)"
	case s.sign:
		signed = "; signed messages"
	}
	if s.tokens == nil {
		return fmt.Sprintf("mTLS (trust domain %s; clients: certificates%s)", s.td, signed)
	}
	return fmt.Sprintf("mTLS (trust domain %s; clients: certificates or bearer tokens of %s%s)", s.td, s.tokens.path, signed)
}
