package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

func msgFrame(src string, seq uint64, repair bool) Frame {
	return Frame{Kind: FrameMessage, Wire: make([]byte, 100), Hash: src, Repair: repair,
		Range: &pb.SeqRange{Node: src, Epoch: 1, First: seq, Last: seq, Hops: 3}}
}

// Withdraw turns the queued eager copies of a pruned source into
// announcements, keeps repairs and other sources' messages, and frees
// their bytes.
func TestStreamWithdraw(t *testing.T) {
	s := NewStream(1<<20, true)
	for _, f := range []Frame{msgFrame("s", 1, false), msgFrame("o", 1, false), msgFrame("s", 2, true), msgFrame("s", 3, false)} {
		s.Push(f)
	}
	before := s.Bytes()
	if k := s.Withdraw("s"); k != 2 {
		t.Fatalf("withdrew %d, want 2 (the repair stays)", k)
	}
	if freed := before - s.Bytes(); freed != 2*(108-48) {
		t.Fatalf("freed %d bytes, want %d", freed, 2*(108-48))
	}
	env, more, ok := s.Next(t0, 28<<10, time.Time{})
	if !ok || more {
		t.Fatalf("Next: ok %v more %v", ok, more)
	}
	if len(env.GetMessages()) != 1 || len(env.GetRepairs()) != 1 || len(env.GetIhave()) != 2 {
		t.Fatalf("envelope: %d messages, %d repairs, %d ihave ranges", len(env.GetMessages()), len(env.GetRepairs()), len(env.GetIhave()))
	}
	if r := env.GetIhave()[0]; r.GetFirst() != 1 || r.GetHops() != 3 {
		t.Fatalf("withdrawn announcement %v", r)
	}
}

// Past the soft bound eager messages become announcements (merged into
// one range), past four times it frames are dropped; repairs are never
// degraded.
func TestStreamBounds(t *testing.T) {
	s := NewStream(216, false) // two 100-byte messages (108 each)
	for i := uint64(1); i <= 2; i++ {
		if res, wake := s.Push(msgFrame("s", i, false)); res != Pushed || !wake {
			t.Fatalf("message %d: %v wake %v", i, res, wake)
		}
	}
	if res, wake := s.Push(msgFrame("s", 3, false)); res != Deferred || wake {
		t.Fatalf("message 3 over the soft bound: %v wake %v, want Deferred without a wake-up", res, wake)
	}
	if res, _ := s.Push(msgFrame("s", 4, false)); res != Deferred {
		t.Fatalf("message 4: %v", res)
	}
	if s.Len() != 3 {
		t.Fatalf("%d frames queued, want 3 (announcements of 3 and 4 merged)", s.Len())
	}
	if res, _ := s.Push(msgFrame("s", 9, true)); res != Pushed {
		t.Fatalf("repair over the soft bound: %v, want Pushed", res)
	}
	for s.Bytes()+108 <= 4*216 {
		s.Push(msgFrame("r", 1, true))
	}
	if res, _ := s.Push(msgFrame("r", 2, true)); res != Dropped {
		t.Fatalf("over the hard bound: %v, want Dropped", res)
	}
}

// The answering end owes a cumulative ACK for envelopes with messages;
// the opening end keeps each envelope's messages until the ACK covers
// them, and re-sends them as repairs on the next stream.
func TestStreamAcksAndRestart(t *testing.T) {
	opener, answerer := NewStream(1<<20, true), NewStream(1<<20, false)
	hello := opener.Hello("a", "addr-a", 1<<20, true)
	answerer.Receive(t0, hello)
	opener.Push(msgFrame("s", 1, false))
	env1, _, _ := opener.Next(t0, 1<<20, time.Time{})
	opener.Push(msgFrame("s", 2, false))
	env2, _, _ := opener.Next(t0.Add(time.Millisecond), 1<<20, time.Time{})
	answerer.Receive(t0, env1)
	if !answerer.Flush() {
		t.Fatal("an ACK is owed but Flush says nothing is due")
	}
	ack, _, ok := answerer.Next(t0, 1<<20, time.Time{})
	if !ok || ack.GetAck() != 2 { // the hello is envelope 1
		t.Fatalf("ack envelope %v, want ack 2", ack)
	}
	ev := opener.Receive(t0.Add(10*time.Millisecond), ack)
	if len(ev.Acked) != 1 || ev.RTT != 10*time.Millisecond {
		t.Fatalf("acked %d frames after %v, want 1 after 10ms", len(ev.Acked), ev.RTT)
	}
	_ = env2 // never acknowledged: the stream breaks
	if k := opener.Restart(); k != 1 {
		t.Fatalf("Restart re-sends %d, want 1", k)
	}
	opener.Hello("a", "addr-a", 1<<20, true)
	env, _, _ := opener.Next(t0, 1<<20, time.Time{})
	if len(env.GetRepairs()) != 1 || len(env.GetMessages()) != 0 {
		t.Fatalf("re-sent envelope %v, want the message as a repair", env)
	}
	if opener.Flush() {
		t.Error("the opening end owes no ACK")
	}
}

// A peer's hello limit refuses messages that cannot fit and bounds the
// envelopes.
func TestStreamPeerLimit(t *testing.T) {
	s := NewStream(1<<30, true)
	big := Frame{Kind: FrameMessage, Wire: make([]byte, 2<<20), Range: &pb.SeqRange{Node: "s", Epoch: 1, First: 1, Last: 1}}
	s.Push(big)
	s.Push(msgFrame("s", 2, false))
	s.Receive(t0, &pb.Envelope{Hello: &pb.Hello{Id: "b", MaxEnvelopeBytes: 1 << 20}})
	if refused := s.RefuseOversized(); len(refused) != 1 || len(refused[0].Wire) != 2<<20 {
		t.Fatalf("refused %d frames, want the 2 MiB one", len(refused))
	}
	if res, _ := s.Push(big); res != Refused {
		t.Fatalf("pushing a message over the peer's limit: %v, want Refused", res)
	}
	for range 20000 {
		s.Push(msgFrame("s", 3, true))
	}
	env, _, _ := s.Next(t0, 1<<30, time.Time{})
	if size := len(env.GetRepairs()) * 108; size > 1<<20 {
		t.Fatalf("an envelope of about %d bytes for a peer that takes 1 MiB", size)
	}
}

// Announcements of one source merge into one range even when other
// sources' frames come between them, and the ranges pushed (shared with
// other peers' frames) are never modified: the queue copies one only to
// grow it.
// An urgent announcement wakes the writer, whether it is queued or merged
// into one queued before; a lazy one waits for a flush.
func TestStreamUrgentIHave(t *testing.T) {
	s := NewStream(1<<20, false)
	r := func(src string, seq uint64) *pb.SeqRange {
		return &pb.SeqRange{Node: src, Epoch: 1, First: seq, Last: seq}
	}
	if res, wake := s.Push(Frame{Kind: FrameIHave, Range: r("a", 1)}); res != Pushed || wake {
		t.Fatalf("lazy announcement: %v wake %v, want Pushed without a wake-up", res, wake)
	}
	if res, wake := s.Push(Frame{Kind: FrameIHave, Range: r("b", 1), Urgent: true}); res != Pushed || !wake {
		t.Fatalf("urgent announcement: %v wake %v, want Pushed with a wake-up", res, wake)
	}
	if res, wake := s.Push(Frame{Kind: FrameIHave, Range: r("a", 2), Urgent: true}); res != Merged || !wake {
		t.Fatalf("urgent announcement merged: %v wake %v, want Merged with a wake-up", res, wake)
	}
}

func TestStreamIHaveMerge(t *testing.T) {
	s := NewStream(1<<20, false)
	ihave := func(src string, seq uint64) *pb.SeqRange {
		return &pb.SeqRange{Node: src, Epoch: 1, First: seq, Last: seq, Hops: uint32(seq)}
	}
	pushed := []*pb.SeqRange{ihave("a", 1), ihave("c", 5), ihave("a", 2), ihave("a", 3), ihave("a", 7)}
	s.Push(Frame{Kind: FrameIHave, Range: pushed[0]})
	s.Push(msgFrame("b", 1, false))
	for _, r := range pushed[1:] {
		s.Push(Frame{Kind: FrameIHave, Range: r})
	}
	if s.Len() != 4 {
		t.Fatalf("%d frames queued, want 4 (a:1-3, b's message, c:5, a:7)", s.Len())
	}
	for i, r := range pushed {
		if r.GetFirst() != r.GetLast() {
			t.Fatalf("pushed range %d was modified: %v", i, r)
		}
	}
	env, _, ok := s.Next(t0, 28<<10, time.Time{})
	if !ok {
		t.Fatal("Next: nothing")
	}
	var got []string
	for _, r := range env.GetIhave() {
		got = append(got, fmt.Sprintf("%s:%d-%d/%d", r.GetNode(), r.GetFirst(), r.GetLast(), r.GetHops()))
	}
	if want := []string{"a:1-3/3", "c:5-5/5", "a:7-7/7"}; !slices.Equal(got, want) {
		t.Fatalf("announced %v, want %v", got, want)
	}

	// The envelope merges too (frames queued apart, past the queue's scan)
	// and copies what it grows.
	shared := []*pb.SeqRange{ihave("x", 1), ihave("x", 2)}
	batch := []Frame{{Kind: FrameIHave, Range: shared[0]}}
	for i := range mergeScan {
		batch = append(batch, msgFrame(fmt.Sprint("m", i), 1, false))
	}
	batch = append(batch, Frame{Kind: FrameIHave, Range: shared[1]})
	e := envelope(batch)
	if len(e.GetIhave()) != 1 || e.GetIhave()[0].GetLast() != 2 || shared[0].GetLast() != 1 {
		t.Fatalf("envelope ranges %v (shared first range %v)", e.GetIhave(), shared[0])
	}
}
