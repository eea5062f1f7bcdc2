package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/grpc-gossip/gossip/auth"
)

// loadSecurity loads the TLS files and the token file, and settles the
// node id: it defaults to the certificate's node id, and a --id that is
// not the certificate's is an error (every peer would refuse the node).
func (d *daemon) loadSecurity(logger *slog.Logger) (*auth.Security, error) {
	cfg := d.cfg
	sec, err := auth.New(auth.Config{
		Cert: cfg.TLSCert, Key: cfg.TLSKey, CA: cfg.TLSCA, ClientCA: cfg.ClientCA,
		TrustDomain: cfg.TrustDomain, TokenFile: cfg.AuthTokenFile, Reflection: cfg.Reflection, Transition: cfg.TLSTransition, Sign: cfg.Sign, SignTransition: cfg.SignTransition,
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	own, err := sec.Identity()
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %w", cfg.TLSCert, err)
	}
	switch {
	case d.id == "":
		d.id = own.Name
	case d.id != own.Name:
		return nil, fmt.Errorf("--id %q, but --tls-cert %s is for %s: peers would refuse this node; give --id %q or a certificate for node %q", d.id, cfg.TLSCert, own, own.Name, d.id)
	}
	return sec, nil
}

// securityName is the start-up log's security attribute.
func (d *daemon) securityName() string {
	if d.sec == nil {
		return "none (plaintext, open cluster)"
	}
	return d.sec.String()
}

// reloadOnHUP re-reads the token file on SIGHUP until shutdown
// (certificates are re-read at each handshake anyway).
func (d *daemon) reloadOnHUP() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-d.streams.Done():
			return
		case <-hup:
			if err := d.sec.Reload(); err == nil {
				d.logger.Info("SIGHUP: reloaded --auth-token-file")
			}
		}
	}
}
