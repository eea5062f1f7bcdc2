// Command gossipctl is the command-line client of gossipd: it publishes
// messages, follows deliveries and shows a node's members, neighbours,
// status and health over the node's gRPC API (NodeService and the standard
// gRPC health service). Run `gossipctl --help` for the subcommands.
package main

import (
	"os"

	"github.com/grpc-gossip/gossip/cmd/gossipctl/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
