package harness

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestQuorum(t *testing.T) {
	for _, tc := range []struct {
		nodes          int
		k50, k99, kAll int32
	}{
		{2, 1, 1, 1},
		{5, 2, 4, 4},
		{20, 10, 19, 19},   // 19 receivers: ceil(9.5)=10, ceil(18.81)=19
		{50, 25, 49, 49},   // 49: ceil(24.5)=25, ceil(48.51)=49
		{101, 50, 99, 100}, // 100: 50, 99, 100
		{201, 100, 198, 200},
	} {
		r, err := NewRecorder(tc.nodes)
		if err != nil {
			t.Fatal(err)
		}
		if r.k50 != tc.k50 || r.k99 != tc.k99 || r.kAll != tc.kAll {
			t.Errorf("N=%d: k = %d/%d/%d, want %d/%d/%d", tc.nodes, r.k50, r.k99, r.kAll, tc.k50, tc.k99, tc.kAll)
		}
	}
	if _, err := NewRecorder(1); err == nil {
		t.Error("NewRecorder(1) succeeded")
	}
}

// TestRecorderQuantileTimes delivers one message to 5 nodes at known
// times: the publisher's receipt, duplicates and unknown ids must not
// move the quantile times.
func TestRecorderQuantileTimes(t *testing.T) {
	r, _ := NewRecorder(5) // 4 receivers: k50 = 2, k99 = kAll = 4
	id, err := r.Add(1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	r.Published(id, 1100, nil)
	p := MakePayload(id, 100)

	r.deliverAt(2, p, 1200) // the publisher: ignored
	r.deliverAt(0, p, 1300) // 1st
	r.deliverAt(0, p, 1350) // duplicate
	if r.Snapshot(id).T50 != 0 {
		t.Fatal("T50 set after 1 of 4 receivers")
	}
	r.deliverAt(4, p, 1400) // 2nd: 50%
	r.deliverAt(1, p, 1500) // 3rd
	if r.Complete(id) {
		t.Fatal("complete after 3 of 4")
	}
	r.deliverAt(3, p, 1600) // 4th: 99% and 100%
	r.deliverAt(3, p, 1700) // duplicate
	r.deliverAt(5, p, 1800) // no such node
	r.deliverAt(0, MakePayload(id+1, 100), 1900)
	r.deliverAt(0, []byte{1}, 2000)

	m := r.Snapshot(id)
	want := Msg{Sched: 1000, PubAt: 1100, State: statePublished, Count: 4, T50: 1400, T99: 1600, TAll: 1600}
	if m != want {
		t.Errorf("Snapshot = %+v, want %+v", m, want)
	}
	if !r.Complete(id) {
		t.Error("not complete")
	}
	dups, self, unknown := r.Counters()
	if dups != 2 || self != 1 || unknown != 3 {
		t.Errorf("dups, self, unknown = %d, %d, %d; want 2, 1, 3", dups, self, unknown)
	}
}

// TestRecorderConcurrent checks counts under concurrent delivery (run
// with -race) across chunk boundaries.
func TestRecorderConcurrent(t *testing.T) {
	const nodes, msgs = 70, chunkSize + 10 // 2 bitmap words, 2 chunks
	r, _ := NewRecorder(nodes)
	for i := range msgs {
		id, err := r.Add(int64(i), i%nodes)
		if err != nil {
			t.Fatal(err)
		}
		r.Published(id, int64(i), nil)
	}
	var wg sync.WaitGroup
	for node := range nodes {
		wg.Go(func() {
			for id := range uint64(msgs) {
				p := MakePayload(id, 16)
				r.deliverAt(node, p, int64(id)+5)
				r.deliverAt(node, p, int64(id)+6)
			}
		})
	}
	wg.Wait()
	for id := range uint64(msgs) {
		m := r.Snapshot(id)
		if m.Count != nodes-1 || m.TAll == 0 || m.T50 == 0 || m.T99 == 0 {
			t.Fatalf("message %d: %+v", id, m)
		}
	}
	dups, self, _ := r.Counters()
	if want := uint64(msgs * (nodes - 1)); dups != want {
		t.Errorf("dups = %d, want %d", dups, want)
	}
	if want := uint64(2 * msgs); self != want {
		t.Errorf("self = %d, want %d", self, want)
	}
}

// TestRecorderLacking: Lacking names the receivers that lack a message,
// never its publisher; Acknowledged tells a publish that returned nil from
// one that failed (whose missing receipts are not a loss).
func TestRecorderLacking(t *testing.T) {
	r, _ := NewRecorder(5)
	acked, _ := r.Add(0, 0)
	failed, _ := r.Add(0, 1)
	r.Published(acked, 0, nil)
	r.Published(failed, 0, errors.New("refused"))
	r.deliverAt(2, MakePayload(acked, 16), 10)
	r.deliverAt(0, MakePayload(acked, 16), 10) // the publisher
	perNode := make([]int, 5)
	if n := r.Lacking(acked, perNode); n != 3 {
		t.Errorf("Lacking(acked) = %d, want 3 (nodes 1, 3, 4)", n)
	}
	if n := r.Lacking(failed, perNode); n != 4 {
		t.Errorf("Lacking(failed) = %d, want 4", n)
	}
	if want := []int{1, 1, 1, 2, 2}; !slices.Equal(perNode, want) {
		t.Errorf("per node %v, want %v", perNode, want)
	}
	if !r.Acknowledged(acked) || r.Acknowledged(failed) || r.Acknowledged(99) {
		t.Error("Acknowledged")
	}
	if n := r.Lacking(99, perNode); n != 0 {
		t.Errorf("Lacking(unknown id) = %d", n)
	}
}
