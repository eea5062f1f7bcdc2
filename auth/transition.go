package auth

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The transition mode (Config.Transition) turns TLS on in a running
// cluster without a split (docs/SECURITY.md): a node accepts TLS and
// plaintext connections on the same port, dials TLS, and falls back to
// plaintext for a peer that does not speak TLS yet; the interceptors let
// callers without credentials through as a plaintext node does, while a
// certificate or token that is presented is checked as usual. It is a
// temporary step: a network attacker can force the fallback.

// plaintextFor is how long a dialler keeps using plaintext to a server
// that did not speak TLS before it tries TLS again.
const plaintextFor = 30 * time.Second

// tlsRecordHandshake is the first byte of a TLS connection (a handshake
// record), and never the first byte of HTTP/2's client preface ("PRI").
const tlsRecordHandshake = 0x16

// eitherServerCreds serves TLS to a client whose first byte is a TLS
// handshake record, plaintext to any other.
type eitherServerCreds struct {
	credentials.TransportCredentials // TLS
}

func (e eitherServerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	br := bufio.NewReaderSize(conn, 512)
	first, err := br.Peek(1)
	if err != nil {
		return nil, nil, err
	}
	pc := &peekedConn{Conn: conn, r: br}
	if first[0] == tlsRecordHandshake {
		return e.TransportCredentials.ServerHandshake(pc)
	}
	return insecure.NewCredentials().ServerHandshake(pc)
}

func (e eitherServerCreds) Clone() credentials.TransportCredentials {
	return eitherServerCreds{e.TransportCredentials.Clone()}
}

// peekedConn is a net.Conn whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// fallbackDialCreds dials TLS, and plaintext for plaintextFor to a server
// whose answer shows it does not speak TLS.
type fallbackDialCreds struct {
	credentials.TransportCredentials // TLS (dialCreds)
	s                                *Security
	plain                            *sync.Map // authority → time.Time until which plaintext is used
}

func (f fallbackDialCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if until, ok := f.plain.Load(authority); ok && time.Now().Before(until.(time.Time)) {
		return insecure.NewCredentials().ClientHandshake(ctx, authority, conn)
	}
	c, ai, err := f.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if err != nil && notTLS(err) {
		f.plain.Store(authority, time.Now().Add(plaintextFor))
		f.s.logger.Info("TLS transition: the peer does not speak TLS; using plaintext to it", "remote", authority, "for", plaintextFor.String(), "err", err.Error())
	}
	return c, ai, err
}

func (f fallbackDialCreds) Clone() credentials.TransportCredentials {
	return fallbackDialCreds{f.TransportCredentials.Clone(), f.s, f.plain}
}

// notTLS reports whether a failed client handshake means the server does
// not speak TLS (a plaintext gRPC server closes the connection on a
// ClientHello, or answers with HTTP/2 frames), rather than a refused
// certificate.
func notTLS(err error) bool {
	var ce *CertError
	switch {
	case errors.As(err, &ce):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "first record does not look like a TLS handshake") || strings.Contains(msg, "record overflow") ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") || strings.HasSuffix(msg, "EOF")
}
