// Package memnet is an in-memory network for gossip nodes: tests and
// simulations use it to run hundreds of nodes in one process, with loss,
// delay, jitter and partitions, instead of gRPC over sockets.
//
// A Network connects addresses. A node receives by registering a Handler
// (a *gossip.GossipNode satisfies it) at its address, and sends through
// the Endpoint that Transport returns for that address (an Endpoint
// satisfies gossip.Transport):
//
//	net := memnet.New(1)
//	a := gossip.NewGossipNode("a", "a", nil, nil, nil, nil, gossip.WithTransport(net.Transport("a")))
//	net.Register("a", a)
//
// # Wire emulation
//
// Send behaves like a unary gRPC call. The request and the ACK are copied
// with proto.Clone, so sender and receiver never share memory. The
// receiver's handler runs synchronously in the sender's goroutine, with the
// sender's ctx (as gRPC propagates the deadline). Failures look like gRPC
// failures, as status errors (see Endpoint.Send for the codes): an
// unregistered address refuses at once (Unavailable); a lost message or a
// partition is silent, so the sender waits until its ctx ends
// (DeadlineExceeded), as it would wait for an ACK that never comes.
//
// # Determinism
//
// memnet starts no goroutines and waits only on timers, channels and
// ctx.Done(), so it runs under testing/synctest, where delays pass in
// virtual time and a send that waits for its deadline takes no real time.
// Loss and jitter come from one PCG generator seeded by New. Each Send
// draws from it a fixed number of times, so a run whose sends happen in
// the same order (one sender, or a synctest bubble whose goroutines
// interleave the same way) sees the same losses and delays.
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
)

// Handler receives messages: *gossip.GossipNode satisfies it. It is called
// concurrently, in the sender's goroutine, with a clone of the sent message
// that it may keep and modify. It may send onward through the network.
// Its error is returned to the sender unchanged, so it should be a gRPC
// status error (or implement GRPCStatus).
type Handler interface {
	PutMessageToClient(ctx context.Context, msg *gossipv1.GossipMessage) (*gossipv1.GossipAck, error)
}

// Network is an in-memory network. Its zero value is not usable: create it
// with New. It is safe for concurrent use, and its configuration may change
// while traffic flows; a change applies to sends that start afterwards
// (and to the return path of sends in flight, for partitions).
type Network struct {
	mu       sync.Mutex // guards everything below; never held while waiting or calling a Handler
	rng      *rand.Rand
	handlers map[string]Handler
	loss     float64
	linkLoss map[link]float64
	base     time.Duration
	jitter   time.Duration
	groups   map[string]int // partition group of each listed address; nil when healed

	stats counters
}

type link struct{ from, to string }

// implicitGroup is the partition group of addresses not listed in any group.
const implicitGroup = -1

// New returns an empty network with no loss, no delay and no partition.
// seed drives the loss and jitter draws.
func New(seed uint64) *Network {
	return &Network{
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		handlers: make(map[string]Handler),
		linkLoss: make(map[link]float64),
	}
}

// Register attaches h as the receiver at addr, replacing any receiver
// already there. Sends already past the lookup still reach the old one.
// It panics if h is nil.
func (n *Network) Register(addr string, h Handler) {
	if h == nil {
		panic("memnet: Register: nil Handler")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[addr] = h
}

// Unregister detaches the receiver at addr, as if its node crashed or
// stopped: sends to addr then fail at once with codes.Unavailable, like a
// refused connection. Unregistering an unknown address does nothing.
func (n *Network) Unregister(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.handlers, addr)
}

// Transport returns a new sending side for the node at from (its address:
// partitions and per-link loss are keyed by it). Each call returns a fresh
// open Endpoint, so a node restarted at the same address gets a working
// one even though the old node closed its own.
func (n *Network) Transport(from string) *Endpoint {
	return &Endpoint{net: n, from: from, done: make(chan struct{})}
}

// SetLoss sets the probability in [0, 1] that a send is lost, on links
// without a SetLinkLoss override. Half of the losses drop the request (the
// receiver never sees it), half drop the ACK (the receiver handles the
// message, the sender never learns it). It panics if p is outside [0, 1].
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

// SetDelay sets the one-way delay: each send waits base plus a jitter drawn
// uniformly from [0, jitter) before the handler is called, and again (with
// its own jitter) before the ACK returns, so a round trip takes about
// 2×base. Zero (the default) means no wait at all. It panics if either is
// negative.
func (n *Network) SetDelay(base, jitter time.Duration) {
	if base < 0 || jitter < 0 {
		panic(fmt.Sprintf("memnet: SetDelay: negative delay (base %v, jitter %v)", base, jitter))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.base, n.jitter = base, jitter
}

// Partition splits the network: addresses in different groups cannot reach
// each other, and a send between them waits until its ctx ends. Addresses
// not listed in any group form one more group together. It replaces any
// earlier partition; Partition() with no groups heals. It panics if an
// address is listed twice.
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
	defer n.mu.Unlock()
	n.groups = m
}

// Heal removes the partition: every address reaches every other again.
// Sends already waiting on a partition still wait for their ctx.
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

// Stats counts sends since New. Every Send ends in exactly one of Acked,
// Rejected, LostRequests, LostAcks, Refused, Partitioned and Expired, so
// once no send is in flight they add up to Sent.
type Stats struct {
	Sent         uint64 // Send calls
	Delivered    uint64 // handler calls
	Acked        uint64 // sends that returned an ACK
	Rejected     uint64 // sends that returned the handler's error
	LostRequests uint64 // sends lost before the handler
	LostAcks     uint64 // sends whose handler ran but whose response was lost
	Refused      uint64 // sends to an unregistered address or from a closed Endpoint
	Partitioned  uint64 // sends cut by a partition, on the way there or back
	Expired      uint64 // sends whose ctx ended (or Endpoint closed) first: already at the call, or during a delay
	Bytes        uint64 // sum of proto.Size of the delivered requests
}

type counters struct {
	sent, delivered, acked, rejected, lostReq, lostAck, refused, partitioned, expired, bytes atomic.Uint64
}

// Stats returns a snapshot of the counters. Counters are read one by one,
// so a snapshot taken while sends are in flight may be off by those sends.
func (n *Network) Stats() Stats {
	c := &n.stats
	return Stats{
		Sent:         c.sent.Load(),
		Delivered:    c.delivered.Load(),
		Acked:        c.acked.Load(),
		Rejected:     c.rejected.Load(),
		LostRequests: c.lostReq.Load(),
		LostAcks:     c.lostAck.Load(),
		Refused:      c.refused.Load(),
		Partitioned:  c.partitioned.Load(),
		Expired:      c.expired.Load(),
		Bytes:        c.bytes.Load(),
	}
}

// Endpoint is the sending side of one node: it satisfies gossip.Transport.
// It is safe for concurrent use.
type Endpoint struct {
	net       *Network
	from      string
	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

// Addr returns the address the endpoint sends from.
func (e *Endpoint) Addr() string { return e.from }

// Close closes the endpoint: later sends fail with codes.Unavailable, and
// sends waiting on a delay, a loss or a partition return at once with the
// same error (a handler already running finishes). The first call returns
// nil, later ones net.ErrClosed (as gossip.GossipNode.Close does).
func (e *Endpoint) Close() error {
	err := net.ErrClosed
	e.closeOnce.Do(func() {
		close(e.done)
		err = nil
	})
	return err
}

// plan is what one Send drew from the network, under its mutex.
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
	loss, ok := n.linkLoss[link{from, to}]
	if !ok {
		loss = n.loss
	}
	// The draws depend on the configuration only, never on the outcome, so
	// one send consumes the generator the same way whatever happens to it.
	u := n.rng.Float64()
	p.lostReq = u < loss/2
	p.lostAck = !p.lostReq && u < loss
	p.there, p.back = n.base, n.base
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
//   - it waits the one-way delay, then calls the handler with a clone of
//     msg, synchronously, with ctx;
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
// msg is not modified nor retained.
func (e *Endpoint) Send(ctx context.Context, to string, msg *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
	n, c := e.net, &e.net.stats
	c.sent.Add(1)
	select {
	case <-e.done:
		c.refused.Add(1)
		return nil, e.errClosed()
	default:
	}
	if err := ctx.Err(); err != nil {
		c.expired.Add(1)
		return nil, ctxStatus(err, e.from, to, "before sending")
	}
	p := n.plan(e.from, to)
	switch {
	case p.h == nil:
		c.refused.Add(1)
		return nil, status.Errorf(codes.Unavailable, "memnet: %s -> %s: connection refused: no node at %q", e.from, to, to)
	case !p.reachable:
		c.partitioned.Add(1)
		return nil, e.block(ctx, to, "partitioned")
	case p.lostReq:
		c.lostReq.Add(1)
		return nil, e.block(ctx, to, "request lost")
	}
	if err := e.wait(ctx, to, p.there); err != nil {
		c.expired.Add(1)
		return nil, err
	}

	in := proto.Clone(msg).(*gossipv1.GossipMessage)
	c.delivered.Add(1)
	c.bytes.Add(uint64(proto.Size(in)))
	ack, herr := p.h.PutMessageToClient(ctx, in)

	n.mu.Lock()
	cut := !n.reachable(e.from, to)
	n.mu.Unlock()
	switch {
	case cut:
		c.partitioned.Add(1)
		return nil, e.block(ctx, to, "partitioned before the response")
	case p.lostAck:
		c.lostAck.Add(1)
		return nil, e.block(ctx, to, "response lost")
	}
	if err := e.wait(ctx, to, p.back); err != nil {
		c.expired.Add(1)
		return nil, err
	}
	if herr != nil {
		c.rejected.Add(1)
		return nil, herr
	}
	if ack == nil {
		c.rejected.Add(1)
		return nil, status.Errorf(codes.Internal, "memnet: %s -> %s: handler returned a nil ACK and no error", e.from, to)
	}
	c.acked.Add(1)
	return proto.Clone(ack).(*gossipv1.GossipAck), nil
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

// block waits, as for an ACK that never comes, until ctx ends or the
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

// closedError is the error of a send on a closed Endpoint: codes.Unavailable
// for gRPC, net.ErrClosed for errors.Is.
type closedError struct{ from string }

func (e *closedError) Error() string { return e.GRPCStatus().Err().Error() }

// GRPCStatus makes status.Code report Unavailable.
func (e *closedError) GRPCStatus() *status.Status {
	return status.Newf(codes.Unavailable, "memnet: %s: endpoint closed", e.from)
}

// Is makes errors.Is(err, net.ErrClosed) hold.
func (e *closedError) Is(target error) bool { return target == net.ErrClosed }
