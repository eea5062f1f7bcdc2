// Package gossipsub is the benchmark adapter for libp2p GossipSub
// (github.com/libp2p/go-libp2p-pubsub): N libp2p hosts in this process,
// on 127.0.0.1 only, all joined to one topic.
//
// What each profile sets is returned line by line by Describe; in short:
//
//   - ProfileDefault: libp2p's defaults (transports, TLS/Noise security,
//     yamux, connection and resource managers) and GossipSub's defaults
//     (parameters, StrictSign message signing), except for the loopback-only
//     listen address, relay off, and the message id function.
//   - ProfileEqualised: as default, but no transport security
//     (libp2p.NoSecurity, TCP only), no message signing (StrictNoSign), and
//     GossipSub D = ClusterConfig.Degree with Dlo/Dhi/Dout moved only as
//     far as GossipSub's parameter validation requires.
//
// Both profiles use an id-based message id (the payload's first 8 bytes,
// where the harness puts the message's big-endian uint64 id).
package gossipsub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

const (
	topicName  = "bench"
	listenAddr = "/ip4/127.0.0.1/tcp/0"

	// fullMeshMax: up to this many nodes every pair of hosts is connected.
	// A GossipSub node with peer discovery keeps up to its connection
	// manager's low water mark (160) connections, so at these sizes a
	// deployment approaches full connectivity anyway.
	fullMeshMax = 50
	// randomDials: above fullMeshMax, each node dials this many random
	// others (plus its ring successor, so the graph is connected); with
	// the dials it receives a node has ~2*randomDials connections, well
	// above any mesh degree GossipSub keeps (Dhi, default 12).
	randomDials = 24

	publishTimeout = 5 * time.Second
	connectWorkers = 32
	// msgOverhead is the room left above the payload in an RPC for the
	// message's topic, from, seqno, signature, key and protobuf framing.
	msgOverhead = 4 << 10
)

// Option adjusts the adapter; New() with no options is what the benchmark
// uses.
type Option func(*options)

type options struct {
	insecureDefault bool
	queues          int // 0: pubsub's defaults
}

// WithQueues sets to n each queue at which GossipSub drops messages
// instead of pushing back on the publisher: each peer's outbound queue
// (pubsub.WithPeerOutboundQueueSize), the validation queue
// (pubsub.WithValidateQueueSize) and each subscription's buffer
// (pubsub.WithBufferSize), all 32 by default. The adapter is then named
// "gossipsub-q<n>". This is the configuration that is fair to GossipSub
// under load: at its defaults it drops messages from a few hundred per
// second on, which lowers its maximum rate and flatters the systems it
// is compared with.
func WithQueues(n int) Option {
	return func(o *options) { o.queues = n }
}

// WithInsecureDefaultProfile makes ProfileDefault run libp2p without
// transport security (libp2p.NoSecurity, TCP only) instead of libp2p's
// default TLS/Noise, keeping every other default.
func WithInsecureDefaultProfile() Option {
	return func(o *options) { o.insecureDefault = true }
}

// Impl is the GossipSub adapter. Use New.
type Impl struct {
	opts options

	started atomic.Bool // Start was called
	ready   atomic.Bool // Start succeeded
	closed  atomic.Bool
	cfg     harness.ClusterConfig

	cancel   context.CancelFunc // pubsub routers and subscription readers
	hosts    []host.Host
	pss      []*pubsub.PubSub
	topics   []*pubsub.Topic
	subs     []*pubsub.Subscription
	tracers  []*nodeTracer
	readers  sync.WaitGroup
	wire     wireCounter
	rpc      rpcCounters
	gater    loopbackGater
	degree   []int // connections each node was given
	describe []string
	closeErr error
	closeMu  sync.Mutex
}

var _ harness.Impl = (*Impl)(nil)

// New returns an unstarted GossipSub adapter.
func New(opts ...Option) harness.Impl {
	g := &Impl{}
	for _, o := range opts {
		o(&g.opts)
	}
	return g
}

// Name implements harness.Impl: "gossipsub", or "gossipsub-q<n>" with
// WithQueues(n).
func (g *Impl) Name() string {
	if g.opts.queues > 0 {
		return fmt.Sprintf("gossipsub-q%d", g.opts.queues)
	}
	return "gossipsub"
}

// setup is what a profile sets.
type setup struct {
	secure     bool
	params     pubsub.GossipSubParams
	sign       pubsub.MessageSignaturePolicy
	maxMsgSize int // 0: pubsub's default
}

func profileSetup(cfg harness.ClusterConfig, o options) (setup, error) {
	s := setup{params: pubsub.DefaultGossipSubParams(), sign: pubsub.StrictSign, secure: true}
	switch cfg.Profile {
	case harness.ProfileDefault:
		s.secure = !o.insecureDefault
	case harness.ProfileEqualised:
		s.secure = false
		s.sign = pubsub.StrictNoSign
		p, err := equalisedParams(cfg.Degree)
		if err != nil {
			return s, err
		}
		s.params = p
	default:
		return s, fmt.Errorf("gossipsub: unknown profile %q", cfg.Profile)
	}
	if need := cfg.MaxPayload + msgOverhead; need > pubsub.DefaultMaxMessageSize {
		s.maxMsgSize = need
	}
	return s, nil
}

// equalisedParams sets D to the degree and changes Dlo, Dhi and Dout from
// their defaults (5, 12, 2) only as far as GossipSubParams.validate
// requires (Dlo <= D <= Dhi, Dout < Dlo, Dout < D/2); Dscore (4) is always
// valid because Dhi >= 12. Everything else stays default.
func equalisedParams(d int) (pubsub.GossipSubParams, error) {
	p := pubsub.DefaultGossipSubParams()
	if d < 2 {
		return p, fmt.Errorf("gossipsub: degree %d: GossipSub needs D >= 2 (Dout must be < D/2)", d)
	}
	p.D = d
	p.Dlo = min(p.Dlo, d)
	p.Dhi = max(p.Dhi, d)
	p.Dout = min(p.Dout, p.Dlo-1, d/2-1)
	p.Dscore = min(p.Dscore, p.Dhi)
	return p, nil
}

func msgID(m *pb.Message) string {
	d := m.GetData()
	if len(d) > 8 {
		d = d[:8]
	}
	return string(d)
}

// Start implements harness.Impl.
func (g *Impl) Start(ctx context.Context, cfg harness.ClusterConfig, deliver harness.Deliver) (err error) {
	if g.started.Swap(true) {
		return errors.New("gossipsub: already started")
	}
	if cfg.Nodes < 1 {
		return fmt.Errorf("gossipsub: %d nodes", cfg.Nodes)
	}
	s, err := profileSetup(cfg, g.opts)
	if err != nil {
		return err
	}
	g.cfg = cfg
	runCtx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	defer func() {
		if err != nil {
			_ = g.shutdown()
		}
	}()

	for i := range cfg.Nodes {
		hopts := []libp2p.Option{
			libp2p.ListenAddrStrings(listenAddr),
			libp2p.BandwidthReporter(&g.wire),
			libp2p.ConnectionGater(&g.gater),
			libp2p.DisableRelay(),
		}
		if !s.secure {
			hopts = append(hopts, libp2p.NoSecurity, libp2p.Transport(tcp.NewTCPTransport))
		}
		h, err := libp2p.New(hopts...)
		if err != nil {
			return fmt.Errorf("gossipsub: node %d: libp2p host: %w", i, err)
		}
		g.hosts = append(g.hosts, h)

		tr := newNodeTracer(&g.rpc)
		g.tracers = append(g.tracers, tr)
		popts := []pubsub.Option{
			pubsub.WithGossipSubParams(s.params),
			pubsub.WithMessageSignaturePolicy(s.sign),
			pubsub.WithMessageIdFn(msgID),
			pubsub.WithRawTracer(tr),
		}
		if s.maxMsgSize > 0 {
			popts = append(popts, pubsub.WithMaxMessageSize(s.maxMsgSize))
		}
		if q := g.opts.queues; q > 0 {
			popts = append(popts, pubsub.WithPeerOutboundQueueSize(q), pubsub.WithValidateQueueSize(q))
		}
		ps, err := pubsub.NewGossipSub(runCtx, h, popts...)
		if err != nil {
			return fmt.Errorf("gossipsub: node %d: pubsub: %w", i, err)
		}
		g.pss = append(g.pss, ps)
		topic, err := ps.Join(topicName)
		if err != nil {
			return fmt.Errorf("gossipsub: node %d: join: %w", i, err)
		}
		g.topics = append(g.topics, topic)
		var subOpts []pubsub.SubOpt
		if q := g.opts.queues; q > 0 {
			subOpts = append(subOpts, pubsub.WithBufferSize(q))
		}
		sub, err := topic.Subscribe(subOpts...)
		if err != nil {
			return fmt.Errorf("gossipsub: node %d: subscribe: %w", i, err)
		}
		g.subs = append(g.subs, sub)

		self := h.ID()
		g.readers.Add(1)
		go func() {
			defer g.readers.Done()
			for {
				msg, err := sub.Next(runCtx)
				if err != nil {
					return
				}
				if msg.ReceivedFrom == self {
					continue // the publisher's own copy
				}
				deliver(i, msg.Data)
			}
		}()
	}

	edges := g.topology(cfg)
	if err := g.connect(ctx, edges); err != nil {
		return err
	}
	if err := g.waitMesh(ctx, s.params.Dlo); err != nil {
		return err
	}
	g.describe = g.describeLines(cfg, s, len(edges))
	g.ready.Store(true)
	return nil
}

type edge struct{ from, to int }

// topology returns the connections to make: every pair up to fullMeshMax
// nodes, else a ring plus randomDials random dials per node (seeded).
func (g *Impl) topology(cfg harness.ClusterConfig) []edge {
	n := cfg.Nodes
	var edges []edge
	seen := make(map[[2]int]bool)
	add := func(a, b int) {
		if a == b {
			return
		}
		k := [2]int{min(a, b), max(a, b)}
		if seen[k] {
			return
		}
		seen[k] = true
		edges = append(edges, edge{a, b})
	}
	if n <= fullMeshMax {
		for i := range n {
			for j := i + 1; j < n; j++ {
				add(i, j)
			}
		}
	} else {
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
		for i := range n {
			add(i, (i+1)%n)
			for _, j := range rng.Perm(n)[:randomDials+1] {
				add(i, j) // at most one of the randomDials+1 is i itself
			}
		}
	}
	g.degree = make([]int, n)
	for _, e := range edges {
		g.degree[e.from]++
		g.degree[e.to]++
	}
	return edges
}

func (g *Impl) connect(ctx context.Context, edges []edge) error {
	jobs := make(chan edge)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(connectWorkers, len(edges)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				to := g.hosts[e.to]
				ai := peer.AddrInfo{ID: to.ID(), Addrs: to.Network().ListenAddresses()}
				if err := g.hosts[e.from].Connect(ctx, ai); err != nil {
					select {
					case errc <- fmt.Errorf("gossipsub: connect node %d to %d: %w", e.from, e.to, err):
					default:
					}
				}
			}
		}()
	}
	for _, e := range edges {
		jobs <- e
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// waitMesh waits until every node sees each of its connected peers in the
// topic and has at least min(Dlo, its connections) peers in its mesh. The
// mesh is built by heartbeats (first after 100 ms, then every second).
func (g *Impl) waitMesh(ctx context.Context, dlo int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := range g.hosts {
		for {
			mesh, changed := g.tracers[i].meshSize()
			if mesh >= min(dlo, g.degree[i]) && len(g.topics[i].ListPeers()) >= g.degree[i] {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("gossipsub: node %d: mesh %d, topic peers %d of %d: %w",
					i, mesh, len(g.topics[i].ListPeers()), g.degree[i], ctx.Err())
			case <-changed:
			case <-tick.C: // topic peers have no change notification here
			}
		}
	}
	return nil
}

// Publish implements harness.Impl. The payload is copied: pubsub keeps the
// message in its cache for IWANT replies after Publish returns.
func (g *Impl) Publish(node int, payload []byte) error {
	if !g.ready.Load() || g.closed.Load() {
		return errors.New("gossipsub: not running")
	}
	if node < 0 || node >= len(g.topics) {
		return fmt.Errorf("gossipsub: no node %d", node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	return g.topics[node].Publish(ctx, append([]byte(nil), payload...))
}

// Wire implements harness.Impl: msgs is the number of message copies
// (Publish entries) in RPCs written to a stream, bytes is the libp2p
// bandwidth reporter's total out, over all hosts.
func (g *Impl) Wire() (msgs, bytes uint64) {
	return g.rpc.copiesSent.Load(), g.wire.out.Load()
}

// Stats returns diagnostic counters (summed over nodes unless the name
// says otherwise); not part of harness.Impl.
func (g *Impl) Stats() map[string]uint64 {
	m := map[string]uint64{
		"rpcs_sent":           g.rpc.rpcsSent.Load(),
		"copies_sent":         g.rpc.copiesSent.Load(),
		"ihave_ids_sent":      g.rpc.ctrlIHave.Load(),
		"iwant_ids_sent":      g.rpc.ctrlIWant.Load(),
		"idontwant_ids_sent":  g.rpc.ctrlIDontWant.Load(),
		"graft_sent":          g.rpc.ctrlGraft.Load(),
		"prune_sent":          g.rpc.ctrlPrune.Load(),
		"rpcs_dropped":        g.rpc.rpcsDropped.Load(),
		"copies_dropped":      g.rpc.copiesDropped.Load(),
		"duplicates_received": g.rpc.duplicates.Load(),
		"rejected":            g.rpc.rejected.Load(),
		"undeliverable":       g.rpc.undeliverable.Load(),
		"gater_refused":       g.gater.refused.Load(),
		"bytes_out":           g.wire.out.Load(),
		"bytes_in":            g.wire.in.Load(),
	}
	if len(g.tracers) > 0 {
		var lo, hi, sum uint64 = 1 << 62, 0, 0
		for _, t := range g.tracers {
			n, _ := t.meshSize()
			lo, hi, sum = min(lo, uint64(n)), max(hi, uint64(n)), sum+uint64(n)
		}
		m["mesh_min"], m["mesh_max"], m["mesh_sum"] = lo, hi, sum
	}
	for _, p := range g.wire.protoOut() {
		m["bytes_out "+p.proto] = p.bytes
	}
	return m
}

// Describe implements harness.Impl.
func (g *Impl) Describe() []string {
	if !g.ready.Load() {
		return []string{"gossipsub: not started"}
	}
	return append([]string(nil), g.describe...)
}

// The versions bench/go.mod requires (a test checks), reported when the
// binary has no module build info (test binaries have none).
var pinned = map[string]string{
	"github.com/libp2p/go-libp2p-pubsub": "v0.19.0",
	"github.com/libp2p/go-libp2p":        "v0.51.0",
}

func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return pinned[path]
}

func (g *Impl) describeLines(cfg harness.ClusterConfig, s setup, nEdges int) []string {
	p := s.params
	var l []string
	add := func(f string, a ...any) { l = append(l, fmt.Sprintf(f, a...)) }

	add("system: github.com/libp2p/go-libp2p-pubsub %s GossipSub (pubsub.NewGossipSub) on github.com/libp2p/go-libp2p %s",
		moduleVersion("github.com/libp2p/go-libp2p-pubsub"), moduleVersion("github.com/libp2p/go-libp2p"))
	add("profile: %s", cfg.Profile)
	add("hosts: %d libp2p hosts (libp2p.New) in one process, random Ed25519 identities (default)", cfg.Nodes)
	add("listen: only %s (libp2p.ListenAddrStrings); peers are dialled only at those addresses", listenAddr)
	sec, mux, trans := g.observedConn()
	if s.secure {
		add("transports: libp2p defaults loaded (TCP, QUIC, WebSocket, WebTransport, WebRTC-direct), but only the TCP loopback address is listened on and dialled, so every connection is %s", trans)
		add("transport security: libp2p default (TLS 1.3 and Noise offered, in that order); negotiated: %s", sec)
	} else {
		add("transports: TCP only (libp2p.Transport(tcp.NewTCPTransport)); QUIC/WebTransport/WebRTC have built-in encryption, so they are not loaded; connections are %s", trans)
		add("transport security: none (libp2p.NoSecurity); negotiated: %s (peer-id exchange only, no encryption)", sec)
	}
	add("muxer: yamux (libp2p default); negotiated: %s", mux)
	add("off: relay (libp2p.DisableRelay); not enabled (off by default): NAT port mapping/UPnP, hole punching, AutoRelay, AutoNAT service, AutoNATv2; not used: mDNS, DHT, bootstrap peers")
	add("loopback guard: a connection gater refuses any dial to or connection from a non-loopback address")
	add("connection manager, resource manager, identify, ping, Prometheus metrics: libp2p defaults (connmgr low/high water 160/192)")
	switch s.sign {
	case pubsub.StrictSign:
		add("message signing: StrictSign (default): every message signed with the publisher's Ed25519 key, signatures required and verified; from+seqno included")
	case pubsub.StrictNoSign:
		add("message signing: none (pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign)): unsigned, signed messages rejected; from+seqno still included (default author)")
	}
	add("message id: first 8 bytes of the payload, the harness's message id (pubsub.WithMessageIdFn), instead of the default from+seqno")
	buf := "default subscription buffer 32"
	if q := g.opts.queues; q > 0 {
		buf = fmt.Sprintf("subscription buffer %d (pubsub.WithBufferSize; default 32)", q)
	}
	add("topic: one, %q; every node joins and subscribes (%s); the publisher's own copy is not delivered", topicName, buf)
	dflt := pubsub.DefaultGossipSubParams()
	tag := func(v, d any) string {
		if v == d {
			return fmt.Sprint(v)
		}
		return fmt.Sprintf("%v (default %v)", v, d)
	}
	add("GossipSub mesh: D=%s Dlo=%s Dhi=%s Dscore=%s Dout=%s",
		tag(p.D, dflt.D), tag(p.Dlo, dflt.Dlo), tag(p.Dhi, dflt.Dhi), tag(p.Dscore, dflt.Dscore), tag(p.Dout, dflt.Dout))
	add("GossipSub gossip: Dlazy=%d GossipFactor=%g HistoryLength=%d HistoryGossip=%d GossipRetransmission=%d (defaults)",
		p.Dlazy, p.GossipFactor, p.HistoryLength, p.HistoryGossip, p.GossipRetransmission)
	add("GossipSub heartbeat: interval %v, initial delay %v (defaults)", p.HeartbeatInterval, p.HeartbeatInitialDelay)
	queues := "peer outbound queue 32, validation queue 32 (defaults)"
	if q := g.opts.queues; q > 0 {
		queues = fmt.Sprintf("peer outbound queue %d (pubsub.WithPeerOutboundQueueSize; default 32), validation queue %d (pubsub.WithValidateQueueSize; default 32)", q, q)
	}
	add("GossipSub other: flood publish off, peer exchange off, peer scoring off, IDONTWANT for messages >= %d B, seen-messages TTL 2m (defaults); %s",
		p.IDontWantMessageThreshold, queues)
	if s.maxMsgSize > 0 {
		add("max message size: %d B (pubsub.WithMaxMessageSize; default %d) for MaxPayload %d", s.maxMsgSize, pubsub.DefaultMaxMessageSize, cfg.MaxPayload)
	} else {
		add("max message size: %d B (default)", pubsub.DefaultMaxMessageSize)
	}
	if cfg.Nodes <= fullMeshMax {
		add("connectivity: every pair of hosts connected (%d connections), as a GossipSub deployment with discovery approaches below its connection manager's 160; no DHT or discovery", nEdges)
	} else {
		add("connectivity: each node dials its ring successor and %d random others (seed %d), %d connections; no DHT or discovery", randomDials, cfg.Seed, nEdges)
	}
	add("start: waits until every node sees all its connected peers in the topic and has >= min(Dlo, its connections) mesh peers")
	add("Wire msgs: message copies (Publish entries) in RPCs written to a stream (pubsub raw tracer SendRPCCompleted); control-only RPCs (IHAVE/IWANT/IDONTWANT/GRAFT/PRUNE) are in bytes, not msgs")
	add("Wire bytes: libp2p bandwidth reporter (libp2p.BandwidthReporter), bytes written to streams by all hosts, all protocols (pubsub, identify, ping, multistream-select); excludes yamux frame headers, TLS/Noise record overhead and handshakes, TCP/IP headers")
	return l
}

// observedConn reports the security, muxer and transport of one live
// connection (all are alike).
func (g *Impl) observedConn() (sec, mux, trans string) {
	for _, h := range g.hosts {
		for _, c := range h.Network().Conns() {
			st := c.ConnState()
			return string(st.Security), string(st.StreamMultiplexer), st.Transport
		}
	}
	return "(no connection)", "(no connection)", "(no connection)"
}

// Close implements harness.Impl.
func (g *Impl) Close() error {
	if !g.started.Load() {
		return nil
	}
	g.closeMu.Lock()
	defer g.closeMu.Unlock()
	if g.closed.Swap(true) {
		return g.closeErr
	}
	g.closeErr = g.shutdown()
	return g.closeErr
}

func (g *Impl) shutdown() error {
	g.closed.Store(true)
	for _, s := range g.subs {
		s.Cancel()
	}
	for _, t := range g.topics {
		_ = t.Close() // best effort; cancelling the pubsub context below ends it anyway
	}
	if g.cancel != nil {
		g.cancel()
	}
	g.readers.Wait()
	var errs []error
	for i, h := range g.hosts {
		if err := h.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gossipsub: close node %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
