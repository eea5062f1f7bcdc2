package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grpc-gossip/gossip/auth"
)

// Default file names of gossipctl tls, as consul tls names its own.
const (
	caCertFile = "gossip-ca.pem"
	caKeyFile  = "gossip-ca-key.pem"
)

func newTLSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Create a CA and the node and client certificates of a cluster",
		Long: `tls creates the files gossipd's mutual TLS needs, with crypto/x509 and
ECDSA P-256 keys, or ed25519 with --key-type ed25519 (key files are
written with mode 0600):

  gossipctl tls ca create                     gossip-ca.pem, gossip-ca-key.pem
  gossipctl tls cert create --node node-1     node-node-1.pem, node-node-1-key.pem
  gossipctl tls cert create --client ops      client-ops.pem, client-ops-key.pem

A node certificate carries the URI SAN spiffe://<trust-domain>/node/<id> and
is given to gossipd as --tls-cert/--tls-key with --tls-ca gossip-ca.pem; a
client certificate carries spiffe://<trust-domain>/client/<name> and is given
to gossipctl. Existing files are never overwritten. Keep gossip-ca-key.pem
off the nodes. See docs/SECURITY.md.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return errors.New("missing subcommand: ca or cert") },
	}
	ca := &cobra.Command{Use: "ca", Short: "Manage the cluster CA", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return errors.New("missing subcommand: create") }}
	cert := &cobra.Command{Use: "cert", Short: "Manage node and client certificates", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return errors.New("missing subcommand: create") }}
	ca.AddCommand(newCACreateCmd(g))
	cert.AddCommand(newCertCreateCmd(g))
	cmd.AddCommand(ca, cert)
	return cmd
}

func newCACreateCmd(g *globals) *cobra.Command {
	var dir, keyType string
	var days int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a CA: " + caCertFile + " and " + caKeyFile,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days <= 0 {
				return fmt.Errorf("invalid --days %d: must be positive", days)
			}
			key, err := auth.NewKey(keyType)
			if err != nil {
				return err // a bad --key-type: usage
			}
			ca, err := auth.NewCAWithKey(g.sec.trustDomain, time.Duration(days)*24*time.Hour, key)
			if err != nil {
				return failf("tls ca create: %v", err)
			}
			certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
			if err := auth.WriteFiles(certPath, keyPath, ca.Cert, ca.Key, false); err != nil {
				return failf("tls ca create: %v", err)
			}
			fmt.Fprintf(g.stdout, "created %s and %s (trust domain %s, valid until %s)\n", certPath, keyPath,
				g.sec.trustDomain, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "out-dir", ".", "directory to write the files to")
	cmd.Flags().IntVar(&days, "days", int(auth.DefaultCAValidity/(24*time.Hour)), "validity, in days")
	cmd.Flags().StringVar(&keyType, "key-type", auth.KeyECDSA, "key type: ecdsa (P-256) or ed25519")
	return cmd
}

func newCertCreateCmd(g *globals) *cobra.Command {
	var node, client, caPath, caKey, dir, keyType string
	var hosts []string
	var days int
	cmd := &cobra.Command{
		Use:   "create (--node ID | --client NAME)",
		Short: "Create a node or client certificate signed by the CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var id auth.Identity
			switch {
			case (node == "") == (client == ""):
				return errors.New("give exactly one of --node ID and --client NAME")
			case node != "":
				id = auth.NodeID(g.sec.trustDomain, node)
			default:
				id = auth.ClientID(g.sec.trustDomain, client)
			}
			if days <= 0 {
				return fmt.Errorf("invalid --days %d: must be positive", days)
			}
			if strings.ContainsAny(id.Name, "/\\") {
				return fmt.Errorf("invalid name %q: no '/' or '\\'", id.Name)
			}
			key, err := auth.NewKey(keyType)
			if err != nil {
				return err // a bad --key-type: usage
			}
			ca, err := auth.LoadCA(caPath, caKey)
			if err != nil {
				return failf("tls cert create: %v", err)
			}
			nb := time.Now().Add(-time.Minute)
			na := nb.Add(time.Duration(days) * 24 * time.Hour)
			if na.After(ca.Cert.NotAfter) {
				na = ca.Cert.NotAfter
			}
			if !cmd.Flags().Changed("host") && id.Kind == auth.KindClient {
				hosts = nil
			}
			is, err := ca.IssueWithKey(id, nb, na, key, hosts...)
			if err != nil {
				return failf("tls cert create: %v", err)
			}
			base := filepath.Join(dir, id.Kind.String()+"-"+id.Name)
			if err := auth.WriteFiles(base+".pem", base+"-key.pem", is.Cert, is.Key, false); err != nil {
				return failf("tls cert create: %v", err)
			}
			fmt.Fprintf(g.stdout, "created %s.pem and %s-key.pem for %s (valid until %s)\n", base, base, id, na.UTC().Format(time.DateOnly))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", "", "node id: a certificate for gossipd --id ID (spiffe://<trust-domain>/node/ID)")
	f.StringVar(&client, "client", "", "client name: a certificate for gossipctl and other clients (spiffe://<trust-domain>/client/NAME)")
	f.StringVar(&caPath, "ca", caCertFile, "the CA certificate")
	f.StringVar(&caKey, "ca-key", caKeyFile, "the CA key")
	f.StringVar(&dir, "out-dir", ".", "directory to write the files to")
	f.IntVar(&days, "days", int(auth.DefaultCertValidity/(24*time.Hour)), "validity, in days (at most the CA's)")
	f.StringVar(&keyType, "key-type", auth.KeyECDSA, "key type: ecdsa (P-256) or ed25519 (also the key --sign signs messages with)")
	f.StringSliceVar(&hosts, "host", []string{"localhost", "127.0.0.1"}, "IP addresses and DNS names of the node, as SANs for clients that check host names (grpcurl); gossipd and gossipctl check the SPIFFE id only (default for --client: none)")
	return cmd
}
