package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpc-gossip/gossip/auth"
)

// securityFlags are the global flags of a secured gossipd: TLS and a
// bearer token. Each has a GOSSIPCTL_ environment variable that replaces
// its default.
type securityFlags struct {
	ca, cert, key, token, trustDomain string
}

// The environment variables of securityFlags, by flag.
var securityEnv = map[string]string{
	"tls-ca":       "GOSSIPCTL_TLS_CA",
	"tls-cert":     "GOSSIPCTL_TLS_CERT",
	"tls-key":      "GOSSIPCTL_TLS_KEY",
	"token":        "GOSSIPCTL_TOKEN",
	"trust-domain": "GOSSIPCTL_TRUST_DOMAIN",
}

func (s *securityFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.ca, "tls-ca", "", "CA bundle (PEM) that signed the node certificates: turns TLS on (the node must present a node certificate of it); $GOSSIPCTL_TLS_CA")
	f.StringVar(&s.cert, "tls-cert", "", "client certificate (PEM, spiffe://<trust-domain>/client/<name>) to present; needs --tls-key and --tls-ca; $GOSSIPCTL_TLS_CERT")
	f.StringVar(&s.key, "tls-key", "", "private key of --tls-cert; $GOSSIPCTL_TLS_KEY")
	f.StringVar(&s.token, "token", "", "bearer token to send (\"authorization: Bearer <token>\"), one of gossipd's --auth-token-file; needs --tls-ca; $GOSSIPCTL_TOKEN")
	f.StringVar(&s.trustDomain, "trust-domain", auth.DefaultTrustDomain, "SPIFFE trust domain of the node certificates; $GOSSIPCTL_TRUST_DOMAIN")
}

// check applies the environment and the rules between the flags.
func (s *securityFlags) check(cmd *cobra.Command, getenv func(string) string) error {
	for name, env := range securityEnv {
		if cmd.Flags().Changed(name) {
			continue
		}
		if v := strings.TrimSpace(getenv(env)); v != "" {
			switch name {
			case "tls-ca":
				s.ca = v
			case "tls-cert":
				s.cert = v
			case "tls-key":
				s.key = v
			case "token":
				s.token = v
			case "trust-domain":
				s.trustDomain = v
			}
		}
	}
	switch {
	case (s.cert == "") != (s.key == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case s.cert != "" && s.ca == "":
		return errors.New("--tls-cert needs --tls-ca (the CA that signed the node certificates)")
	case s.token != "" && s.ca == "":
		return errors.New("--token needs --tls-ca: a bearer token must not be sent in the clear")
	}
	return nil
}

// dialOptions are the transport credentials (and the token) of a dial.
func (s *securityFlags) dialOptions() ([]grpc.DialOption, error) {
	if s.ca == "" {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	cfg, err := auth.ClientTLSConfig(s.ca, s.cert, s.key, s.trustDomain)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if s.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(s.token)))
	}
	return opts, nil
}

// bearer sends a token as "authorization: Bearer <token>", only over TLS.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

var _ credentials.PerRPCCredentials = bearer("")

// tlsHint explains a failed TLS connection in gossipctl's words, or ""
// (called with TLS on only).
func tlsHint(msg string) string {
	switch {
	case strings.Contains(msg, "refused peer certificate"):
		i := strings.Index(msg, "refused peer certificate")
		return "the node's certificate was refused: " + strings.TrimRight(msg[i:], `"`)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the node does not speak TLS (plaintext gossipd): drop --tls-ca"
	case strings.Contains(msg, "authentication handshake failed"), strings.Contains(msg, "bad certificate"), strings.Contains(msg, "certificate expired"),
		// With TLS 1.3 the client's handshake ends before the server
		// checks the client certificate: a refusal then shows as the
		// connection closing under gRPC's first write or read.
		strings.Contains(msg, "broken pipe"), strings.Contains(msg, "connection reset"), strings.Contains(msg, "server preface"):
		// The server refused the client certificate: what the client sees
		// is an alert or a connection cut mid-handshake.
		return fmt.Sprintf("the TLS handshake failed (%s): the node refused this client's TLS certificate, or is not a gossipd with TLS; the node's log line \"TLS: refused peer certificate\" says which check failed", dialReason(msg))
	}
	return ""
}
