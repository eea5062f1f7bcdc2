// Package gossipsecure runs this project's gossip library under the
// benchmark harness as gossip-stream does (Gossip.Stream, Plumtree, the
// same profiles and wire counting), with security on as gossipd runs with
// --tls-cert/--tls-key/--tls-ca and --sign: mutual TLS 1.3 between the
// nodes (a CA made for the run, a SPIFFE node certificate each) and signed
// messages (each signed by its origin with ECDSA P-256, its certificate
// attached, and verified by every node before delivery or forwarding).
// Compared with gossip-stream it shows the cost of security: CPU, latency,
// and bytes on the wire (TLS records, the certificate and signature in
// every message). The adapter is gossipgrpc.NewSecure.
package gossipsecure

import (
	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

// Name is the Impl's name.
const Name = "gossip-stream-tls-signed"

// New returns the gossip-stream-tls-signed Impl; Start launches its nodes.
func New() harness.Impl { return gossipgrpc.NewSecure(Name, gossipgrpc.Stream) }
