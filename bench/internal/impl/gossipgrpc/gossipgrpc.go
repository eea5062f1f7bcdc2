// Package gossipgrpc runs this project's gossip library under the
// benchmark harness: N GossipNodes in one process, each with its own gRPC
// server on 127.0.0.1 and its own GossipClientFactory. It serves two
// systems that differ only in the transport between the nodes (see the
// packages gossipunary and gossipstream, which name them):
//
//   - Unary: Config.DisableStreaming, the seed's transport: one unary
//     PutMessageToClient RPC per forwarded copy, pushed to Fanout
//     neighbours, with an ACK per copy and retries.
//   - Stream: the library's default: one long-lived bidirectional
//     Gossip.Stream per neighbour, batched envelopes, cumulative ACKs,
//     per-source Plumtree (eager push, IHAVE/GRAFT/PRUNE) and
//     anti-entropy. Fanout applies only to neighbours without stream
//     support (none here).
//
// Profiles (the same for both transports):
//
//   - default: what gossipd does. Config{Fanout: FanoutAll}, other fields at
//     their defaults; node 1 is marked ready and nodes 2..N Join through
//     node 1, one after another. Membership (SWIM) then picks each node's
//     neighbours: ceil(ln N) + FanoutExtra random members, two-way. Start
//     waits until every node knows every member and the neighbour sets
//     have stopped changing (see settle), and Describe reports the overlay
//     it got (degrees, one-way links, nodes no one pushes to).
//   - equalised: Config{Fanout: Degree}, and every node has every other
//     node as a neighbour (AddNeighbor, full mesh).
//
// Both profiles: plaintext gRPC (no TLS is the library's default), payloads
// of up to max(1 MiB, MaxPayload).
//
// Wire counting. bytes: every byte read and written on the nodes' client
// TCP connections (a counting net.Conn from each factory's dialer). These
// are the only connections that carry gossip: a node dials each neighbour
// it sends to; ACKs, and on streams the neighbour's answers, come back on
// the same connection. msgs: Unary counts PutMessageToClient requests
// sent (a client-side grpc stats.Handler, retries included); Stream counts
// message copies put on the wire, Σ over nodes of Stats().Stream.CopiesSent
// (messages written to neighbours' streams) + Stats().Sent (unary
// attempts), read when the harness asks — or, when larger, the copies the
// nodes received from each other (Σ Stats().Received less the node's own
// publishes, which are received locally). Every copy received was sent, so
// the second is a lower bound of the first; it is larger when CopiesSent
// misses copies (it counts only the node's outbound streams, not answers
// written on streams that neighbours opened to it: GRAFT and anti-entropy
// repairs; see docs/PERFORMANCE.md).
package gossipgrpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

// Transport selects how the nodes send to each other.
type Transport int

const (
	// Unary is the seed's PutMessageToClient, one RPC per copy
	// (Config.DisableStreaming).
	Unary Transport = iota
	// Stream is Gossip.Stream with Plumtree, the library's default.
	Stream
)

// publishTimeout bounds one Publish: the time a saturated node may make
// the publisher wait (for a forward slot, MaxInflightSends, or room in the
// streams' queues, MaxQueuedBytes, or its own delivery queue), like the
// deadline of a NodeService.Publish RPC.
const publishTimeout = 2 * time.Second

// Impl is the adapter; New chooses its name and transport.
type Impl struct {
	name      string
	transport Transport
	secure    bool   // mutual TLS and signed messages (NewSecure)
	pkiDir    string // the run's CA and certificates (secure); removed by Close

	mu        sync.Mutex
	nodes     []*gossip.GossipNode
	factories []*gossip.GossipClientFactory
	describe  []string
	closed    bool

	// hook, if set before Start, also sees every delivery (tests).
	hook func(node int, d gossip.Delivery)

	wire      wire
	published atomic.Uint64 // Publish calls that succeeded
	wireMu    sync.Mutex
	wireMsgs  uint64 // the last msgs Wire returned (Stream), so it never goes down

	// durable, when set, gives every node a data dir (WithDataDir) under
	// dataRoot, a temporary directory removed by Close.
	durable  *gossip.SyncPolicy
	dataRoot string
}

// New returns an Impl called name that uses transport t; Start launches
// its nodes.
func New(name string, t Transport) *Impl { return &Impl{name: name, transport: t} }

// NewSecure is New with security on, as gossipd --tls-cert … --sign
// runs: mutual TLS between the nodes (a CA made for the run, a node
// certificate each) and signed messages (every message signed by its
// origin and verified by every node).
func NewSecure(name string, t Transport) *Impl {
	return &Impl{name: name, transport: t, secure: true}
}

// NewDurable is New with every node's state and delivery log on disk
// (gossip.WithDataDir in a temporary directory) under the sync policy.
func NewDurable(name string, t Transport, sync gossip.SyncPolicy) *Impl {
	return &Impl{name: name, transport: t, durable: &sync}
}

// Name implements harness.Impl.
func (m *Impl) Name() string { return m.name }

// Nodes returns the running nodes (for tests).
func (m *Impl) Nodes() []*gossip.GossipNode {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*gossip.GossipNode(nil), m.nodes...)
}

// Start implements harness.Impl.
func (m *Impl) Start(ctx context.Context, cfg harness.ClusterConfig, deliver harness.Deliver) error {
	if cfg.Nodes < 2 {
		return fmt.Errorf("need at least 2 nodes, got %d", cfg.Nodes)
	}
	conf := gossip.Config{DisableStreaming: m.transport == Unary}
	switch cfg.Profile {
	case harness.ProfileDefault:
		conf.Fanout = gossip.FanoutAll
	case harness.ProfileEqualised:
		if cfg.Degree < 1 {
			return fmt.Errorf("equalised profile needs a degree ≥ 1, got %d", cfg.Degree)
		}
		conf.Fanout = cfg.Degree
	default:
		return fmt.Errorf("unknown profile %q", cfg.Profile)
	}
	if cfg.MaxPayload > gossip.DefaultConfig().MaxPayloadBytes {
		conf.MaxPayloadBytes = cfg.MaxPayload
	}
	if cfg.Seed != 0 {
		conf.Seed = uint64(cfg.Seed)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes != nil || m.closed {
		return fmt.Errorf("%s: Start called twice", m.name)
	}
	var pki *benchPKI
	if m.secure {
		var err error
		if pki, err = newBenchPKI(); err != nil {
			return err
		}
		m.pkiDir = pki.dir
	}
	for i := range cfg.Nodes {
		id := fmt.Sprintf("node-%02d", i+1)
		opts := []grpc.DialOption{grpc.WithContextDialer(m.wire.dial)}
		if m.transport == Unary {
			opts = append(opts, grpc.WithStatsHandler(&m.wire))
		}
		var nodeOpts []gossip.Option
		if pki != nil {
			sec, err := pki.security(id)
			if err != nil {
				return err
			}
			opts = append(opts, sec.DialOption())
			nodeOpts = append(nodeOpts, gossip.WithSecurity(sec))
		}
		f := gossip.NewGossipClientFactory(opts...)
		c := conf
		if c.Seed != 0 {
			c.Seed += uint64(i) // distinct per node, reproducible
		}
		nopts := append(nodeOpts, gossip.WithConfig(c),
			gossip.WithDeliveryHandler(func(d gossip.Delivery) {
				if m.hook != nil {
					m.hook(i, d)
				}
				deliver(i, []byte(d.Payload))
			}),
		)
		if m.durable != nil {
			if m.dataRoot == "" {
				dir, err := os.MkdirTemp("", "gossip-bench-")
				if err != nil {
					f.Release()
					return err
				}
				m.dataRoot = dir
			}
			dir := filepath.Join(m.dataRoot, id)
			if err := os.Mkdir(dir, 0o700); err != nil {
				f.Release()
				return err
			}
			nopts = append(nopts, gossip.WithDataDir(dir, *m.durable))
		}
		n, err := gossip.New(id, "127.0.0.1:0", nil, nil, nil, f, nopts...)
		if err != nil {
			f.Release()
			return err
		}
		m.nodes = append(m.nodes, n)
		m.factories = append(m.factories, f)
		if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
			return err
		}
	}

	switch cfg.Profile {
	case harness.ProfileDefault:
		m.nodes[0].MarkReady()
		seed := []string{m.nodes[0].ListenAddr()}
		for _, n := range m.nodes[1:] {
			if _, err := n.Join(ctx, seed); err != nil {
				return fmt.Errorf("%s: join: %w", n.Hash, err)
			}
		}
		if err := m.settle(ctx); err != nil {
			return err
		}
	case harness.ProfileEqualised:
		for _, n := range m.nodes {
			for _, o := range m.nodes {
				if o != n {
					if err := n.AddNeighbor(o.Hash, o.ListenAddr()); err != nil {
						return err
					}
				}
			}
			n.MarkReady()
		}
	}
	m.describe = m.describeRun(cfg)
	return nil
}

// settle waits until membership has settled after the joins: every node
// knows all N members and no neighbour set has changed for 300 ms
// (membership picks the neighbours and may still be adding links when the
// last Join returns). It gives up quietly after 10 s (the overlay is then
// described as it is) and fails only when ctx ends.
func (m *Impl) settle(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	prev, stable := "", 0
	for stable < 3 && time.Now().Before(deadline) {
		var b strings.Builder
		known := true
		for _, n := range m.nodes {
			known = known && len(n.Members()) == len(m.nodes)
			ids := slices.Sorted(maps.Keys(n.Neighbors()))
			fmt.Fprintf(&b, "%s:%s;", n.Hash, strings.Join(ids, ","))
		}
		if cur := b.String(); known && cur == prev {
			stable++
		} else {
			prev, stable = cur, 0
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// overlay returns the number of one-way links (n has o as a neighbour but
// not o n) and of nodes that are no other node's neighbour (they can send
// but nobody pushes to them).
func overlay(nodes []*gossip.GossipNode) (oneWay, unreached int) {
	nbs := make(map[string]map[string]string, len(nodes))
	for _, n := range nodes {
		nbs[n.Hash] = n.Neighbors()
	}
	for _, n := range nodes {
		targeted := false
		for id := range nbs[n.Hash] {
			if _, back := nbs[id][n.Hash]; !back {
				oneWay++
			}
		}
		for _, o := range nodes {
			if _, ok := nbs[o.Hash][n.Hash]; ok {
				targeted = true
			}
		}
		if !targeted {
			unreached++
		}
	}
	return oneWay, unreached
}

// describeRun lists what the run set, one line per setting.
func (m *Impl) describeRun(cfg harness.ClusterConfig) []string {
	nodes := m.nodes
	c := nodes[0].Config()
	links, maxDeg := 0, 0
	for _, n := range nodes {
		d := len(n.Neighbors())
		links += d
		maxDeg = max(maxDeg, d)
	}
	stream := m.transport == Stream
	var out []string
	switch cfg.Profile {
	case harness.ProfileDefault:
		if stream {
			out = append(out, "as gossipd: Config{Fanout: FanoutAll}; the fanout applies only to unary peers (none here): Plumtree pushes each source's messages eagerly to every stream neighbour but the sender and PRUNEs duplicate paths down to a per-source tree (IHAVE to the rest)")
		} else {
			out = append(out, "as gossipd: Config{Fanout: FanoutAll} (flood to every neighbour but the sender and the origin)")
		}
		oneWay, unreached := overlay(nodes)
		out = append(out, fmt.Sprintf("overlay: nodes 2..N Join through node 1; membership (SWIM) picks each node's neighbours, ceil(ln N) + %d random members, two-way; after it settled: degree mean %.1f, max %d, %d one-way links, %d nodes no one pushes to",
			gossip.DefaultLANMembershipConfig().FanoutExtra, float64(links)/float64(len(nodes)), maxDeg, oneWay, unreached))
	case harness.ProfileEqualised:
		if stream {
			out = append(out, fmt.Sprintf("Config{Fanout: %d} as in gossip-unary, but the fanout (the profile's degree) applies only to unary peers (none here): streams are not bounded by it; Plumtree starts with eager push to all %d neighbours and PRUNEs the mesh down to a per-source spanning tree (IHAVE to the rest)", c.Fanout, len(nodes)-1))
		} else {
			out = append(out, fmt.Sprintf("Config{Fanout: %d}: %d neighbours chosen uniformly at random per fresh message (never the sender or origin)", c.Fanout, c.Fanout))
		}
		out = append(out, fmt.Sprintf("overlay: full mesh (every node AddNeighbor every other: degree %d)", len(nodes)-1))
	}
	if m.secure {
		out = append(out, "security (as gossipd --tls-cert/--tls-key/--tls-ca --sign): mutual TLS 1.3 on every connection (a CA made for the run, a SPIFFE node certificate per node, ECDSA P-256), and signed messages: each signed by its origin (certificate attached) and verified by every node before delivery or forwarding; the transport lines below say plaintext for the unsecured systems only")
	}
	if stream {
		out = append(out,
			"transport: Gossip.Stream (the default), one long-lived bidirectional stream per (node, neighbour) on the node's client connection, batched envelopes, cumulative ACKs, plaintext (no TLS)",
			fmt.Sprintf("streaming Config at defaults: GraftTimeout %v, SyncInterval %v (anti-entropy), StoreBytes %d, StreamQueueBytes %d, MaxQueuedBytes %d",
				c.GraftTimeout, c.SyncInterval, c.StoreBytes, c.StreamQueueBytes, c.MaxQueuedBytes),
		)
	} else {
		out = append(out, "transport: seed unary PutMessageToClient (Config.DisableStreaming), one gRPC connection per (sender, neighbour), plaintext (no TLS)")
	}
	if m.durable != nil {
		out = append(out, fmt.Sprintf("persistence: every node keeps its state and delivery log in gossip.db (bbolt) in its own data dir under %s (WithDataDir), --sync %v; a publish is acknowledged once committed there", os.TempDir(), *m.durable))
	} else {
		out = append(out, "persistence: none (the delivery log in memory)")
	}
	out = append(out,
		fmt.Sprintf("other Config at defaults: AckTimeout %v, MaxAttempts %d, RetryBackoff %v, DeliveryBuffer %d, MaxInflightSends %d, MaxPayloadBytes %d",
			c.AckTimeout, c.MaxAttempts, c.RetryBackoff, c.DeliveryBuffer, c.MaxInflightSends, c.MaxPayloadBytes),
		"publish: node.Publish (node-assigned 128-bit id) with a 2 s deadline; the publisher's own delivery is ignored",
	)
	if stream {
		out = append(out, "wire msgs: message copies put on the wire, Σ Stats().Stream.CopiesSent + Stats().Sent (unary attempts) over the nodes, or the copies the nodes received from each other (Σ Stats().Received − own publishes) when that is larger (CopiesSent misses repairs written on inbound streams); wire bytes: all bytes both ways on the nodes' client TCP connections (the streams, with the neighbours' ACKs and answers, HTTP/2 framing, pings)")
	} else {
		out = append(out, "wire msgs: PutMessageToClient requests sent, retries included (client stats.Handler); wire bytes: all bytes both ways on the nodes' client TCP connections (requests, ACKs, HTTP/2 framing, headers, pings)")
	}
	return out
}

// Publish implements harness.Impl.
func (m *Impl) Publish(node int, payload []byte) error {
	m.mu.Lock()
	if m.closed || node < 0 || node >= len(m.nodes) {
		m.mu.Unlock()
		return fmt.Errorf("%s: no node %d", m.name, node)
	}
	n := m.nodes[node]
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	_, _, err := n.Publish(ctx, "", payload)
	if err == nil {
		m.published.Add(1)
	}
	return err
}

// Wire implements harness.Impl.
func (m *Impl) Wire() (msgs, bytes uint64) {
	if m.transport == Unary {
		return m.wire.msgs.Load(), m.wire.bytes.Load()
	}
	m.wireMu.Lock()
	defer m.wireMu.Unlock()
	own := m.published.Load() // before the receipts: each is already in Received
	var received uint64
	for _, n := range m.Nodes() {
		s := n.Stats()
		msgs += s.Stream.CopiesSent + s.Sent
		received += s.Received
	}
	msgs = max(msgs, received-min(own, received))
	m.wireMsgs = max(m.wireMsgs, msgs) // a publish between the reads must not make it go down
	return m.wireMsgs, m.wire.bytes.Load()
}

// Describe implements harness.Impl.
func (m *Impl) Describe() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.describe...)
}

// Close implements harness.Impl: it closes every node concurrently, then
// releases their client factories.
func (m *Impl) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	nodes, factories := m.nodes, m.factories
	m.mu.Unlock()

	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.Close() })
	}
	wg.Wait()
	for _, f := range factories {
		errs = append(errs, f.Release())
	}
	if m.pkiDir != "" {
		errs = append(errs, os.RemoveAll(m.pkiDir))
	}
	if m.dataRoot != "" {
		errs = append(errs, os.RemoveAll(m.dataRoot))
	}
	return errors.Join(errs...)
}

// wire counts what the nodes put on the wire; see the package comment.
type wire struct {
	msgs  atomic.Uint64
	bytes atomic.Uint64
}

func (w *wire) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, w: w}, nil
}

// TagRPC implements stats.Handler.
func (*wire) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC implements stats.Handler: it counts request messages sent by
// clients. Only PutMessageToClient is called on these connections while
// the harness measures (Join only during Start). Installed for Unary only.
func (w *wire) HandleRPC(_ context.Context, s stats.RPCStats) {
	if p, ok := s.(*stats.OutPayload); ok && p.IsClient() {
		w.msgs.Add(1)
	}
}

// TagConn implements stats.Handler.
func (*wire) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn implements stats.Handler.
func (*wire) HandleConn(context.Context, stats.ConnStats) {}

type countingConn struct {
	net.Conn
	w *wire
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.w.bytes.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.w.bytes.Add(uint64(n))
	return n, err
}
