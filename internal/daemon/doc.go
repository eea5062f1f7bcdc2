// Package daemon is gossipd: one gossip node run as a long-lived process.
//
// cmd/gossipd is a thin main around Main. The pieces are separately
// usable and testable:
//
//   - Load turns command-line arguments, the environment (GOSSIPD_*) and an
//     optional YAML file into a validated Config, in that order of
//     precedence over the defaults (DefaultConfig). Every bad value is one
//     error naming the setting and where the value came from; so is every
//     contradiction between settings (a --probe-timeout not below
//     --probe-interval), naming each setting involved and its source.
//     Main exits 2 for all of them.
//   - Run binds the listeners, creates the node, serves until its context
//     ends and then shuts down gracefully; it returns nil after a clean
//     shutdown.
//
// # What a daemon serves
//
// On Config.Listen, one gRPC server carries the node's services (Gossip,
// node to node; NodeService, the client API; MembershipService, SWIM), the
// standard gRPC health service and gRPC reflection. On Config.AdminListen
// (by default the Listen host and port + 1, so that daemons with
// different --listen ports on one host do not collide; empty: none) an
// HTTP server answers /healthz (200 while the gRPC server serves) and
// /readyz (200 once the node is ready, else 503 with the reason).
//
// # Readiness
//
// A node is ready once it has joined a cluster through one of its seeds
// (Config.Join), or at once when it has no seeds (the first node). Until
// then the gRPC health service reports NOT_SERVING for "", gossip.v1.Gossip
// and gossip.v1.NodeService, and /readyz answers 503. The node still serves
// the gossip and membership RPCs while not ready: that is how other nodes
// join through it, so nodes can start in any order.
//
// Joining retries with exponential backoff (100 ms doubling to 5 s, ±20%
// jitter) until a seed answers or the daemon stops; the node's gRPC
// connections reconnect on the same schedule, so a seed that starts late
// is found within about one backoff interval of its start.
//
// Seeds are resolved before every attempt (join.go): a host name stands
// for every address it resolves to (a Kubernetes headless Service lists
// every pod), and dnssrv+NAME for every target and port of the SRV record
// NAME. A node whose entries all resolve to itself alone is the first
// node. Once ready, the daemon resolves them again every
// --reconnect-interval and hands changed seeds to membership's
// reconnection (gossip.GossipNode.SetSeeds), so a node left alone, or two
// that both started as first nodes, find the cluster by name.
//
// # Membership and topology: SWIM, and Plumtree over a sparse overlay
//
// Join gives the node the seed's whole membership; from then on SWIM
// (gossip.MembershipConfig: --probe-interval, --probe-timeout,
// --suspicion-mult, --dead-reap-after) probes members, spreads joins,
// suspicions, deaths and leaves, and syncs full state with a random
// member every 30 s. The node keeps ceil(ln N) + --fanout-extra (2)
// neighbours chosen at random among alive members, each link two-way, and
// replaces a neighbour that dies or leaves. Messages travel on one
// Gossip.Stream per neighbour (--transport stream, the default), in
// batches, along one Plumtree per publishing node: each node receives each
// message about once, and grafts and anti-entropy repair what the tree
// misses (docs/DESIGN.md §6a; --graft-timeout, --sync-interval,
// --store-bytes; backpressure: --stream-queue-bytes, --max-queued-bytes,
// --flow-window-bytes).
// Neighbours that do not speak Gossip.Stream, and all of them with
// --transport unary, get the seed's PutMessageToClient: with the default
// fanout, gossip.FanoutAll (-1), a flood over the overlay; a positive
// fanout forwards to that many random neighbours (fewer RPCs, probabilistic
// delivery, docs/DESIGN.md §6). See docs/DESIGN.md §10 for membership.
//
// # Shutdown
//
// When Run's context ends (gossipd: SIGINT or SIGTERM), the daemon
//
//  1. reports NOT_SERVING on the health service and 503 on /readyz,
//     stops joining, and announces its leave (gossip.GossipNode.Leave, at
//     most 2 s) so that peers mark it left instead of timing it out;
//  2. waits until no forward is in flight and the neighbours' stream
//     queues are empty (gossip.Stats.InflightSends == 0,
//     Stats.Stream.QueuedBytes == 0), or Config.ShutdownTimeout has passed;
//  3. ends streaming RPCs (Subscribe, health Watch) with Unavailable and
//     stops the gRPC server gracefully, cutting the RPCs still running when
//     the timeout is reached;
//  4. closes the node, its connections, the admin server and the data-dir
//     lock.
//
// Every goroutine the daemon starts (gRPC and HTTP servers, the join loop)
// has ended when Run returns.
package daemon
