// Package memnet is an in-memory network for gossip nodes: tests and
// simulations use it to run hundreds of nodes in one process, with loss,
// delay, jitter, partitions and crashes, instead of gRPC over sockets. It
// implements the whole transport seam (package transport): the seed's
// unary PutMessageToClient, the per-neighbour Gossip.Stream, and the
// MembershipService RPCs, so a node on memnet runs exactly the code it
// runs on gRPC — streams, Plumtree and SWIM included.
//
// A Network connects addresses. A node receives by registering its
// transport.Handler (a *gossip.GossipNode is one) at its address, and
// sends through the Endpoint that Transport returns for that address (an
// Endpoint is a transport.Transport):
//
//	net := memnet.New(1)
//	a := gossip.NewGossipNode("a", "a", nil, nil, nil, nil, gossip.WithTransport(net.Transport("a")))
//	net.Register("a", a)
//
// # Wire emulation
//
// Unary calls (Send and the membership RPCs) behave like unary gRPC calls.
// The request and the response are copied with proto.Clone, so sender and
// receiver never share memory. The receiver's handler runs synchronously
// in the sender's goroutine, with the sender's ctx (as gRPC propagates the
// deadline). Failures look like gRPC failures, as status errors (see
// Endpoint.Send for the codes): an unregistered address refuses at once
// (Unavailable); a lost message or a partition is silent, so the caller
// waits until its ctx ends (DeadlineExceeded), as it would wait for an
// answer that never comes. A request larger than the receiver's limit
// (transport.Limits) is refused with ResourceExhausted, as gRPC's
// MaxRecvMsgSize does.
//
// Streams (Endpoint.OpenStream) are ordered and reliable in each direction
// while they last, like HTTP/2 streams over TCP. Each envelope is cloned
// and takes the one-way delay (base plus jitter), but never overtakes the
// one sent before it on the same stream; different streams are
// independent, so envelopes on two streams may arrive in either order.
// Send blocks while more than the stream window (SetStreamWindow) is in
// flight towards a receiver that does not read: flow control. A stream
// breaks — both ends get Unavailable, as after a connection reset — when
// an envelope is lost (the loss probability applies to each envelope), a
// partition separates its ends, or either end crashes (Crash). An
// envelope over the receiver's limit breaks it with ResourceExhausted, as
// gRPC does. Opening a stream to an unregistered address fails at once;
// across a partition it fails after the connect timeout
// (SetConnectTimeout). The handler's ServeStream runs on a goroutine
// memnet starts for the stream; it ends when ServeStream returns.
//
// # Determinism
//
// memnet waits only on timers, channels and ctx.Done(), so it runs under
// testing/synctest, where delays pass in virtual time and a call that
// waits for its deadline takes no real time. Loss and jitter come from one
// PCG generator seeded by New. Each unary call and each envelope draws
// from it a fixed number of times, so a run whose sends happen in the same
// order (one sender, or a synctest bubble whose goroutines interleave the
// same way) sees the same losses and delays.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gossipv1 "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// Handler is the receiving side of a node (transport.Handler); a
// *gossip.GossipNode is one. Its methods are called concurrently with
// clones of what was sent, which they may keep and modify; they may send
// onward through the network. Their errors are returned to the caller
// unchanged, so they should be gRPC status errors (or implement
// GRPCStatus).
type Handler = transport.Handler

// Network is an in-memory network. Its zero value is not usable: create it
// with New. It is safe for concurrent use, and its configuration may change
// while traffic flows; a change applies to calls and envelopes sent
// afterwards (and to the return path of calls in flight, and to open
// streams, for partitions).
type Network struct {
	mu       sync.Mutex // guards everything below; never held while waiting or calling a Handler
	rng      *rand.Rand
	handlers map[string]Handler
	loss     float64
	linkLoss map[link]float64
	base     time.Duration
	jitter   time.Duration
	groups   map[string]int // partition group of each listed address; nil when healed
	connect  time.Duration  // how long opening a stream across a partition takes to fail
	window   int            // stream flow-control window, bytes per direction

	streams   map[*pipe]struct{}     // open streams
	endpoints map[string][]*Endpoint // by sending address, for Crash

	stats counters
}

type link struct{ from, to string }

// implicitGroup is the partition group of addresses not listed in any group.
const implicitGroup = -1

// Defaults of the stream settings.
const (
	DefaultConnectTimeout = time.Second
	DefaultStreamWindow   = 4 << 20
)

// New returns an empty network with no loss, no delay and no partition.
// seed drives the loss and jitter draws.
func New(seed uint64) *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		handlers:  make(map[string]Handler),
		linkLoss:  make(map[link]float64),
		connect:   DefaultConnectTimeout,
		window:    DefaultStreamWindow,
		streams:   make(map[*pipe]struct{}),
		endpoints: make(map[string][]*Endpoint),
	}
}

// Register attaches h as the receiver at addr, replacing any receiver
// already there. Calls already past the lookup still reach the old one,
// and its open streams stay open. It panics if h is nil.
func (n *Network) Register(addr string, h Handler) {
	if h == nil {
		panic("memnet: Register: nil Handler")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[addr] = h
}

// Unregister detaches the receiver at addr, as if its node stopped
// listening: calls and stream opens to addr then fail at once with
// codes.Unavailable, like a refused connection. Open streams are left
// alone (see Crash). Unregistering an unknown address does nothing.
func (n *Network) Unregister(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.handlers, addr)
}

// Crash makes the node at addr vanish as a process that is killed does:
// its receiver is unregistered, every stream to or from addr breaks
// (both ends get Unavailable), and the Endpoints created for addr are
// closed, so nothing it still tries to send leaves. The node's own
// goroutines are the caller's to stop (gossip.GossipNode.Close). A new
// node may Register at addr afterwards (a restart).
func (n *Network) Crash(addr string) {
	n.mu.Lock()
	delete(n.handlers, addr)
	var cut []*pipe
	for p := range n.streams {
		if p.from == addr || p.to == addr {
			cut = append(cut, p)
		}
	}
	eps := n.endpoints[addr]
	delete(n.endpoints, addr)
	n.mu.Unlock()
	for _, p := range cut {
		p.fail(status.Errorf(codes.Unavailable, "memnet: %s -> %s: connection reset: %s crashed", p.from, p.to, addr))
	}
	for _, e := range eps {
		e.Close()
	}
}

// Transport returns a new sending side for the node at from (its address:
// partitions and per-link loss are keyed by it). Each call returns a fresh
// open Endpoint, so a node restarted at the same address gets a working
// one even though the old node closed its own.
func (n *Network) Transport(from string) *Endpoint {
	e := &Endpoint{net: n, from: from, done: make(chan struct{})}
	n.mu.Lock()
	n.endpoints[from] = append(n.endpoints[from], e)
	n.mu.Unlock()
	return e
}

// SetLoss sets the probability in [0, 1] that a unary call or a stream
// envelope is lost, on links without a SetLinkLoss override. Half of the
// losses of a call drop the request (the receiver never sees it), half
// drop the response (the receiver handles the request, the caller never
// learns it). A lost envelope breaks its stream. It panics if p is
// outside [0, 1].
func (n *Network) SetLoss(p float64) {
	checkProb("SetLoss", p)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loss = p
}

// SetLinkLoss sets the loss probability of the directed link from → to,
// overriding SetLoss for it. A negative p removes the override. It panics
// if p is NaN or above 1.
func (n *Network) SetLinkLoss(from, to string, p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p < 0 {
		delete(n.linkLoss, link{from, to})
		return
	}
	checkProb("SetLinkLoss", p)
	n.linkLoss[link{from, to}] = p
}

func checkProb(fn string, p float64) {
	if math.IsNaN(p) || p < 0 || p > 1 {
		panic(fmt.Sprintf("memnet: %s: probability %v outside [0, 1]", fn, p))
	}
}

// SetDelay sets the one-way delay: each request (and each stream envelope)
// waits base plus a jitter drawn uniformly from [0, jitter) before it
// arrives, and a response again (with its own jitter), so a round trip
// takes about 2×base. Zero (the default) means no wait at all. It panics
// if either is negative.
func (n *Network) SetDelay(base, jitter time.Duration) {
	if base < 0 || jitter < 0 {
		panic(fmt.Sprintf("memnet: SetDelay: negative delay (base %v, jitter %v)", base, jitter))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.base, n.jitter = base, jitter
}

// SetConnectTimeout sets how long opening a stream to an address across a
// partition waits before it fails with Unavailable (the caller's ctx may
// end it sooner). Default DefaultConnectTimeout. It panics if d ≤ 0.
func (n *Network) SetConnectTimeout(d time.Duration) {
	if d <= 0 {
		panic(fmt.Sprintf("memnet: SetConnectTimeout: %v is not positive", d))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.connect = d
}

// SetStreamWindow sets the flow-control window of streams opened
// afterwards: the bytes (of envelope encodings) that may be in flight in
// one direction before Send blocks until the receiver reads. An envelope
// larger than the window is still sent when nothing else is in flight.
// Default DefaultStreamWindow. It panics if bytes ≤ 0.
func (n *Network) SetStreamWindow(bytes int) {
	if bytes <= 0 {
		panic(fmt.Sprintf("memnet: SetStreamWindow: %d is not positive", bytes))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.window = bytes
}

// Partition splits the network: addresses in different groups cannot reach
// each other. A call between them waits until its ctx ends, a stream
// between them breaks (both ends get Unavailable) and a new one fails
// after the connect timeout. Addresses not listed in any group form one
// more group together. It replaces any earlier partition; Partition() with
// no groups heals. It panics if an address is listed twice.
func (n *Network) Partition(groups ...[]string) {
	var m map[string]int
	if len(groups) > 0 {
		m = make(map[string]int)
		for i, g := range groups {
			for _, addr := range g {
				if _, dup := m[addr]; dup {
					panic(fmt.Sprintf("memnet: Partition: address %q listed twice", addr))
				}
				m[addr] = i
			}
		}
	}
	n.mu.Lock()
	n.groups = m
	var cut []*pipe
	for p := range n.streams {
		if !n.reachable(p.from, p.to) {
			cut = append(cut, p)
		}
	}
	n.mu.Unlock()
	for _, p := range cut {
		p.fail(status.Errorf(codes.Unavailable, "memnet: %s -> %s: connection lost: partitioned", p.from, p.to))
	}
}

// Heal removes the partition: every address reaches every other again.
// Calls already waiting on a partition still wait for their ctx.
func (n *Network) Heal() { n.Partition() }

// reachable reports whether from and to are in the same partition group.
// n.mu is held.
func (n *Network) reachable(from, to string) bool {
	if n.groups == nil {
		return true
	}
	gf, ok := n.groups[from]
	if !ok {
		gf = implicitGroup
	}
	gt, ok := n.groups[to]
	if !ok {
		gt = implicitGroup
	}
	return gf == gt
}

// lossOf is the loss probability of from → to. n.mu is held.
func (n *Network) lossOf(from, to string) float64 {
	if p, ok := n.linkLoss[link{from, to}]; ok {
		return p
	}
	return n.loss
}

// delay draws one one-way delay. n.mu is held.
func (n *Network) delay() time.Duration {
	d := n.base
	if n.jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	return d
}

// Stats counts traffic since New. Every unary call (Send or a membership
// RPC) ends in exactly one of Acked, Rejected, LostRequests, LostAcks,
// Refused, Partitioned and Expired, so once none is in flight they add up
// to Sent.
type Stats struct {
	Sent         uint64 // unary calls
	Delivered    uint64 // handler calls
	Acked        uint64 // calls that returned a response
	Rejected     uint64 // calls that returned the handler's error
	LostRequests uint64 // calls lost before the handler
	LostAcks     uint64 // calls whose handler ran but whose response was lost
	Refused      uint64 // calls to an unregistered address, from a closed Endpoint, or over the receiver's limit
	Partitioned  uint64 // calls cut by a partition, on the way there or back
	Expired      uint64 // calls whose ctx ended (or Endpoint closed) first: already at the call, or during a delay
	Bytes        uint64 // sum of proto.Size of the delivered requests

	StreamsOpened  uint64 // streams opened (the handler's ServeStream started)
	StreamsRefused uint64 // stream opens that failed: no node, closed Endpoint, partition, ctx
	StreamsBroken  uint64 // streams broken by a lost envelope, a partition, a crash or an oversized envelope
	Envelopes      uint64 // envelopes delivered on streams
	EnvelopesLost  uint64 // envelopes lost (each broke its stream)
	StreamBytes    uint64 // sum of proto.Size of the envelopes sent
}

type counters struct {
	sent, delivered, acked, rejected, lostReq, lostAck, refused, partitioned, expired, bytes atomic.Uint64
	opened, openRefused, broken, envelopes, envLost, streamBytes                             atomic.Uint64
}

// Stats returns a snapshot of the counters. Counters are read one by one,
// so a snapshot taken while traffic flows may be off by what is in flight.
func (n *Network) Stats() Stats {
	c := &n.stats
	return Stats{
		Sent:           c.sent.Load(),
		Delivered:      c.delivered.Load(),
		Acked:          c.acked.Load(),
		Rejected:       c.rejected.Load(),
		LostRequests:   c.lostReq.Load(),
		LostAcks:       c.lostAck.Load(),
		Refused:        c.refused.Load(),
		Partitioned:    c.partitioned.Load(),
		Expired:        c.expired.Load(),
		Bytes:          c.bytes.Load(),
		StreamsOpened:  c.opened.Load(),
		StreamsRefused: c.openRefused.Load(),
		StreamsBroken:  c.broken.Load(),
		Envelopes:      c.envelopes.Load(),
		EnvelopesLost:  c.envLost.Load(),
		StreamBytes:    c.streamBytes.Load(),
	}
}

// Endpoint is the sending side of one node: a transport.Transport. It is
// safe for concurrent use.
type Endpoint struct {
	net       *Network
	from      string
	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

var _ transport.Transport = (*Endpoint)(nil)

// Addr returns the address the endpoint sends from.
func (e *Endpoint) Addr() string { return e.from }

// Close closes the endpoint: later calls fail with codes.Unavailable, and
// calls waiting on a delay, a loss or a partition return at once with the
// same error (a handler already running finishes); its open streams
// break. The first call returns nil, later ones net.ErrClosed (as
// gossip.GossipNode.Close does).
func (e *Endpoint) Close() error {
	err := net.ErrClosed
	e.closeOnce.Do(func() {
		close(e.done)
		err = nil
		n := e.net
		n.mu.Lock()
		var cut []*pipe
		for p := range n.streams {
			if p.ep == e {
				cut = append(cut, p)
			}
		}
		n.mu.Unlock()
		for _, p := range cut {
			p.fail(e.errClosed())
		}
	})
	return err
}

// plan is what one unary call drew from the network, under its mutex.
type plan struct {
	h           Handler
	reachable   bool
	lostReq     bool
	lostAck     bool
	there, back time.Duration
}

func (n *Network) plan(from, to string) plan {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := plan{h: n.handlers[to], reachable: n.reachable(from, to)}
	loss := n.lossOf(from, to)
	// The draws depend on the configuration only, never on the outcome, so
	// one call consumes the generator the same way whatever happens to it.
	u := n.rng.Float64()
	p.lostReq = u < loss/2
	p.lostAck = !p.lostReq && u < loss
	p.there = n.base
	p.back = n.base
	if n.jitter > 0 {
		p.there += time.Duration(n.rng.Int64N(int64(n.jitter)))
		p.back += time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	return p
}

// Send delivers msg to the handler registered at to and returns a clone of
// its ACK, emulating a unary gRPC call. In order:
//
//   - a closed Endpoint fails with codes.Unavailable (the error also
//     matches net.ErrClosed with errors.Is);
//   - a ctx already done fails with its status (see below);
//   - an unregistered address fails at once with codes.Unavailable;
//   - across a partition, or when the request is lost, Send waits until ctx
//     ends;
//   - it waits the one-way delay; a request over the receiver's limit
//     (transport.Limits) then fails with codes.ResourceExhausted;
//   - it calls the handler with a clone of msg, synchronously, with ctx;
//   - the response (ACK or the handler's error) is lost with the ACK-loss
//     share of the loss probability, or cut if a partition now separates
//     the two; Send then waits until ctx ends;
//   - it waits the one-way delay again and returns a clone of the ACK, or
//     the handler's error unchanged.
//
// When ctx ends while Send waits, the error is a status error like gRPC's:
// codes.DeadlineExceeded for a deadline, codes.Canceled for a
// cancellation. A send that is lost with a ctx that never ends waits
// forever, so give every send a deadline. A handler that returns neither
// an ACK nor an error yields codes.Internal, as gRPC does for a nil reply.
// msg is not modified nor retained. The membership RPCs (Membership)
// behave the same way.
func (e *Endpoint) Send(ctx context.Context, to string, msg *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
	return call(e, ctx, to, msg, func(h Handler, ctx context.Context, req *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
		return h.PutMessageToClient(ctx, req)
	})
}

// call is one unary call to the handler at to: see Send.
func call[Req, Resp proto.Message](e *Endpoint, ctx context.Context, to string, req Req, handle func(Handler, context.Context, Req) (Resp, error)) (Resp, error) {
	var zero Resp
	n, c := e.net, &e.net.stats
	c.sent.Add(1)
	select {
	case <-e.done:
		c.refused.Add(1)
		return zero, e.errClosed()
	default:
	}
	if err := ctx.Err(); err != nil {
		c.expired.Add(1)
		return zero, ctxStatus(err, e.from, to, "before sending")
	}
	p := n.plan(e.from, to)
	switch {
	case p.h == nil:
		c.refused.Add(1)
		return zero, status.Errorf(codes.Unavailable, "memnet: %s -> %s: connection refused: no node at %q", e.from, to, to)
	case !p.reachable:
		c.partitioned.Add(1)
		return zero, e.block(ctx, to, "partitioned")
	case p.lostReq:
		c.lostReq.Add(1)
		return zero, e.block(ctx, to, "request lost")
	}
	if err := e.wait(ctx, to, p.there); err != nil {
		c.expired.Add(1)
		return zero, err
	}
	size := proto.Size(req)
	if err := tooLarge(p.h, size); err != nil {
		c.refused.Add(1)
		return zero, err
	}
	in := proto.Clone(req).(Req)
	c.delivered.Add(1)
	c.bytes.Add(uint64(size))
	resp, herr := handle(p.h, ctx, in)

	n.mu.Lock()
	cut := !n.reachable(e.from, to)
	n.mu.Unlock()
	switch {
	case cut:
		c.partitioned.Add(1)
		return zero, e.block(ctx, to, "partitioned before the response")
	case p.lostAck:
		c.lostAck.Add(1)
		return zero, e.block(ctx, to, "response lost")
	}
	if err := e.wait(ctx, to, p.back); err != nil {
		c.expired.Add(1)
		return zero, err
	}
	if herr != nil {
		c.rejected.Add(1)
		return zero, herr
	}
	if !resp.ProtoReflect().IsValid() {
		c.rejected.Add(1)
		return zero, status.Errorf(codes.Internal, "memnet: %s -> %s: handler returned a nil response and no error", e.from, to)
	}
	c.acked.Add(1)
	return proto.Clone(resp).(Resp), nil
}

// tooLarge is gRPC's refusal of a message over the receiver's
// MaxRecvMsgSize, in gRPC's words.
func tooLarge(h Handler, size int) error {
	if l, ok := h.(transport.Limits); ok && size > l.MaxRecvMsgSize() {
		return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", size, l.MaxRecvMsgSize())
	}
	return nil
}

// Membership returns a client of the MembershipService registered at to.
// Each of its calls behaves as Send does.
func (e *Endpoint) Membership(to string) (transport.Membership, error) {
	return membershipClient{e: e, to: to}, nil
}

type membershipClient struct {
	e  *Endpoint
	to string
}

func (m membershipClient) Join(ctx context.Context, r *gossipv1.JoinRequest) (*gossipv1.JoinResponse, error) {
	return call(m.e, ctx, m.to, r, func(h Handler, ctx context.Context, r *gossipv1.JoinRequest) (*gossipv1.JoinResponse, error) {
		return h.Membership().Join(ctx, r)
	})
}

func (m membershipClient) Ping(ctx context.Context, r *gossipv1.PingRequest) (*gossipv1.PingResponse, error) {
	return call(m.e, ctx, m.to, r, func(h Handler, ctx context.Context, r *gossipv1.PingRequest) (*gossipv1.PingResponse, error) {
		return h.Membership().Ping(ctx, r)
	})
}

func (m membershipClient) PingReq(ctx context.Context, r *gossipv1.PingReqRequest) (*gossipv1.PingReqResponse, error) {
	return call(m.e, ctx, m.to, r, func(h Handler, ctx context.Context, r *gossipv1.PingReqRequest) (*gossipv1.PingReqResponse, error) {
		return h.Membership().PingReq(ctx, r)
	})
}

func (m membershipClient) PushUpdates(ctx context.Context, r *gossipv1.PushUpdatesRequest) (*gossipv1.PushUpdatesResponse, error) {
	return call(m.e, ctx, m.to, r, func(h Handler, ctx context.Context, r *gossipv1.PushUpdatesRequest) (*gossipv1.PushUpdatesResponse, error) {
		return h.Membership().PushUpdates(ctx, r)
	})
}

func (m membershipClient) Sync(ctx context.Context, r *gossipv1.SyncRequest) (*gossipv1.SyncResponse, error) {
	return call(m.e, ctx, m.to, r, func(h Handler, ctx context.Context, r *gossipv1.SyncRequest) (*gossipv1.SyncResponse, error) {
		return h.Membership().Sync(ctx, r)
	})
}

func (m membershipClient) Link(ctx context.Context, r *gossipv1.LinkRequest) (*gossipv1.LinkResponse, error) {
	return call(m.e, ctx, m.to, r, func(h Handler, ctx context.Context, r *gossipv1.LinkRequest) (*gossipv1.LinkResponse, error) {
		return h.Membership().Link(ctx, r)
	})
}

func (m membershipClient) Receipts(ctx context.Context, r *gossipv1.ReceiptsRequest) (*gossipv1.ReceiptsResponse, error) {
	return call(m.e, ctx, m.to, r, func(h Handler, ctx context.Context, r *gossipv1.ReceiptsRequest) (*gossipv1.ReceiptsResponse, error) {
		return h.Membership().Receipts(ctx, r)
	})
}

// wait sleeps d unless ctx ends or the endpoint closes first.
func (e *Endpoint) wait(ctx context.Context, to string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxStatus(ctx.Err(), e.from, to, "in transit")
	case <-e.done:
		return e.errClosed()
	}
}

// block waits, as for an answer that never comes, until ctx ends or the
// endpoint closes; it always returns an error.
func (e *Endpoint) block(ctx context.Context, to, why string) error {
	select {
	case <-ctx.Done():
		return ctxStatus(ctx.Err(), e.from, to, why)
	case <-e.done:
		return e.errClosed()
	}
}

func ctxStatus(err error, from, to, why string) error {
	code := codes.DeadlineExceeded
	if errors.Is(err, context.Canceled) {
		code = codes.Canceled
	}
	return status.Errorf(code, "memnet: %s -> %s: %s: %v", from, to, why, err)
}

func (e *Endpoint) errClosed() error { return &closedError{from: e.from} }

// closedError is the error of a call on a closed Endpoint: codes.Unavailable
// for gRPC, net.ErrClosed for errors.Is.
type closedError struct{ from string }

func (e *closedError) Error() string { return e.GRPCStatus().Err().Error() }

// GRPCStatus makes status.Code report Unavailable.
func (e *closedError) GRPCStatus() *status.Status {
	return status.Newf(codes.Unavailable, "memnet: %s: endpoint closed", e.from)
}

// Is makes errors.Is(err, net.ErrClosed) hold.
func (e *closedError) Is(target error) bool { return target == net.ErrClosed }
