package gossip

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestDefaultPathSmoke(t *testing.T) {
	for _, tc := range []struct{ n, sources int }{{100, 100}, {100, 5}, {200, 5}} {
		t.Run(fmt.Sprint(tc.n, "/", tc.sources), func(t *testing.T) {
			wall := time.Now()
			synctest.Test(t, func(t *testing.T) {
				c := newDCluster(t, tc.n, Config{}, DefaultLANMembershipConfig(), 1)
				defer c.close()
				c.net.SetDelay(2*time.Millisecond, 3*time.Millisecond)
				msgs := ids("m", 200)
				for k, id := range msgs {
					c.publish(k%tc.sources, id, []byte("payload "+id))
					time.Sleep(10 * time.Millisecond)
				}
				c.awaitDelivered(time.Minute, c.up(), msgs)
				t.Log(c.report(c.up(), msgs))
			})
			t.Logf("wall %v", time.Since(wall))
		})
	}
}
