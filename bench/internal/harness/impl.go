// Package harness is the benchmark driver's contract with the systems it
// measures: each system (this project, hashicorp/memberlist, libp2p
// GossipSub) is an Impl that runs N nodes in one process on loopback.
package harness

import "context"

// Profile selects how a system is configured.
type Profile string

const (
	// ProfileDefault runs each system with its own defaults (what a user
	// gets without tuning), on loopback. Security is each system's default
	// too: none for this project and memberlist, TLS/Noise and message
	// signing for GossipSub (libp2p's defaults).
	ProfileDefault Profile = "default"
	// ProfileEqualised gives every system the same fanout/degree
	// (ClusterConfig.Degree), memberlist a 20 ms GossipInterval, and no
	// transport security or message signing anywhere.
	ProfileEqualised Profile = "equalised"
)

// ClusterConfig is what an Impl is asked to start.
type ClusterConfig struct {
	Nodes   int     // number of nodes, all in this process, on 127.0.0.1 ephemeral ports
	Profile Profile // default or equalised
	Degree  int     // the equalised fanout / mesh degree (ignored by ProfileDefault)
	Seed    int64   // for any random choice the Impl makes (topology, ids)
	// MaxPayload is the largest payload the run will publish, so an Impl
	// can raise its message size limits (e.g. for 64 KB payloads).
	MaxPayload int
}

// Deliver is called by an Impl for every message its application layer
// receives on node (0-based), with the payload exactly as published. It may
// be called concurrently from many goroutines and must not block. The
// harness de-duplicates (the payload starts with the message's 8-byte id)
// and counts duplicates that reach the application. It does not retain
// payload after it returns.
type Deliver func(node int, payload []byte)

// Impl is one gossip system under test.
//
// The harness calls Start once, then Publish many times, then Close. The
// driver calls Publish concurrently, up to Phases.Publishers calls at once
// (each scheduled message on a goroutine of its own), so an Impl must be
// safe for concurrent Publish calls. Wire may be called at any time,
// concurrently with Publish and with deliveries.
type Impl interface {
	// Name is a short stable name: "gossip-unary", "memberlist", "gossipsub".
	Name() string
	// Start launches cfg.Nodes nodes, connects them into one cluster (each
	// system's own way: join/bootstrap/mesh), waits until they are
	// connected enough to disseminate (or ctx ends), and returns. deliver
	// receives every application-level receipt from then on.
	Start(ctx context.Context, cfg ClusterConfig, deliver Deliver) error
	// Publish broadcasts payload from node. It may wait for the system's
	// acknowledgement (or queue and return); an error is counted as a
	// failed publish. Once Phases.Publishers calls are in flight, the
	// messages scheduled next wait for one to return, and latency is
	// measured from each message's scheduled time, so a blocking Publish
	// shows up as latency. The Impl may retain payload:
	// the harness never modifies it after the call.
	//
	// The publisher's own receipt (a system that delivers locally) is
	// ignored: every figure counts the N-1 other nodes as receivers.
	Publish(node int, payload []byte) error
	// Wire returns the cumulative messages and bytes all nodes have put on
	// the wire so far, counted at the transport (not deliveries): gRPC
	// stats.Handler, a counting memberlist Transport, libp2p's bandwidth
	// counter. Control traffic (ACKs, heartbeats, IHAVE/IWANT, gossip of
	// membership) is included in bytes; Msgs counts message-carrying
	// transmissions where the transport can tell, else all transmissions
	// (say which in Describe).
	Wire() (msgs, bytes uint64)
	// Describe says exactly what the Impl set for the profile, one line per
	// setting, for the report.
	Describe() []string
	// Close stops every node and releases everything.
	Close() error
}
