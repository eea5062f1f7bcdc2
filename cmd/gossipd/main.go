// Command gossipd runs one node of a gossip-broadcast cluster as a daemon:
// the gossip protocol, the client API (NodeService), gRPC health and
// reflection on one port, /healthz and /readyz on an admin port.
// Configuration comes from flags, GOSSIPD_* environment variables and an
// optional YAML file; `gossipd --help` lists every setting. SIGINT or
// SIGTERM shuts it down gracefully (exit 0). The implementation is in
// internal/daemon.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/grpc-gossip/gossip/internal/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once
	}()
	code := daemon.Main(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
