package gossip

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
	"github.com/grpc-gossip/gossip/memnet"
)

// This file is the harness of the default path's scenarios
// (scenario_default_test.go): real GossipNodes with their defaults —
// streams, Plumtree, SWIM membership joined through a seed — over memnet,
// inside a synctest bubble, so every wait is in virtual time.

// scenarioNodes is the size of the default path's scenarios: 200, or 40
// under the race detector (make test runs them both ways);
// -scenario.nodes=1000 (or more) runs them at scale (minutes of wall time).
var scenarioNodes = flag.Int("scenario.nodes", defaultScenarioNodes(), "nodes in the default-path scenarios (200; 40 with -race; 1000+ for the runs at scale)")

// scenarioChurn caps the churn scenario's size: its 20 joiners a minute
// each fetch the stored history from their neighbours, which makes it
// the slowest scenario (about 1 min of wall time at 100 nodes, 4 at 200).
// make scenarios runs it at full size.
var scenarioChurn = flag.Int("scenario.churn", 100, "largest size of the churn scenario (make scenarios: the full size)")

func defaultScenarioNodes() int {
	if raceEnabled {
		return 40
	}
	return 200
}

// dcluster is a cluster on the default path.
type dcluster struct {
	t    *testing.T
	net  *memnet.Network
	cfg  Config
	mcfg MembershipConfig

	tweak []func(i int, c *Config) // per-node changes to cfg
	opts  func(i int) []Option     // per-node options (nil: none)

	mu    sync.Mutex
	nodes []*GossipNode // by index; nil while down
	addrs []string      // current address of each
	life  []int         // restarts of each
	recs  []*drecorder  // deliveries of each node's current life
	seen  []*drecorder  // deliveries of every life (exactly-once across restarts is not promised)
	pubs  map[string]pubInfo
	base  map[int]Stats // counters at the start of the measured window (mark)

	events eventCount // membership events of every node
}

// eventCount counts deaths and suspicions every node reports.
type eventCount struct {
	mu              sync.Mutex
	died, suspected int
}

func (e *eventCount) handle(ev MemberEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev.Kind {
	case MemberDied:
		e.died++
	case MemberSuspected:
		e.suspected++
	}
}

func (e *eventCount) Load() (died, suspected int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.died, e.suspected
}

func (e *eventCount) Store(died, suspected int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.died, e.suspected = died, suspected
}

type pubInfo struct {
	at     time.Time
	origin int
}

// drecorder records each delivery's first arrival on one node.
type drecorder struct {
	mu    sync.Mutex
	count map[string]int
	at    map[string]time.Time
	hops  map[string]uint32
	via   map[string]string // the neighbour (or client) the first copy came from
}

func newDRecorder() *drecorder {
	return &drecorder{count: map[string]int{}, at: map[string]time.Time{}, hops: map[string]uint32{}, via: map[string]string{}}
}

func (r *drecorder) handle(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count[d.Hash]++
	if r.count[d.Hash] == 1 {
		r.at[d.Hash], r.hops[d.Hash], r.via[d.Hash] = d.ReceivedAt, d.Hops, d.From
	}
}

func (r *drecorder) has(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[id]
}

func daddr(i, life int) string {
	if life == 0 {
		return fmt.Sprintf("mem-%03d", i)
	}
	return fmt.Sprintf("mem-%03d-r%d", i, life)
}

func did(i int) string { return fmt.Sprintf("n%03d", i) }

// newDCluster starts n nodes on the default path: node 0 is the first node
// (MarkReady), the others Join through it one after another; it returns
// once every node knows every other as alive. tweak, if given, changes
// node i's Config. Call it inside a synctest bubble.
func newDCluster(t *testing.T, n int, cfg Config, mcfg MembershipConfig, seed uint64, tweak ...func(i int, c *Config)) *dcluster {
	t.Helper()
	return newDClusterWith(t, n, cfg, mcfg, seed, nil, tweak...)
}

// newDClusterWith is newDCluster with per-node options (opts(i) for node
// i, at every start).
func newDClusterWith(t *testing.T, n int, cfg Config, mcfg MembershipConfig, seed uint64, opts func(i int) []Option, tweak ...func(i int, c *Config)) *dcluster {
	t.Helper()
	c := &dcluster{t: t, net: memnet.New(seed), cfg: cfg, mcfg: mcfg, tweak: tweak, opts: opts,
		nodes: make([]*GossipNode, n), addrs: make([]string, n), life: make([]int, n),
		recs: make([]*drecorder, n), pubs: map[string]pubInfo{}}
	c.seen = make([]*drecorder, n)
	for i := range n {
		c.seen[i] = newDRecorder()
		c.start(i, seed)
	}
	c.nodes[0].MarkReady()
	for i := 1; i < n; i++ {
		c.join(i)
	}
	c.awaitMembers(5*time.Minute, n)
	return c
}

// start creates node i at its current address and registers it.
func (c *dcluster) start(i int, seed uint64) {
	c.t.Helper()
	addr := daddr(i, c.life[i])
	rec := newDRecorder()
	seen := c.seen[i]
	cfg := c.cfg
	for _, f := range c.tweak {
		f(i, &cfg)
	}
	cfg.Seed = seed*1000 + uint64(i)*7 + uint64(c.life[i]) + 1
	opts := []Option{WithConfig(cfg), WithMembership(c.mcfg), WithMemberEventHandler(c.events.handle),
		WithTransport(c.net.Transport(addr)),
		WithDeliveryHandler(func(d Delivery) { rec.handle(d); seen.handle(d) })}
	if c.opts != nil {
		opts = append(opts, c.opts(i)...)
	}
	n, err := New(did(i), addr, nil, nil, nil, nil, opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.net.Register(addr, n)
	c.mu.Lock()
	c.nodes[i], c.addrs[i], c.recs[i] = n, addr, rec
	c.mu.Unlock()
}

// join makes node i join through node 0 (or the first live node),
// retrying while seeds do not answer.
func (c *dcluster) join(i int) {
	c.t.Helper()
	var seeds []string
	for j, n := range c.nodes {
		if j != i && n != nil {
			seeds = append(seeds, c.addrs[j])
			if len(seeds) == 3 {
				break
			}
		}
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.nodes[i].Join(ctx, seeds)
		cancel()
		if err == nil {
			return
		}
		if attempt == 20 {
			c.t.Fatalf("node %d: join: %v", i, err)
		}
		time.Sleep(time.Second)
	}
}

func (c *dcluster) node(i int) *GossipNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// up returns the indexes of the nodes running now.
func (c *dcluster) up() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, n := range c.nodes {
		if n != nil {
			out = append(out, i)
		}
	}
	return out
}

// crash kills node i as kill -9 would: it vanishes from the network (its
// streams break, nothing more leaves it), then its goroutines stop.
func (c *dcluster) crash(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	c.net.Crash(c.addrs[i])
	n.Close()
}

// restart starts node i again, with the same id, empty, at a new address,
// and joins it through the live nodes.
func (c *dcluster) restart(i int, seed uint64) {
	c.t.Helper()
	c.life[i]++
	c.start(i, seed)
	c.join(i)
}

// leave stops node i gracefully: Leave, then Close.
func (c *dcluster) leave(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	n.Leave(ctx)
	cancel()
	c.net.Unregister(c.addrs[i])
	n.Close()
}

func (c *dcluster) close() {
	for _, i := range c.up() {
		c.nodes[i].Close()
	}
}

// publish publishes a message with id on node i, waiting up to a minute
// for room (backpressure); it reports whether the node acknowledged it.
func (c *dcluster) publish(i int, id string, payload []byte) bool {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if _, _, err := c.node(i).Publish(ctx, id, payload); err != nil {
		c.t.Logf("publish %s on node %d: %v", id, i, err)
		return false
	}
	c.mu.Lock()
	c.pubs[id] = pubInfo{at: start, origin: i}
	c.mu.Unlock()
	return true
}

// awaitMembers waits until every live node counts want members alive or
// suspect (itself included) and lists none of them suspect.
func (c *dcluster) awaitMembers(limit time.Duration, want int) {
	c.t.Helper()
	testutil.WaitFor(c.t, limit, "membership to converge", func() error {
		for _, i := range c.up() {
			if live := c.node(i).mship.numLive(); live != want {
				return fmt.Errorf("node %d counts %d live members, want %d", i, live, want)
			}
		}
		for _, i := range c.up() {
			for _, m := range c.node(i).Members() {
				if m.State == MemberSuspect {
					return fmt.Errorf("node %d suspects %s", i, m.ID)
				}
			}
		}
		return nil
	})
}

// awaitDelivered waits until every node in who delivered every id.
func (c *dcluster) awaitDelivered(limit time.Duration, who []int, ids []string) {
	c.t.Helper()
	testutil.WaitFor(c.t, limit, "delivery", func() error {
		missing := 0
		var first string
		for _, i := range who {
			for _, id := range ids {
				if c.recs[i].has(id) == 0 {
					if missing == 0 {
						first = fmt.Sprintf("node %d lacks %s", i, id)
					}
					missing++
				}
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d deliveries missing (%s)", missing, first)
		}
		return nil
	})
}

// dreport is what a scenario measures.
type dreport struct {
	Nodes, Messages  int
	Delivered, Want  int
	Duplicates       int     // deliveries beyond the first on one node (must be 0)
	CopiesPerDeliv   float64 // message copies received (first and redundant) per delivery
	RMR              float64 // relative message redundancy: copies/(N−1) − 1, per message, averaged
	MaxHop, MeanHop  float64 // hops of first copies
	P50All, MaxAll   time.Duration
	Repaired, Holes  uint64
	FalseDead        int // live members some live node lists dead
	HeapPerNodeBytes float64
}

// mark starts the measured window: report counts copies, repairs and
// give-ups from here (of the nodes up now; a node started later counts
// from zero).
func (c *dcluster) mark() {
	c.base = map[int]Stats{}
	for _, i := range c.up() {
		c.base[i] = c.node(i).Stats()
	}
}

// report checks exactly-once and measures delivery over who (the nodes
// up at the end) for ids (published on nodes that stayed up), counting
// copies and repairs since mark (or since the start).
func (c *dcluster) report(who []int, ids []string) dreport {
	r := dreport{Nodes: len(who), Messages: len(ids), Want: len(who) * len(ids)}
	var hops []float64
	var toAll []time.Duration
	var received, deliveries uint64
	for _, i := range who {
		st, b := c.node(i).Stats(), c.base[i]
		received += st.Received - b.Received
		deliveries += st.Delivered - b.Delivered
		r.Repaired += st.Stream.Repaired - b.Stream.Repaired
		r.Holes += st.Stream.HolesSkipped - b.Stream.HolesSkipped
		for _, m := range c.node(i).Members() {
			if m.State == MemberDead && slices.ContainsFunc(who, func(j int) bool { return did(j) == m.ID }) {
				r.FalseDead++
			}
		}
	}
	for _, id := range ids {
		var last time.Time
		all := true
		for _, i := range who {
			rec := c.recs[i]
			rec.mu.Lock()
			k, at, h := rec.count[id], rec.at[id], rec.hops[id]
			rec.mu.Unlock()
			if k == 0 {
				all = false
				continue
			}
			r.Delivered++
			r.Duplicates += k - 1
			hops = append(hops, float64(h))
			if at.After(last) {
				last = at
			}
		}
		if all {
			toAll = append(toAll, last.Sub(c.pubs[id].at))
		}
	}
	if deliveries > 0 {
		r.CopiesPerDeliv = float64(received) / float64(deliveries)
	}
	if len(who) > 1 && len(ids) > 0 {
		// Copies reaching nodes other than the origin, per message: the
		// origin's own receipt (the publish) is not a copy.
		copies := float64(received) - float64(len(ids))
		r.RMR = copies/float64(len(ids))/float64(len(who)-1) - 1
	}
	if len(hops) > 0 {
		sum := 0.0
		for _, h := range hops {
			sum += h
			r.MaxHop = math.Max(r.MaxHop, h)
		}
		r.MeanHop = sum / float64(len(hops))
	}
	if len(toAll) > 0 {
		sort.Slice(toAll, func(a, b int) bool { return toAll[a] < toAll[b] })
		r.P50All, r.MaxAll = toAll[len(toAll)/2], toAll[len(toAll)-1]
	}
	return r
}

func (r dreport) String() string {
	return fmt.Sprintf("N=%d msgs=%d delivered %d/%d (%.2f%%) duplicates %d · copies/delivery %.3f · RMR %.3f · hops mean %.2f max %.0f · to all p50 %v max %v · repaired %d holes %d · false dead %d",
		r.Nodes, r.Messages, r.Delivered, r.Want, 100*float64(r.Delivered)/math.Max(1, float64(r.Want)), r.Duplicates,
		r.CopiesPerDeliv, r.RMR, r.MeanHop, r.MaxHop, r.P50All.Round(time.Millisecond), r.MaxAll.Round(time.Millisecond),
		r.Repaired, r.Holes, r.FalseDead)
}

// check fails the test unless every id reached every node of the report
// exactly once.
func (r dreport) check(t *testing.T) {
	t.Helper()
	if r.Delivered != r.Want || r.Duplicates != 0 {
		t.Errorf("delivery: %s", r)
	}
}

// ids returns n message ids with a prefix.
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}
