package memnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gossipv1 "github.com/grpc-gossip/gossip/proto/gossip/v1"
	"github.com/grpc-gossip/gossip/transport"
)

// echo is a stream Handler: it sends back every envelope it receives (its
// ack field set to the count so far) and ends the stream cleanly after an
// envelope with hello id "bye", or with the error of an envelope whose
// hello id is "fail". It also serves membership Pings.
type echo struct {
	limit  int
	served chan struct{} // closed when a ServeStream returned (first one)
}

func (e *echo) PutMessageToClient(context.Context, *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
	return &gossipv1.GossipAck{}, nil
}

func (e *echo) ServeStream(ctx context.Context, s transport.Stream) error {
	defer func() {
		if e.served != nil {
			select {
			case <-e.served:
			default:
				close(e.served)
			}
		}
	}()
	var n uint64
	for {
		env, err := s.Recv()
		if err != nil {
			return err
		}
		n++
		switch env.GetHello().GetId() {
		case "bye":
			return nil
		case "fail":
			return status.Error(codes.FailedPrecondition, "asked to fail")
		}
		env.Ack = n
		if err := s.Send(env); err != nil {
			return err
		}
	}
}

func (e *echo) Membership() transport.Membership { return pinger{} }

func (e *echo) MaxRecvMsgSize() int {
	if e.limit == 0 {
		return 1 << 30
	}
	return e.limit
}

type pinger struct{ noMembership }

func (pinger) Ping(_ context.Context, r *gossipv1.PingRequest) (*gossipv1.PingResponse, error) {
	return &gossipv1.PingResponse{Seq: r.GetSeq(), From: "b"}, nil
}

func hello(id string) *gossipv1.Envelope { return &gossipv1.Envelope{Hello: &gossipv1.Hello{Id: id}} }

func TestStreamOrderedAndDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		n.Register("b", &echo{})
		n.SetDelay(10*time.Millisecond, 20*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := n.Transport("a").OpenStream(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		const k = 50
		for i := range k {
			if err := s.Send(&gossipv1.Envelope{Messages: [][]byte{[]byte(fmt.Sprint(i))}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range k {
			env, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if got := string(env.GetMessages()[0]); got != fmt.Sprint(i) || env.GetAck() != uint64(i+1) {
				t.Fatalf("envelope %d: got %q ack %d (out of order)", i, got, env.GetAck())
			}
		}
		// Two one-way trips, each at least the base delay and at most
		// base + jitter.
		if el := time.Since(start); el < 20*time.Millisecond || el > 60*time.Millisecond {
			t.Errorf("round trip of the last envelope took %v, want 20..60ms", el)
		}
		if st := n.Stats(); st.StreamsOpened != 1 || st.Envelopes != 2*k {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestStreamServerEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		n.Register("b", &echo{})
		for _, tc := range []struct {
			id   string
			want error
			code codes.Code
		}{{"bye", io.EOF, codes.OK}, {"fail", nil, codes.FailedPrecondition}} {
			s, err := n.Transport("a").OpenStream(context.Background(), "b")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(hello(tc.id)); err != nil {
				t.Fatal(err)
			}
			_, err = s.Recv()
			if tc.want != nil && !errors.Is(err, tc.want) || tc.want == nil && status.Code(err) != tc.code {
				t.Errorf("%s: Recv = %v", tc.id, err)
			}
			if err := s.Send(hello("x")); !errors.Is(err, io.EOF) {
				t.Errorf("%s: Send after the server ended = %v, want io.EOF", tc.id, err)
			}
		}
	})
}

func TestStreamCancelEndsServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		h := &echo{served: make(chan struct{})}
		n.Register("b", h)
		ctx, cancel := context.WithCancel(context.Background())
		s, err := n.Transport("a").OpenStream(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		<-h.served // the server's Recv failed and ServeStream returned
		if _, err := s.Recv(); status.Code(err) != codes.Canceled {
			t.Errorf("Recv after cancel = %v, want Canceled", err)
		}
	})
}

func TestStreamOpenErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		n.Register("b", &echo{})
		if _, err := n.Transport("a").OpenStream(context.Background(), "nobody"); status.Code(err) != codes.Unavailable {
			t.Errorf("open to an unregistered address = %v", err)
		}
		e := n.Transport("a")
		e.Close()
		if _, err := e.OpenStream(context.Background(), "b"); status.Code(err) != codes.Unavailable {
			t.Errorf("open on a closed endpoint = %v", err)
		}
		n.Partition([]string{"a"}, []string{"b"})
		start := time.Now()
		if _, err := n.Transport("a").OpenStream(context.Background(), "b"); status.Code(err) != codes.Unavailable {
			t.Errorf("open across a partition = %v", err)
		}
		if el := time.Since(start); el != DefaultConnectTimeout {
			t.Errorf("open across a partition failed after %v, want the connect timeout %v", el, DefaultConnectTimeout)
		}
	})
}

// TestStreamBreaks: a partition, a crash, a lost envelope and an envelope
// over the receiver's limit each break an open stream, at both ends.
func TestStreamBreaks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		cut   func(n *Network)
		send  *gossipv1.Envelope
		code  codes.Code
	}{
		{"partition", 0, func(n *Network) { n.Partition([]string{"a"}) }, nil, codes.Unavailable},
		{"crash of the server", 0, func(n *Network) { n.Crash("b") }, nil, codes.Unavailable},
		{"crash of the client", 0, func(n *Network) { n.Crash("a") }, nil, codes.Unavailable},
		{"lost envelope", 0, func(n *Network) { n.SetLoss(1) }, hello("x"), codes.Unavailable},
		{"oversized envelope", 100, nil, &gossipv1.Envelope{Messages: [][]byte{make([]byte, 200)}}, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := New(1)
				h := &echo{limit: tc.limit, served: make(chan struct{})}
				n.Register("b", h)
				s, err := n.Transport("a").OpenStream(context.Background(), "b")
				if err != nil {
					t.Fatal(err)
				}
				if tc.cut != nil {
					tc.cut(n)
				}
				if tc.send != nil {
					if err := s.Send(tc.send); status.Code(err) != tc.code {
						t.Errorf("Send = %v, want %v", err, tc.code)
					}
				}
				<-h.served // the server saw the break
				if _, err := s.Recv(); status.Code(err) != tc.code {
					t.Errorf("Recv = %v, want %v", err, tc.code)
				}
				if st := n.Stats(); st.StreamsBroken != 1 {
					t.Errorf("StreamsBroken = %d", st.StreamsBroken)
				}
			})
		})
	}
}

// TestStreamFlowControl: a sender blocks once the window is in flight to
// a receiver that does not read, and resumes when it reads.
func TestStreamFlowControl(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		n.SetStreamWindow(1000)
		got := make(chan *gossipv1.Envelope)
		n.Register("b", &funcStream{serve: func(ctx context.Context, s transport.Stream) error {
			for {
				env, err := s.Recv()
				if err != nil {
					return err
				}
				select {
				case got <- env:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := n.Transport("a").OpenStream(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan int, 10)
		go func() {
			for i := range 10 {
				if s.Send(&gossipv1.Envelope{Messages: [][]byte{make([]byte, 300)}}) != nil {
					return
				}
				sent <- i
			}
		}()
		synctest.Wait()
		// The server took one envelope and blocks handing it over; three
		// more (3 × ~303 bytes) fill the window.
		if len(sent) != 4 {
			t.Fatalf("%d envelopes sent while the receiver did not read, want 4", len(sent))
		}
		for range 10 {
			<-got
		}
		synctest.Wait()
		if len(sent) != 10 {
			t.Errorf("%d envelopes sent after the receiver read them all", len(sent))
		}
	})
}

type funcStream struct {
	noMembership
	serve func(ctx context.Context, s transport.Stream) error
}

func (f *funcStream) PutMessageToClient(context.Context, *gossipv1.GossipMessage) (*gossipv1.GossipAck, error) {
	return nil, status.Error(codes.Unimplemented, "no")
}
func (f *funcStream) ServeStream(ctx context.Context, s transport.Stream) error {
	return f.serve(ctx, s)
}
func (f *funcStream) Membership() transport.Membership { return f.noMembership }

// TestMembershipCall: the membership RPCs go through the same emulation as
// Send (partitions, loss, delay) and reach the handler's Membership.
func TestMembershipCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		n.Register("b", &echo{})
		n.SetDelay(5*time.Millisecond, 0)
		m, err := n.Transport("a").Membership("b")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := m.Ping(context.Background(), &gossipv1.PingRequest{Seq: 7})
		if err != nil || resp.GetSeq() != 7 || resp.GetFrom() != "b" {
			t.Fatalf("Ping = %v, %v", resp, err)
		}
		if el := time.Since(start); el != 10*time.Millisecond {
			t.Errorf("Ping took %v, want a 10ms round trip", el)
		}
		if _, err := m.Sync(context.Background(), &gossipv1.SyncRequest{}); status.Code(err) != codes.Unimplemented {
			t.Errorf("Sync = %v, want the handler's Unimplemented", err)
		}
		n.Partition([]string{"a"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := m.Ping(ctx, &gossipv1.PingRequest{}); status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("Ping across a partition = %v, want DeadlineExceeded", err)
		}
	})
}
