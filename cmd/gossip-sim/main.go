// Command gossip-sim simulates the gossip protocol at scale: the real
// protocol core on every node, a simulated network with loss, delay
// distributions, crashed nodes and partitions, and virtual time, so that
// 100,000 nodes run on one machine in minutes. It reports the time and the
// rounds until full delivery, copies per delivery, delivery ratio and
// memory per node, and with --sweep how they grow with N.
//
//	go run ./cmd/gossip-sim                       # 1,000 nodes, random 8-regular, fanout 3
//	go run ./cmd/gossip-sim --sweep 1000,10000,100000 --fanout all --loss 0.1
//
// See `gossip-sim -h` for every flag, internal/sim for the model and
// docs/PERFORMANCE.md for the results.
package main

import "os"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}
