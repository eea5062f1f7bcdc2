// Command gossip-sim simulates the gossip protocol at scale: the real
// protocol core on every node, a simulated network with loss, delay
// distributions and crashed nodes, and virtual time, so that 10,000 to
// 100,000 nodes run on one machine in minutes. By default it runs what
// users run (Plumtree over streams, over the membership overlay); --protocol
// flood and push run the seed's unary push. It reports reliability, the
// time and hops until full delivery, copies per delivery and RMR, with
// --sweep how they grow with N, and with --fail the failure experiment
// of the Plumtree and HyParView papers.
//
//	go run ./cmd/gossip-sim                       # 1,000 nodes, plumtree over the membership overlay
//	go run ./cmd/gossip-sim --protocol flood --sweep 1000,10000,100000 --loss 0.1
//	go run ./cmd/gossip-sim --fail 10,50,80,95    # 10,000 nodes, 10–95 % crashed at once
//
// See `gossip-sim -h` for every flag, internal/sim for the model and
// docs/SIMULATOR.md for the results.
package main

import "os"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}
