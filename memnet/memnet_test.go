package memnet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gossipv1 "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is a test Handler: it records what it receives and acknowledges it,
// or runs fn when set.
type node struct {
	addr string
	fn   func(ctx context.Context, msg *gossipv1.GossipMessage) (*gossipv1.GossipAck, error)

	mu   sync.Mutex
	got  []*gossipv1.GossipMessage
	at   []time.Time
	acks []*gossipv1.GossipAck
}

func (h *node) PutMessageToClient(ctx context.Context, msg *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
	h.mu.Lock()
	h.got = append(h.got, msg)
	h.at = append(h.at, time.Now())
	h.mu.Unlock()
	if h.fn != nil {
		return h.fn(ctx, msg)
	}
	ack := &gossipv1.GossipAck{Hash: msg.GetHash(), From: h.addr}
	h.mu.Lock()
	h.acks = append(h.acks, ack)
	h.mu.Unlock()
	return ack, nil
}

// node serves neither streams nor membership (see stream_test.go).
func (h *node) ServeStream(ctx context.Context, s transport.Stream) error {
	return unaryHandler{}.ServeStream(ctx, s)
}

func (h *node) Membership() transport.Membership { return noMembership{} }

func (h *node) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func msg(hash string) *gossipv1.GossipMessage {
	return &gossipv1.GossipMessage{Hash: hash, FromHash: "a", Payload: "payload-" + hash, Origin: "a", Hops: 1}
}

// setup returns a network with a node registered at each address.
func setup(seed uint64, addrs ...string) (*Network, map[string]*node) {
	n := New(seed)
	nodes := make(map[string]*node)
	for _, a := range addrs {
		nodes[a] = &node{addr: a}
		n.Register(a, nodes[a])
	}
	return n, nodes
}

func sendTimeout(e *Endpoint, to string, m *gossipv1.GossipMessage, d time.Duration) (*gossipv1.GossipAck, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return e.Send(ctx, to, m)
}

func TestSendRoundTrip(t *testing.T) {
	n, nodes := setup(1, "a", "b")
	m := msg("h1")
	ack, err := n.Transport("a").Send(context.Background(), "b", m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if ack.GetHash() != "h1" || ack.GetFrom() != "b" {
		t.Errorf("ack = %v, want hash h1 from b", ack)
	}
	if got := nodes["b"].count(); got != 1 {
		t.Fatalf("b received %d messages, want 1", got)
	}
	if !proto.Equal(nodes["b"].got[0], m) {
		t.Errorf("b received %v, want %v", nodes["b"].got[0], m)
	}
	want := Stats{Sent: 1, Delivered: 1, Acked: 1, Bytes: uint64(proto.Size(m))}
	if got := n.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestCloneIsolation(t *testing.T) {
	n, nodes := setup(1, "a", "b")
	m := msg("h1")
	orig := proto.Clone(m)
	ack, err := n.Transport("a").Send(context.Background(), "b", m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	in := nodes["b"].got[0]
	if in == m {
		t.Fatal("receiver got the sender's message, not a copy")
	}
	in.Payload, in.Hops, in.FromHash = "changed", 99, "b"
	if !proto.Equal(m, orig) {
		t.Errorf("sender's message changed to %v after the receiver modified its copy", m)
	}
	stored := nodes["b"].acks[0]
	if ack == stored {
		t.Fatal("sender got the receiver's ACK, not a copy")
	}
	ack.Hash = "changed"
	if stored.GetHash() != "h1" {
		t.Errorf("receiver's ACK changed to %v after the sender modified its copy", stored)
	}
}

func TestImmediateErrors(t *testing.T) {
	errReject := status.Error(codes.InvalidArgument, "bad message")
	tests := []struct {
		name    string
		prepare func(t *testing.T, n *Network, e *Endpoint) context.Context
		to      string
		code    codes.Code
		is      error // errors.Is target, when set
		same    error // the exact error expected, when set
		stat    func(Stats) uint64
	}{
		{
			name: "unregistered",
			to:   "nobody",
			code: codes.Unavailable,
			stat: func(s Stats) uint64 { return s.Refused },
		},
		{
			name: "unregistered after crash",
			prepare: func(_ *testing.T, n *Network, _ *Endpoint) context.Context {
				n.Unregister("b")
				return nil
			},
			to:   "b",
			code: codes.Unavailable,
			stat: func(s Stats) uint64 { return s.Refused },
		},
		{
			name: "closed endpoint",
			prepare: func(t *testing.T, _ *Network, e *Endpoint) context.Context {
				if err := e.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return nil
			},
			to:   "b",
			code: codes.Unavailable,
			is:   net.ErrClosed,
			stat: func(s Stats) uint64 { return s.Refused },
		},
		{
			name: "handler error passed through",
			prepare: func(_ *testing.T, n *Network, _ *Endpoint) context.Context {
				n.Register("b", &node{fn: func(context.Context, *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
					return nil, errReject
				}})
				return nil
			},
			to:   "b",
			code: codes.InvalidArgument,
			same: errReject,
			stat: func(s Stats) uint64 { return s.Rejected },
		},
		{
			name: "nil ack",
			prepare: func(_ *testing.T, n *Network, _ *Endpoint) context.Context {
				n.Register("b", &node{fn: func(context.Context, *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
					return nil, nil
				}})
				return nil
			},
			to:   "b",
			code: codes.Internal,
			stat: func(s Stats) uint64 { return s.Rejected },
		},
		{
			name: "ctx already cancelled",
			prepare: func(*testing.T, *Network, *Endpoint) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			to:   "b",
			code: codes.Canceled,
			stat: func(s Stats) uint64 { return s.Expired },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, _ := setup(1, "a", "b")
				n.SetDelay(time.Second, 0) // an immediate error must not wait for it
				e := n.Transport("a")
				ctx := context.Background()
				if tt.prepare != nil {
					if c := tt.prepare(t, n, e); c != nil {
						ctx = c
					}
				}
				start := time.Now()
				ack, err := e.Send(ctx, tt.to, msg("h1"))
				if ack != nil {
					t.Errorf("ack = %v, want nil", ack)
				}
				if got := status.Code(err); got != tt.code {
					t.Errorf("code = %v (err %v), want %v", got, err, tt.code)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
				}
				if tt.same != nil && err != tt.same {
					t.Errorf("err = %v, want the handler's error unchanged", err)
				}
				wait := time.Duration(0)
				if tt.same != nil || tt.code == codes.Internal {
					wait = 2 * time.Second // the handler ran: a full round trip
				}
				if d := time.Since(start); d != wait {
					t.Errorf("Send took %v, want %v", d, wait)
				}
				if s := n.Stats(); tt.stat(s) != 1 || s.Sent != 1 {
					t.Errorf("Stats = %+v, want Sent 1 and 1 in the expected counter", s)
				}
			})
		})
	}
}

func TestCloseIdempotent(t *testing.T) {
	e := New(1).Transport("a")
	if err := e.Close(); err != nil {
		t.Errorf("first Close = %v, want nil", err)
	}
	if err := e.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
	if e.Addr() != "a" {
		t.Errorf("Addr = %q, want a", e.Addr())
	}
}

func TestCloseUnblocksSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, _ := setup(1, "a", "b")
		n.Partition([]string{"a"}, []string{"b"})
		e := n.Transport("a")
		done := make(chan error)
		go func() {
			_, err := e.Send(context.Background(), "b", msg("h1")) // no deadline
			done <- err
		}()
		synctest.Wait() // the send is blocked on the partition
		if err := e.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		err := <-done
		if status.Code(err) != codes.Unavailable || !errors.Is(err, net.ErrClosed) {
			t.Errorf("Send = %v, want Unavailable matching net.ErrClosed", err)
		}
	})
}

func TestPartition(t *testing.T) {
	const timeout = 3 * time.Second
	tests := []struct {
		name     string
		groups   [][]string
		from, to string
		reach    bool
	}{
		{"same group", [][]string{{"a", "b"}, {"c"}}, "a", "b", true},
		{"different groups", [][]string{{"a", "b"}, {"c"}}, "a", "c", false},
		{"other direction", [][]string{{"a", "b"}, {"c"}}, "c", "a", false},
		{"both unlisted", [][]string{{"a"}}, "c", "d", true},
		{"listed to unlisted", [][]string{{"a"}}, "a", "d", false},
		{"unlisted to listed", [][]string{{"a"}}, "d", "a", false},
		{"self", [][]string{{"a"}, {"b"}}, "a", "a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, nodes := setup(1, "a", "b", "c", "d")
				n.Partition(tt.groups...)
				e := n.Transport(tt.from)
				start := time.Now()
				_, err := sendTimeout(e, tt.to, msg("h1"), timeout)
				elapsed := time.Since(start)
				if tt.reach {
					if err != nil || elapsed != 0 || nodes[tt.to].count() != 1 {
						t.Fatalf("Send = %v after %v, %d delivered; want delivered at once", err, elapsed, nodes[tt.to].count())
					}
					return
				}
				if status.Code(err) != codes.DeadlineExceeded {
					t.Errorf("Send = %v, want DeadlineExceeded", err)
				}
				if elapsed != timeout {
					t.Errorf("Send returned after %v, want the ctx deadline %v", elapsed, timeout)
				}
				if got := nodes[tt.to].count(); got != 0 {
					t.Errorf("%s received %d messages across the partition", tt.to, got)
				}
				if s := n.Stats(); s.Partitioned != 1 {
					t.Errorf("Partitioned = %d, want 1", s.Partitioned)
				}

				n.Heal()
				if _, err := sendTimeout(e, tt.to, msg("h2"), timeout); err != nil {
					t.Errorf("Send after Heal: %v", err)
				}
				if got := nodes[tt.to].count(); got != 1 {
					t.Errorf("%s received %d messages after Heal, want 1", tt.to, got)
				}
			})
		})
	}
}

// A partition that starts while the receiver handles the message cuts the
// ACK: the receiver has it, the sender times out.
func TestPartitionCutsResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		b := &node{addr: "b"}
		b.fn = func(_ context.Context, m *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
			n.Partition([]string{"a"}, []string{"b"})
			return &gossipv1.GossipAck{Hash: m.GetHash(), From: "b"}, nil
		}
		n.Register("b", b)
		_, err := sendTimeout(n.Transport("a"), "b", msg("h1"), time.Second)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("Send = %v, want DeadlineExceeded", err)
		}
		if s := n.Stats(); s.Delivered != 1 || s.Partitioned != 1 || s.Acked != 0 {
			t.Errorf("Stats = %+v, want Delivered 1, Partitioned 1, Acked 0", s)
		}
	})
}

// binomialOK reports whether k successes of trials at probability p lie
// within 6 standard deviations of the mean (false failure rate ~1e-9).
func binomialOK(k, trials int, p float64) bool {
	mean := float64(trials) * p
	sd := math.Sqrt(float64(trials) * p * (1 - p))
	return math.Abs(float64(k)-mean) <= 6*sd
}

func TestLossRatio(t *testing.T) {
	const trials = 10000
	for _, p := range []float64{0, 0.01, 0.1, 0.5, 0.9, 1} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, nodes := setup(42, "a", "b")
				n.SetLoss(p)
				e := n.Transport("a")
				failed := 0
				for i := range trials {
					_, err := sendTimeout(e, "b", msg(fmt.Sprint(i)), time.Second)
					if err != nil {
						if status.Code(err) != codes.DeadlineExceeded {
							t.Fatalf("lost send: %v, want DeadlineExceeded", err)
						}
						failed++
					}
				}
				s := n.Stats()
				lost := int(s.LostRequests + s.LostAcks)
				if lost != failed {
					t.Errorf("LostRequests+LostAcks = %d, but %d sends failed", lost, failed)
				}
				if !binomialOK(lost, trials, p) {
					t.Errorf("lost %d of %d sends, want about %.0f", lost, trials, p*trials)
				}
				if !binomialOK(int(s.LostRequests), trials, p/2) || !binomialOK(int(s.LostAcks), trials, p/2) {
					t.Errorf("lost %d requests and %d ACKs, want about %.0f each", s.LostRequests, s.LostAcks, p/2*trials)
				}
				// A lost ACK means the receiver did get the message.
				if got, want := nodes["b"].count(), trials-int(s.LostRequests); got != want {
					t.Errorf("b received %d messages, want %d (all but the lost requests)", got, want)
				}
				if s.Delivered != uint64(nodes["b"].count()) || s.Acked != uint64(trials-failed) {
					t.Errorf("Stats = %+v inconsistent with %d delivered, %d failed", s, nodes["b"].count(), failed)
				}
			})
		})
	}
}

func TestLinkLossOverridesGlobal(t *testing.T) {
	tests := []struct {
		name     string
		global   float64
		link     float64 // a → b; negative removes the override
		wantAB   bool    // a → b delivered
		wantBA   bool    // b → a delivered
		setFirst bool    // set the link before the global loss
	}{
		{"lossless link in lossy net", 1, 0, true, false, false},
		{"lossy link in lossless net", 0, 1, false, true, false},
		{"order does not matter", 1, 0, true, false, true},
		{"override removed", 1, -1, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, _ := setup(7, "a", "b")
				if tt.setFirst {
					n.SetLinkLoss("a", "b", tt.link)
					n.SetLoss(tt.global)
				} else {
					n.SetLoss(tt.global)
					n.SetLinkLoss("a", "b", 0.5)
					n.SetLinkLoss("a", "b", tt.link)
				}
				for range 50 {
					_, errAB := sendTimeout(n.Transport("a"), "b", msg("x"), time.Second)
					_, errBA := sendTimeout(n.Transport("b"), "a", msg("y"), time.Second)
					if (errAB == nil) != tt.wantAB || (errBA == nil) != tt.wantBA {
						t.Fatalf("a→b err %v, b→a err %v; want delivered a→b %v, b→a %v", errAB, errBA, tt.wantAB, tt.wantBA)
					}
				}
			})
		})
	}
}

func TestDelay(t *testing.T) {
	tests := []struct {
		name         string
		base, jitter time.Duration
	}{
		{"none", 0, 0},
		{"base only", 10 * time.Millisecond, 0},
		{"jitter only", 0, 5 * time.Millisecond},
		{"base and jitter", 50 * time.Millisecond, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, nodes := setup(3, "a", "b")
				n.SetDelay(tt.base, tt.jitter)
				e := n.Transport("a")
				for i := range 100 {
					start := time.Now()
					if _, err := e.Send(context.Background(), "b", msg(fmt.Sprint(i))); err != nil {
						t.Fatalf("Send: %v", err)
					}
					rtt := time.Since(start)
					there := nodes["b"].at[i].Sub(start)
					back := rtt - there
					for _, leg := range []time.Duration{there, back} {
						if leg < tt.base || leg > tt.base+tt.jitter || (tt.jitter > 0 && leg == tt.base+tt.jitter) {
							t.Fatalf("one-way delay %v (rtt %v), want in [%v, %v)", leg, rtt, tt.base, tt.base+tt.jitter)
						}
					}
					if tt.jitter == 0 && rtt != 2*tt.base {
						t.Fatalf("rtt = %v, want exactly %v", rtt, 2*tt.base)
					}
				}
			})
		})
	}
}

func TestDelayRespectsDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		reached bool // the handler ran
	}{
		{"expires on the way there", 50 * time.Millisecond, false},
		{"expires on the way back", 150 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, nodes := setup(1, "a", "b")
				n.SetDelay(100*time.Millisecond, 0)
				start := time.Now()
				_, err := sendTimeout(n.Transport("a"), "b", msg("h1"), tc.timeout)
				if status.Code(err) != codes.DeadlineExceeded {
					t.Errorf("Send = %v, want DeadlineExceeded", err)
				}
				if d := time.Since(start); d != tc.timeout {
					t.Errorf("Send returned after %v, want %v", d, tc.timeout)
				}
				if got := nodes["b"].count() == 1; got != tc.reached {
					t.Errorf("handler ran = %v, want %v", got, tc.reached)
				}
				if s := n.Stats(); s.Expired != 1 {
					t.Errorf("Expired = %d, want 1", s.Expired)
				}
			})
		})
	}
}

// Handlers send onward synchronously: a chain of nodes, each forwarding to
// the next before acknowledging, must not deadlock, and the delays add up.
func TestOnwardChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const hops = 200
		const delay = time.Millisecond
		n := New(1)
		n.SetDelay(delay, 0)
		for i := range hops {
			addr, next := fmt.Sprint(i), fmt.Sprint(i+1)
			out := n.Transport(addr)
			n.Register(addr, &node{fn: func(ctx context.Context, m *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
				if i < hops-1 {
					if _, err := out.Send(ctx, next, m); err != nil {
						return nil, err
					}
				}
				return &gossipv1.GossipAck{Hash: m.GetHash(), From: addr}, nil
			}})
		}
		start := time.Now()
		if _, err := n.Transport("client").Send(context.Background(), "0", msg("h1")); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if d, want := time.Since(start), 2*hops*delay; d != want {
			t.Errorf("chain took %v, want %v", d, want)
		}
		if s := n.Stats(); s.Delivered != hops || s.Acked != hops {
			t.Errorf("Stats = %+v, want %d delivered and acked", s, hops)
		}
	})
}

// Many concurrent senders with loss, jitter and a partition: no race, and
// every send is counted exactly once.
func TestConcurrentStatsAddUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const nodes, perNode = 50, 40
		n := New(9)
		n.SetLoss(0.2)
		n.SetDelay(5*time.Millisecond, 5*time.Millisecond)
		var addrs []string
		for i := range nodes {
			a := fmt.Sprint(i)
			addrs = append(addrs, a)
			if i%10 != 0 { // every tenth node is down
				n.Register(a, &node{addr: a})
			}
		}
		n.Partition(addrs[:10])
		var wg sync.WaitGroup
		for i := range nodes {
			e := n.Transport(addrs[i])
			wg.Go(func() {
				for j := range perNode {
					to := addrs[(i+j+1)%nodes]
					sendTimeout(e, to, msg(fmt.Sprint(i, "-", j)), 100*time.Millisecond)
				}
			})
		}
		wg.Wait()
		s := n.Stats()
		sum := s.Acked + s.Rejected + s.LostRequests + s.LostAcks + s.Refused + s.Partitioned + s.Expired
		if s.Sent != nodes*perNode || sum != s.Sent {
			t.Errorf("Stats = %+v: outcomes add up to %d, want Sent = %d", s, sum, nodes*perNode)
		}
		if s.Refused == 0 || s.Partitioned == 0 || s.LostRequests == 0 || s.LostAcks == 0 || s.Acked == 0 {
			t.Errorf("Stats = %+v, want every kind of outcome", s)
		}
	})
}

// The same seed and the same sequence of sends give the same outcomes.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) []string {
		var out []string
		synctest.Test(t, func(t *testing.T) {
			n, _ := setup(seed, "a", "b")
			n.SetLoss(0.3)
			n.SetDelay(time.Millisecond, time.Millisecond)
			e := n.Transport("a")
			for i := range 200 {
				start := time.Now()
				_, err := sendTimeout(e, "b", msg(fmt.Sprint(i)), time.Second)
				out = append(out, fmt.Sprint(status.Code(err), time.Since(start)))
			}
		})
		return out
	}
	a, b, c := run(5), run(5), run(6)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("two runs with seed 5 differ")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Error("seeds 5 and 6 gave identical runs")
	}
}

func TestRegisterReplaces(t *testing.T) {
	n, nodes := setup(1, "a", "b")
	repl := &node{addr: "b2"}
	n.Register("b", repl)
	ack, err := n.Transport("a").Send(context.Background(), "b", msg("h1"))
	if err != nil || ack.GetFrom() != "b2" {
		t.Fatalf("Send = %v, %v; want the ACK of the replacement", ack, err)
	}
	if nodes["b"].count() != 0 || repl.count() != 1 {
		t.Errorf("old received %d, replacement %d; want 0 and 1", nodes["b"].count(), repl.count())
	}
}

func TestInvalidConfigPanics(t *testing.T) {
	tests := []struct {
		name string
		fn   func(n *Network)
	}{
		{"loss above 1", func(n *Network) { n.SetLoss(1.5) }},
		{"negative loss", func(n *Network) { n.SetLoss(-0.1) }},
		{"NaN loss", func(n *Network) { n.SetLoss(math.NaN()) }},
		{"link loss above 1", func(n *Network) { n.SetLinkLoss("a", "b", 2) }},
		{"negative delay", func(n *Network) { n.SetDelay(-time.Second, 0) }},
		{"negative jitter", func(n *Network) { n.SetDelay(0, -time.Second) }},
		{"nil handler", func(n *Network) { n.Register("a", nil) }},
		{"address in two groups", func(n *Network) { n.Partition([]string{"a"}, []string{"b", "a"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.fn(New(1))
		})
	}
}
