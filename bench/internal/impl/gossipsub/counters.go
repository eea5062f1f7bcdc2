package gossipsub

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// wireCounter is the libp2p bandwidth reporter (libp2p.BandwidthReporter)
// shared by every host. The swarm calls it for every Read/Write on every
// stream, so it counts stream payload bytes: pubsub RPCs (with their varint
// length prefixes), identify, ping and multistream-select negotiation.
// It does not see yamux frame headers, Noise/TLS record overhead or the
// connection handshakes, which happen below the swarm stream.
//
// It is a plain atomic counter rather than metrics.NewBandwidthCounter:
// the latter's totals come from flow meters that a global sweeper updates
// once a second, so its TotalOut lags the traffic by up to a second, and
// its sweeper goroutine never exits.
type wireCounter struct {
	out, in atomic.Uint64
	byProto sync.Map // protocol.ID -> *atomic.Uint64 (bytes out)
}

var _ metrics.Reporter = (*wireCounter)(nil)

func (w *wireCounter) LogSentMessage(n int64) {
	if n > 0 {
		w.out.Add(uint64(n))
	}
}

func (w *wireCounter) LogRecvMessage(n int64) {
	if n > 0 {
		w.in.Add(uint64(n))
	}
}

func (w *wireCounter) LogSentMessageStream(n int64, proto protocol.ID, _ peer.ID) {
	if n <= 0 {
		return
	}
	c, ok := w.byProto.Load(proto)
	if !ok {
		c, _ = w.byProto.LoadOrStore(proto, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(uint64(n))
}

func (w *wireCounter) LogRecvMessageStream(int64, protocol.ID, peer.ID) {}

func (w *wireCounter) GetBandwidthForPeer(peer.ID) metrics.Stats { return metrics.Stats{} }

func (w *wireCounter) GetBandwidthForProtocol(p protocol.ID) metrics.Stats {
	var s metrics.Stats
	if c, ok := w.byProto.Load(p); ok {
		s.TotalOut = int64(c.(*atomic.Uint64).Load())
	}
	return s
}

func (w *wireCounter) GetBandwidthTotals() metrics.Stats {
	return metrics.Stats{TotalIn: int64(w.in.Load()), TotalOut: int64(w.out.Load())}
}

func (w *wireCounter) GetBandwidthByPeer() map[peer.ID]metrics.Stats { return nil }

func (w *wireCounter) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats {
	m := make(map[protocol.ID]metrics.Stats)
	w.byProto.Range(func(k, v any) bool {
		m[k.(protocol.ID)] = metrics.Stats{TotalOut: int64(v.(*atomic.Uint64).Load())}
		return true
	})
	return m
}

func (w *wireCounter) Reset()             {}
func (w *wireCounter) TrimIdle(time.Time) {}

// protoOut lists bytes out per protocol, largest first.
func (w *wireCounter) protoOut() []protoBytes {
	var r []protoBytes
	w.byProto.Range(func(k, v any) bool {
		r = append(r, protoBytes{string(k.(protocol.ID)), v.(*atomic.Uint64).Load()})
		return true
	})
	sort.Slice(r, func(i, j int) bool { return r[i].bytes > r[j].bytes })
	return r
}

type protoBytes struct {
	proto string
	bytes uint64
}

// rpcCounters are summed over all nodes' tracers.
type rpcCounters struct {
	rpcsSent      atomic.Uint64 // RPCs fully written to a stream
	copiesSent    atomic.Uint64 // messages (Publish entries) in those RPCs
	ctrlIHave     atomic.Uint64
	ctrlIWant     atomic.Uint64
	ctrlGraft     atomic.Uint64
	ctrlPrune     atomic.Uint64
	ctrlIDontWant atomic.Uint64
	rpcsDropped   atomic.Uint64 // outbound queue full
	copiesDropped atomic.Uint64
	duplicates    atomic.Uint64 // duplicate messages received and dropped
	rejected      atomic.Uint64
	undeliverable atomic.Uint64 // subscription buffer full, message not handed to the app
}

// nodeTracer is one node's pubsub.RawTracer: it counts what the node sends
// (SendRPCCompleted: the RPC was written to the stream, i.e. handed to the
// transport) and tracks the node's mesh for the topic.
type nodeTracer struct {
	c *rpcCounters

	mu     sync.Mutex
	mesh   map[peer.ID]struct{}
	change chan struct{} // closed and replaced on every mesh change
}

var _ pubsub.RawTracer = (*nodeTracer)(nil)

func newNodeTracer(c *rpcCounters) *nodeTracer {
	return &nodeTracer{c: c, mesh: make(map[peer.ID]struct{}), change: make(chan struct{})}
}

func (t *nodeTracer) meshSize() (int, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mesh), t.change
}

func (t *nodeTracer) meshChanged() {
	close(t.change)
	t.change = make(chan struct{})
}

func (t *nodeTracer) Graft(p peer.ID, _ string) {
	t.mu.Lock()
	t.mesh[p] = struct{}{}
	t.meshChanged()
	t.mu.Unlock()
}

func (t *nodeTracer) Prune(p peer.ID, _ string) {
	t.mu.Lock()
	delete(t.mesh, p)
	t.meshChanged()
	t.mu.Unlock()
}

func (t *nodeTracer) SendRPCCompleted(rpc *pubsub.RPC, _ peer.ID, _ time.Duration) {
	t.c.rpcsSent.Add(1)
	if n := len(rpc.GetPublish()); n > 0 {
		t.c.copiesSent.Add(uint64(n))
	}
	if ctl := rpc.GetControl(); ctl != nil {
		for _, ih := range ctl.GetIhave() {
			t.c.ctrlIHave.Add(uint64(len(ih.GetMessageIDs())))
		}
		for _, iw := range ctl.GetIwant() {
			t.c.ctrlIWant.Add(uint64(len(iw.GetMessageIDs())))
		}
		for _, idw := range ctl.GetIdontwant() {
			t.c.ctrlIDontWant.Add(uint64(len(idw.GetMessageIDs())))
		}
		t.c.ctrlGraft.Add(uint64(len(ctl.GetGraft())))
		t.c.ctrlPrune.Add(uint64(len(ctl.GetPrune())))
	}
}

func (t *nodeTracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	t.c.rpcsDropped.Add(1)
	t.c.copiesDropped.Add(uint64(len(rpc.GetPublish())))
}

func (t *nodeTracer) DuplicateMessage(*pubsub.Message)         { t.c.duplicates.Add(1) }
func (t *nodeTracer) RejectMessage(*pubsub.Message, string)    { t.c.rejected.Add(1) }
func (t *nodeTracer) UndeliverableMessage(*pubsub.Message)     { t.c.undeliverable.Add(1) }
func (t *nodeTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *nodeTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *nodeTracer) Join(string)                              {}
func (t *nodeTracer) Leave(string)                             {}
func (t *nodeTracer) ValidateMessage(*pubsub.Message)          {}
func (t *nodeTracer) DeliverMessage(*pubsub.Message)           {}
func (t *nodeTracer) ThrottlePeer(peer.ID)                     {}
func (t *nodeTracer) RecvRPC(*pubsub.RPC)                      {}
func (t *nodeTracer) SendRPC(*pubsub.RPC, peer.ID)             {}

// loopbackGater refuses every dial to, and every connection from, an
// address that is not on loopback, so nothing a libp2p service might try
// (identify-observed addresses, autonat, peer exchange) leaves 127.0.0.1.
type loopbackGater struct {
	refused atomic.Uint64
}

func (g *loopbackGater) ok(a ma.Multiaddr) bool {
	if a != nil && manet.IsIPLoopback(a) {
		return true
	}
	g.refused.Add(1)
	return false
}

func (g *loopbackGater) InterceptPeerDial(peer.ID) bool                   { return true }
func (g *loopbackGater) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool { return g.ok(a) }
func (g *loopbackGater) InterceptAccept(c network.ConnMultiaddrs) bool {
	return g.ok(c.RemoteMultiaddr())
}

func (g *loopbackGater) InterceptSecured(_ network.Direction, _ peer.ID, c network.ConnMultiaddrs) bool {
	return g.ok(c.RemoteMultiaddr())
}

func (g *loopbackGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
