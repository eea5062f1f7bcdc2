package gossip

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// publishFast publishes count messages of size bytes on node i from
// inflight goroutines, each as fast as the node acknowledges, and returns
// the ids acknowledged.
func (c *dcluster) publishFast(i, count, size, inflight int, prefix string) []string {
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	next := 0
	payload := make([]byte, size)
	for range inflight {
		wg.Go(func() {
			for {
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= count {
					return
				}
				id := fmt.Sprintf("%s-%05d", prefix, k)
				if c.publish(i, id, payload) {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return acked
}

// TestLoadLargePayloadsNoLoss is fault 6 of issue 10: on a healthy
// 3-node cluster, large messages published as fast as they are
// acknowledged must all be delivered. The stores and queues are scaled
// down with the payload so that the run stays small: a store of 8
// messages, a stream queue of 1.
func TestLoadLargePayloadsNoLoss(t *testing.T) {
	for _, tc := range []struct {
		size, count int
	}{{1 << 20, 200}, {256 << 10, 400}, {64 << 10, 800}} {
		t.Run(fmt.Sprint(tc.size>>10, "KiB"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{MaxPayloadBytes: 2 << 20, StoreBytes: 8 * tc.size, StreamQueueBytes: tc.size, MaxQueuedBytes: 8 * tc.size}
				c := newDCluster(t, 3, cfg, DefaultLANMembershipConfig(), 5)
				defer c.close()
				c.net.SetDelay(time.Millisecond, time.Millisecond)
				c.net.SetStreamWindow(2 * tc.size)
				acked := c.publishFast(0, tc.count, tc.size, 4, "big")
				c.awaitDelivered(time.Minute, c.up(), acked)
				r := c.report(c.up(), acked)
				t.Logf("%d acked of %d; %s", len(acked), tc.count, r)
				if len(acked) != tc.count {
					t.Errorf("%d publishes refused: the cluster is healthy, it should only slow them down", tc.count-len(acked))
				}
				for _, i := range c.up() {
					st := c.node(i).Stats()
					t.Logf("node %d: deferred %d, frames dropped %d, grafts %d, repaired %d, publish waits %d", i,
						st.Stream.Deferred, st.Stream.FramesDropped, st.Stream.GraftsSent, st.Stream.Repaired, st.Stream.PublishWaits)
				}
				r.check(t)
			})
		})
	}
}
