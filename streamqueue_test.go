package gossip

import (
	"testing"

	"github.com/grpc-gossip/gossip/internal/core"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

func msgFrame(src string, seq uint64, repair bool) core.Frame {
	return core.Frame{Kind: core.FrameMessage, Wire: make([]byte, 100), Hash: src, Repair: repair,
		Range: &pb.SeqRange{Node: src, Epoch: 1, First: seq, Last: seq, Hops: 3}}
}

// withdraw turns the queued eager copies of a pruned source into
// announcements, keeps repairs and other sources' messages, and gives the
// bytes back to the node's total.
func TestSendQueueWithdraw(t *testing.T) {
	total := newQueueTotal(1 << 20)
	q := newSendQueue(total, 1<<20)
	for _, f := range []core.Frame{msgFrame("s", 1, false), msgFrame("o", 1, false), msgFrame("s", 2, true), msgFrame("s", 3, false)} {
		q.push(f)
	}
	before := total.load()
	if k := q.withdraw("s"); k != 2 {
		t.Fatalf("withdrew %d, want 2 (the repair stays)", k)
	}
	if freed := before - total.load(); freed != 2*(108-48) {
		t.Fatalf("freed %d bytes, want %d", freed, 2*(108-48))
	}
	batch, _, ok := q.take(batchBytes)
	if !ok || len(batch) != 4 {
		t.Fatalf("take = %d frames, want 4", len(batch))
	}
	want := []core.FrameKind{core.FrameIHave, core.FrameMessage, core.FrameMessage, core.FrameIHave}
	for i, f := range batch {
		if f.Kind != want[i] {
			t.Fatalf("frame %d kind %d, want %d", i, f.Kind, want[i])
		}
	}
	if r := batch[0].Range; r.GetFirst() != 1 || r.GetHops() != 3 || !batch[0].Owned {
		t.Fatalf("withdrawn frame range %v owned %v", r, batch[0].Owned)
	}
	if !batch[2].Repair {
		t.Fatal("the repair was withdrawn")
	}
	env := envelope(batch, 0)
	if len(env.GetMessages()) != 1 || len(env.GetRepairs()) != 1 || len(env.GetIhave()) != 2 {
		t.Fatalf("envelope: %d messages, %d repairs, %d ihave ranges", len(env.GetMessages()), len(env.GetRepairs()), len(env.GetIhave()))
	}
}
