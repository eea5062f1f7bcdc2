package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/core"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// This file is the streaming transport's runtime: the streams peers open
// to this node (ServeStream), the loop that reads any stream and hands
// what arrives to the core, the writer that sends what the core queued,
// and the timers. The protocol — what a frame means, what to answer, how
// frames become envelopes — is internal/core's (envelope.go, stream.go,
// plumtree.go); this file moves bytes and runs timers. The outbound links
// are in link.go. See docs/DESIGN.md §6a.

// streamCounters are the runtime counters of the streaming transport.
type streamCounters struct {
	copiesSent     atomic.Uint64 // messages written to streams
	copiesAcked    atomic.Uint64 // of those, covered by the neighbour's ACK
	envelopesSent  atomic.Uint64
	envelopesRecv  atomic.Uint64
	deferred       atomic.Uint64 // eager messages announced instead (slow neighbour)
	withdrawn      atomic.Uint64 // queued eager messages announced instead (the neighbour PRUNEd their source)
	framesDropped  atomic.Uint64 // frames dropped over a queue's hard bound, or with no stream to the peer
	refused        atomic.Uint64 // messages a peer cannot take (larger than its limit): never sent to it
	resent         atomic.Uint64 // messages re-sent after a stream broke before their ACK
	reconnects     atomic.Uint64 // outbound streams re-established
	unaryFallbacks atomic.Uint64 // neighbours that answered Unimplemented
	badFrames      atomic.Uint64 // stream frames that did not decode or validate
	publishWaits   atomic.Uint64 // publishes that waited for room (node saturated)
	congested      atomic.Uint64 // core steps after which the store was congested
	publishReject  atomic.Uint64 // publishes refused: still saturated at their deadline
}

// batchBytes bounds the frames of one Envelope (at least one frame always
// goes, and never more than the peer's limit). Large enough that a batch
// amortises a stream write over about 150 100-byte messages; small enough
// that the marshalled envelope (frames plus a few bytes of framing each,
// which the queue's estimate over-counts) fits gRPC's 32 KiB buffer tier:
// the next tier is 1 MiB, and gRPC zeroes a pooled buffer on every Get —
// with 64 KiB batches that clearing was 5% of a saturated cluster's CPU.
const batchBytes = 28 << 10

// push queues f on c (a stream to c.peer), counting what became of it.
func (n *GossipNode) push(c *conn, f core.Frame) {
	res, wake, ok := c.push(f)
	if !ok {
		n.orphanFrames(c.peer, []core.Frame{f})
		return
	}
	if !wake && (res == core.Pushed || res == core.Deferred || res == core.Merged) {
		signal(n.lazyKick) // a lazy frame: flushed within GraftTimeout/2
	}
	switch res {
	case core.Deferred:
		n.sc.deferred.Add(1)
	case core.Dropped:
		n.sc.framesDropped.Add(1)
		n.logger.Debug("stream queue full: frame dropped", "peer", c.peer, "kind", f.Kind)
	case core.Refused:
		n.refuse(c.peer, []core.Frame{f})
	}
}

// refuse counts the messages peer cannot take (larger than it accepts),
// tells the core not to keep them for it, and logs it once per peer.
func (n *GossipNode) refuse(peer string, frames []core.Frame) {
	size := 0
	for _, f := range frames {
		size = max(size, len(f.Wire))
	}
	n.sc.refused.Add(uint64(len(frames)))
	n.mu.Lock()
	n.core.Refused(peer, frames)
	n.mu.Unlock()
	n.linksMu.Lock()
	first := !n.refusedBy[peer]
	n.refusedBy[peer] = true
	n.linksMu.Unlock()
	if first {
		n.logger.Warn("neighbour refuses messages this large: they are not sent to it (counted in stream.refused; logged once per neighbour)",
			"peer", peer, "bytes", size)
	}
}

// connTo returns the stream on which to send to peer: the outbound link
// when it is a neighbour, otherwise a stream it opened to this node.
func (n *GossipNode) connTo(peer string) *conn {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	if l := n.links[peer]; l != nil {
		return l.c
	}
	for c := range n.inbound[peer] {
		return c
	}
	return nil
}

// dispatch queues the core's frames for their peers.
func (n *GossipNode) dispatch(outs []core.Out) {
	for _, o := range outs {
		if c := n.connTo(o.Peer); c != nil {
			n.push(c, o.Frame)
		} else {
			n.orphanFrames(o.Peer, []core.Frame{o.Frame})
		}
	}
}

// orphanFrames handles frames the core chose for a stream peer whose
// stream is gone by the time they are queued. When the peer fell back to
// the seed's unary RPC meanwhile (link.fallBack: its stream answered
// Unimplemented between the core's step and this dispatch), the messages
// are sent to it with PutMessageToClient, as fallBack sends what its
// stream held; otherwise (the neighbour was removed, or its stream is
// being replaced) they are dropped and counted, and repair covers them.
func (n *GossipNode) orphanFrames(peer string, frames []core.Frame) {
	n.mu.Lock()
	kind, ok := n.core.PeerKindOf(peer)
	var msgs []*pb.GossipMessage
	var addr string
	if ok && kind == core.KindUnary {
		msgs = n.core.UnaryFallback(peer, frames)
		for _, t := range n.core.Neighbors() {
			if t.ID == peer {
				addr = t.Addr
			}
		}
	}
	n.mu.Unlock()
	if addr == "" {
		n.sc.framesDropped.Add(uint64(len(frames)))
		return
	}
	target := []core.Target{{ID: peer, Addr: addr}}
	for _, m := range msgs {
		n.forward(n.ctx, target, m)
	}
}

// ServeStream serves Gossip.Stream (transport.Handler): a peer's stream of
// Envelopes to this node, until it ends or ctx (the stream's context) is
// done. The first envelope must say who the peer is (hello); this node
// answers with its own. Each envelope is handled in order; answers and
// the cumulative ACK go back on the same stream. Transports call it; the
// gRPC server does through Stream.
func (n *GossipNode) ServeStream(ctx context.Context, stream transport.Stream) error {
	n.closeMu.RLock()
	if n.closed {
		n.closeMu.RUnlock()
		return status.Error(codes.Unavailable, ErrClosed.Error())
	}
	n.wg.Add(1)
	n.closeMu.RUnlock()
	defer n.wg.Done()

	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello, err := core.CheckHello(n.core.Config(), n.Hash, first)
	if err != nil {
		n.sc.badFrames.Add(1)
		return status.Errorf(codes.InvalidArgument, "stream: %v", err)
	}
	if err := n.checkClaim(ctx, "stream hello", hello.GetId()); err != nil {
		return err
	}
	c := newConn(hello.GetId(), n.qtotal, n.cfg.StreamQueueBytes, false)
	n.linksMu.Lock()
	if n.inbound[c.peer] == nil {
		n.inbound[c.peer] = make(map[*conn]struct{})
	}
	n.inbound[c.peer][c] = struct{}{}
	n.linksMu.Unlock()
	defer func() {
		n.linksMu.Lock()
		delete(n.inbound[c.peer], c)
		if len(n.inbound[c.peer]) == 0 {
			delete(n.inbound, c.peer)
		}
		n.linksMu.Unlock()
		c.drain()
	}()
	if hello.GetLink() {
		// The peer chose this node as a neighbour: make the link two-way.
		n.mship.inbound(hello.GetId(), hello.GetAddress(), false)
	}

	var answer *pb.Envelope
	c.do(func(s *core.Stream) { answer = s.Hello(n.Hash, n.Endpoint, n.MaxRecvMsgSize(), false) })
	if err := stream.Send(answer); err != nil {
		return err
	}
	n.mu.Lock()
	d := n.core.ConnectDigest()
	n.mu.Unlock()
	n.push(c, d)
	// Read on another goroutine while this one writes answers and ACKs.
	recvDone := make(chan error, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		recvDone <- n.read(stream, c, first)
	}()
	for {
		select {
		case err := <-recvDone:
			if err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-n.ctx.Done():
			return status.Error(codes.Unavailable, "node shutting down")
		case <-ctx.Done():
			return ctx.Err()
		case <-c.wake:
		}
		if err := n.write(stream, c); err != nil {
			return err
		}
	}
}

// read handles the envelopes of stream c until it ends; first, if not
// nil, was already received.
func (n *GossipNode) read(stream transport.Stream, c *conn, first *pb.Envelope) error {
	env := first
	for {
		if env == nil {
			var err error
			if env, err = stream.Recv(); err != nil {
				return err
			}
		}
		if _, err := n.handleEnvelope(c, env); err != nil {
			return err
		}
		env = nil
	}
}

// write sends what c holds, one envelope per batch, until it is empty.
func (n *GossipNode) write(stream transport.Stream, c *conn) error {
	for {
		env, ok := c.next(time.Now(), n.busyUntil())
		if !ok {
			return nil
		}
		if err := stream.Send(env); err != nil {
			return err
		}
		n.sc.envelopesSent.Add(1)
		if k := core.Copies(env); k > 0 {
			n.sc.copiesSent.Add(uint64(k))
			n.mu.Lock()
			n.core.SentTo(c.peer, env)
			n.mu.Unlock()
		}
	}
}

// handleEnvelope feeds one envelope received on c to the core and carries
// out what it says; it returns the stream-level events for the caller
// (the link watches for the peer's hello). It returns an error only when
// the node is closing.
func (n *GossipNode) handleEnvelope(c *conn, env *pb.Envelope) (core.StreamEvents, error) {
	now := time.Now()
	n.sc.envelopesRecv.Add(1)
	in := core.Decode(env, c.peer) // outside the node's lock
	var ev core.StreamEvents
	c.do(func(s *core.Stream) { ev = s.Receive(now, env) })
	n.mu.Lock()
	res := n.core.Step(now, c.peer, in)
	if len(ev.Acked) > 0 {
		n.core.AckedBy(now, c.peer, ev.Acked, ev.RTT)
	}
	skips := n.afterStep(now)
	n.kickGrafts()
	n.mu.Unlock()
	if core.Copies(env) > 0 {
		signal(n.lazyKick) // the cumulative ACK owed
	}
	n.logSkips(skips)
	if !ev.BusyUntil.IsZero() {
		n.busy(ev.BusyUntil)
	}
	if len(ev.Acked) > 0 {
		n.sc.copiesAcked.Add(uint64(len(ev.Acked)))
	}
	for _, err := range res.Rejected {
		n.sc.badFrames.Add(1)
		n.logger.Warn("stream: rejected message", "peer", c.peer, "err", err)
	}
	if len(res.Withdraw) > 0 {
		n.withdraw(c.peer, res.Withdraw)
	}
	for _, f := range res.Reply {
		n.push(c, f)
	}
	for i, r := range res.Fresh {
		if r.Historic {
			n.markHistoric(r.Forward)
			n.dispatch(r.Out)
			if len(r.Targets) > 0 {
				n.forward(n.ctx, r.Targets, r.Forward)
			}
			continue
		}
		if err := n.enqueue(n.ctx, r.Forward, r.Payload, r.From, r.Hops, r.Via, now, nil); err != nil {
			// Closing: what was not delivered is forgotten, so a peer's
			// later copy counts as new.
			n.mu.Lock()
			for _, b := range res.Fresh[i:] {
				n.core.Forget(b.Forward)
			}
			n.mu.Unlock()
			return ev, err
		}
		n.dispatch(r.Out)
		if len(r.Targets) > 0 {
			n.forward(n.ctx, r.Targets, r.Forward)
		}
	}
	n.dispatch(res.Out)
	return ev, nil
}

// withdraw applies the peer's PRUNE of sources to every stream to it.
func (n *GossipNode) withdraw(peer string, sources []string) {
	n.linksMu.Lock()
	cs := make([]*conn, 0, 1+len(n.inbound[peer]))
	if l := n.links[peer]; l != nil {
		cs = append(cs, l.c)
	}
	for c := range n.inbound[peer] {
		cs = append(cs, c)
	}
	n.linksMu.Unlock()
	for _, c := range cs {
		k := 0
		c.do(func(s *core.Stream) {
			for _, src := range sources {
				k += s.Withdraw(src)
			}
		})
		n.sc.withdrawn.Add(uint64(k))
	}
}

// streamLoop runs the timers of the streaming protocol, each only when
// it has something to do (an idle node sleeps): the due grafts at the
// core's GraftDue, a flush of the lazy frames (announcements, prunes and
// ACKs wait at most GraftTimeout/2 when no message goes their way, and
// those of many messages share an envelope) when some are queued, and a
// digest to a random stream neighbour every SyncInterval (±10% so that
// nodes started together do not synchronise).
func (n *GossipNode) streamLoop() {
	defer n.wg.Done()
	jitter := func() time.Duration {
		return time.Duration(float64(n.cfg.SyncInterval) * (0.9 + 0.2*rand.Float64()))
	}
	sync := time.NewTimer(jitter())
	defer sync.Stop()
	graft := time.NewTimer(time.Hour)
	graft.Stop()
	defer graft.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	flushArmed := false
	arm := func(now time.Time) { // n.mu is held
		if due := n.core.GraftDue(); !due.IsZero() {
			graft.Reset(max(due.Sub(now), time.Millisecond))
			n.graftArmed.Store(due.UnixNano())
		} else {
			n.graftArmed.Store(0)
		}
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.graftKick:
			now := time.Now()
			n.mu.Lock()
			arm(now)
			n.mu.Unlock()
		case now := <-graft.C:
			n.mu.Lock()
			outs := n.core.Grafts(now)
			arm(now)
			n.mu.Unlock()
			n.dispatch(outs)
		case <-n.lazyKick:
			if !flushArmed {
				flushArmed = true
				flush.Reset(max(n.cfg.GraftTimeout/2, time.Millisecond))
			}
		case <-flush.C:
			flushArmed = false
			n.flushLazy()
		case <-sync.C:
			n.mu.Lock()
			peer, f, ok := n.core.SyncTarget()
			n.mu.Unlock()
			if ok {
				n.dispatch([]core.Out{{Peer: peer, Frame: f}})
			}
			sync.Reset(jitter())
		}
	}
}

// kickGrafts wakes streamLoop when the core's next graft is due before
// the timer it armed. n.mu is held.
func (n *GossipNode) kickGrafts() {
	due := n.core.GraftDue()
	if due.IsZero() {
		return
	}
	if armed := n.graftArmed.Load(); armed == 0 || due.UnixNano() < armed {
		signal(n.graftKick)
	}
}

// flushLazy wakes the writers of streams holding only lazy frames.
func (n *GossipNode) flushLazy() {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	for _, l := range n.links {
		l.c.flush()
	}
	for _, conns := range n.inbound {
		for c := range conns {
			c.flush()
		}
	}
}

// congestionLease is how long a node that finds its store congested
// (core.Node.Congested) makes publishers wait, its own and, through the
// busy_ms of its envelopes, everyone's; it renews it while it stays
// congested. Long enough to cross a few hops of envelopes (each waits at
// most a lazy flush, GraftTimeout/2), short enough that publishing
// resumes soon after the congestion ends.
const congestionLease = time.Second

// afterStep takes what a step of the core left for the runtime: the
// store's congestion and the give-ups to log. n.mu is held.
func (n *GossipNode) afterStep(now time.Time) []core.Skip {
	congested := n.core.Congested()
	if congested {
		n.busy(now.Add(congestionLease))
		n.sc.congested.Add(1)
	}
	if was := n.congested.Swap(congested); was && !congested {
		n.room.signal()
	}
	return n.core.TakeSkips()
}

// logSkips logs give-ups (a loss: messages this node will never deliver).
func (n *GossipNode) logSkips(skips []core.Skip) {
	for _, sk := range skips {
		n.logger.Warn("sequence numbers given up: these messages will not be delivered here (counted in stream.holes_skipped)",
			"seq_node", sk.Key.Node, "seq_epoch", sk.Key.Epoch, "first", sk.First, "last", sk.Last, "numbers", sk.Skipped, "why", sk.Reason)
	}
}

// busy extends the known congestion to until (never shortens it).
func (n *GossipNode) busy(until time.Time) {
	u := until.UnixNano()
	for {
		cur := n.busyNs.Load()
		if cur >= u || n.busyNs.CompareAndSwap(cur, u) {
			return
		}
	}
}

// busyUntil is when the congestion this node knows of ends (zero: none).
func (n *GossipNode) busyUntil() time.Time {
	if u := n.busyNs.Load(); u != 0 {
		return time.Unix(0, u)
	}
	return time.Time{}
}

// waitForRoom blocks a publish while the node is saturated — more than
// MaxQueuedBytes queued for streams, every neighbour's stream over
// StreamQueueBytes, its store full of messages a neighbour still lacks,
// or a congestion reported by another node — until there is room or ctx
// ends.
func (n *GossipNode) waitForRoom(ctx context.Context) error {
	waited := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		full, room := n.qtotal.saturated()
		congested := n.congested.Load()
		busy := time.Until(n.busyUntil())
		if !full && !congested && busy <= 0 {
			return nil
		}
		if !waited {
			waited = true
			n.sc.publishWaits.Add(1)
		}
		var later <-chan time.Time
		if busy > 0 && !full && !congested {
			if timer == nil {
				timer = time.NewTimer(busy)
			} else {
				timer.Reset(busy)
			}
			later = timer.C
		}
		select {
		case <-room:
		case <-n.room.wait():
		case <-later:
		case <-ctx.Done():
			n.sc.publishReject.Add(1)
			why := fmt.Sprintf("%d bytes queued for neighbours' streams (limit %d), or every neighbour's queue over %d bytes", n.qtotal.load(), n.cfg.MaxQueuedBytes, n.cfg.StreamQueueBytes)
			switch {
			case congested:
				why = fmt.Sprintf("its message store is over %d bytes with messages a neighbour still lacks", n.cfg.StoreBytes)
			case !full:
				why = "a node in the cluster reported that its store is full of messages a neighbour still lacks"
			}
			return fmt.Errorf("%w: %s: %w", ErrSaturated, why, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// linkSet is the node's streams: outbound links by neighbour id, and the
// streams peers opened to it.
type linkSet struct {
	linksMu   sync.Mutex
	links     map[string]*link
	inbound   map[string]map[*conn]struct{}
	refusedBy map[string]bool // peers that refused a message (logged once)
}
