package gossip

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// TestStoreAndLogSharePayloads: a node keeps each accepted message twice
// over — serialized in its store (for grafts and anti-entropy) and in its
// delivery log (for subscriptions that resume) — but holds its payload
// once: the delivery's payload is a string over the serialized bytes. The
// retained heap after 40 binary 64 KiB messages reached 3 nodes is about
// one payload per message and node; holding two (as before) fails.
func TestStoreAndLogSharePayloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDCluster(t, 3, Config{}, DefaultLANMembershipConfig(), 4)
		defer c.close()
		const msgs, size = 40, 64 << 10
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ids := make([]string, msgs)
		for i := range ids {
			ids[i] = fmt.Sprintf("big-%02d", i)
			payload := make([]byte, size)
			payload[0] = 0xff // not UTF-8: it travels in binary_payload
			if !c.publish(i%3, ids[i], payload) {
				t.Fatalf("publish %s refused", ids[i])
			}
		}
		c.awaitDelivered(time.Minute, []int{0, 1, 2}, ids)
		time.Sleep(5 * time.Second) // the last ACKs release the streams' copies
		runtime.GC()
		runtime.ReadMemStats(&after)
		perNode := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / (3 * msgs * size)
		t.Logf("retained heap: %.2f payloads per message and node", perNode)
		if perNode > 1.5 {
			t.Errorf("each node retains %.2f copies of every payload, want about 1 (the store's, which the log shares)", perNode)
		}
		for i := range 3 {
			if st := c.node(i).Stats(); st.Stream.Stored != msgs {
				t.Errorf("node %d stores %d messages, want %d (the measure assumes the store keeps them all)", i, st.Stream.Stored, msgs)
			}
		}
	})
}
