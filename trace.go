package gossip

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Message traces. A traced message (Publish with Traced(), or sampled by
// Config.TraceSample) carries trace = true; every node that delivers it
// queues a receipt for the origin, and one goroutine per node sends the
// queued receipts, batched per origin, with MembershipService.Receipts.
// The origin keeps the receipts of its last maxTraces traced messages.
//
// Bounds: the queue holds receiptQueue receipts (a receipt that does not
// fit is dropped and counted, never waited for: tracing does not slow
// delivery down); a batch carries at most receiptBatch; an origin keeps at
// most maxTraceReceipts per message. Untraced messages cost one bool test.
const (
	maxTraces        = 256
	maxTraceReceipts = 10000
	receiptQueue     = 4096
	receiptBatch     = 512
	receiptTimeout   = 5 * time.Second
)

// PublishOption changes one Publish.
type PublishOption interface{ applyPublish(*publishOptions) }

type publishOptions struct{ trace bool }

type publishOptionFunc func(*publishOptions)

func (f publishOptionFunc) applyPublish(o *publishOptions) { f(o) }

// Traced traces the published message: every node that delivers it
// reports a receipt to this node; Trace shows them.
func Traced() PublishOption { return publishOptionFunc(func(o *publishOptions) { o.trace = true }) }

// Receipt says that a node delivered a traced message.
type Receipt struct {
	Node        string    // the node that delivered it
	From        string    // the neighbour its first copy came from ("" at the origin)
	Hops        uint32    // node-to-node hops of that copy
	DeliveredAt time.Time // the node's clock
	Repaired    bool      // the first copy came by repair (GRAFT or anti-entropy), not by the tree
}

// Trace is what the origin knows of one traced message.
type Trace struct {
	ID          string
	PublishedAt time.Time
	Receipts    []Receipt // the origin's own first, then in arrival order
	Dropped     uint64    // receipts beyond maxTraceReceipts
}

// traceState is the node's part of tracing: the origin's traces and the
// outgoing receipt queue.
type traceState struct {
	traceMu sync.Mutex
	traces  map[string]*Trace
	order   []string // ids, oldest first (eviction)

	receipts    chan outReceipt
	sentRcpt    atomic.Uint64 // receipts sent to origins
	droppedRcpt atomic.Uint64 // receipts not sent: queue full, origin unknown or unreachable
}

type outReceipt struct {
	origin string
	r      *pb.Receipt
}

// sample reports whether a publish is traced: asked for, or sampled.
func (n *GossipNode) sample(o publishOptions) bool {
	if o.trace {
		return true
	}
	return n.cfg.TraceSample > 0 && rand.Float64() < n.cfg.TraceSample
}

// startTrace records a message this node publishes traced.
func (n *GossipNode) startTrace(id string, at time.Time) {
	n.traceMu.Lock()
	defer n.traceMu.Unlock()
	if n.traces == nil {
		n.traces = make(map[string]*Trace)
	}
	if _, ok := n.traces[id]; ok {
		return
	}
	for len(n.order) >= maxTraces {
		delete(n.traces, n.order[0])
		n.order = n.order[1:]
	}
	n.traces[id] = &Trace{ID: id, PublishedAt: at}
	n.order = append(n.order, id)
}

// addReceipts records receipts at the origin; receipts of messages it
// keeps no trace of are ignored.
func (n *GossipNode) addReceipts(rs []*pb.Receipt) {
	n.traceMu.Lock()
	defer n.traceMu.Unlock()
	for _, r := range rs {
		t := n.traces[r.GetId()]
		if t == nil {
			continue
		}
		if len(t.Receipts) >= maxTraceReceipts {
			t.Dropped++
			continue
		}
		t.Receipts = append(t.Receipts, Receipt{Node: r.GetNode(), From: r.GetFrom(), Hops: r.GetHops(),
			DeliveredAt: r.GetDeliveredAt().AsTime(), Repaired: r.GetRepaired()})
	}
}

// receipt handles the delivery of a traced message (enqueue): recorded
// here when this node is its origin, else queued for the origin.
func (n *GossipNode) receipt(fwd *pb.GossipMessage, from string, hops uint32, via core.Via, now time.Time) {
	r := &pb.Receipt{Id: fwd.GetHash(), Node: n.Hash, Hops: hops, DeliveredAt: timestamp(now), Repaired: via == core.ViaRepair}
	if fwd.GetOrigin() == n.Hash {
		// The origin delivers first (before the message is forwarded):
		// the trace starts here, with the origin's own receipt.
		at := now
		if ns := fwd.GetCreatedUnixNano(); ns != 0 {
			at = time.Unix(0, ns)
		}
		n.startTrace(fwd.GetHash(), at)
		n.addReceipts([]*pb.Receipt{r})
		return
	}
	r.From = from
	select {
	case n.receipts <- outReceipt{origin: fwd.GetOrigin(), r: r}:
	default:
		n.droppedRcpt.Add(1)
	}
}

// receiptLoop sends queued receipts to their origins, batched; it ends
// with the node.
func (n *GossipNode) receiptLoop() {
	defer n.wg.Done()
	for {
		var first outReceipt
		select {
		case first = <-n.receipts:
		case <-n.ctx.Done():
			return
		}
		batches := map[string][]*pb.Receipt{first.origin: {first.r}}
	more:
		for range receiptBatch - 1 {
			select {
			case r := <-n.receipts:
				batches[r.origin] = append(batches[r.origin], r.r)
			default:
				break more
			}
		}
		for origin, rs := range batches {
			n.sendReceipts(origin, rs)
		}
	}
}

// errUnknownOrigin: the origin of a traced message is not a member this
// node knows an address for.
var errUnknownOrigin = errors.New("origin not a known member")

func (n *GossipNode) sendReceipts(origin string, rs []*pb.Receipt) {
	addr := n.addressOf(origin)
	err := errUnknownOrigin
	if addr != "" {
		var cli interface {
			Receipts(context.Context, *pb.ReceiptsRequest) (*pb.ReceiptsResponse, error)
		}
		if cli, err = n.transport.Membership(addr); err == nil {
			ctx, cancel := context.WithTimeout(n.ctx, receiptTimeout)
			_, err = cli.Receipts(ctx, &pb.ReceiptsRequest{From: n.Hash, Receipts: rs})
			cancel()
		}
	}
	if err != nil {
		n.droppedRcpt.Add(uint64(len(rs)))
		n.logger.Debug("trace receipts not delivered", "peer", origin, "receipts", len(rs), "err", err)
		return
	}
	n.sentRcpt.Add(uint64(len(rs)))
}

// addressOf is the address of member id: from membership, else from the
// neighbours; "" when unknown.
func (n *GossipNode) addressOf(id string) string {
	m := n.mship
	m.mu.Lock()
	if m.core != nil {
		if mb, ok := m.core.Member(id); ok {
			m.mu.Unlock()
			return mb.Addr
		}
	}
	m.mu.Unlock()
	return n.Neighbors()[id]
}

// Trace returns what this node, as the origin of the traced message id,
// has received: its receipts so far. ok is false when the node keeps no
// such trace (not traced, not published here, or evicted by newer ones).
func (n *GossipNode) Trace(id string) (t Trace, ok bool) {
	n.traceMu.Lock()
	defer n.traceMu.Unlock()
	tr := n.traces[id]
	if tr == nil {
		return Trace{}, false
	}
	t = *tr
	t.Receipts = append([]Receipt(nil), tr.Receipts...)
	return t, true
}

// Traces returns the most recent traces this node keeps, newest first, at
// most limit (0: all).
func (n *GossipNode) Traces(limit int) []Trace {
	n.traceMu.Lock()
	ids := append([]string(nil), n.order...)
	n.traceMu.Unlock()
	var out []Trace
	for i := len(ids) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if t, ok := n.Trace(ids[i]); ok {
			out = append(out, t)
		}
	}
	return out
}
