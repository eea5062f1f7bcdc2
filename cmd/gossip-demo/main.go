// Command gossip-demo is the seed system's demo: it starts 20 gossip nodes
// on 127.0.0.1:6001..6020 connected in a ring, publishes 3 messages from
// every node, waits until every node has delivered all of them, prints a
// summary and exits (0 when every delivery happened). See
// `gossip-demo -h` for the flags (other sizes and topologies, ephemeral
// ports, --serve to keep the cluster up for grpcurl).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process at once
	}()
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
