package durable

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCommit measures the group commit as a node's publishers use
// it: each of W writers appends a 100 B record and waits for its commit
// (OnCommit) before the next, as Publish waits for its acknowledgement.
// records/s is the log's throughput; commits/record is how many bbolt
// transactions (each two fdatasyncs under --sync always) a record costs,
// 1/commits-per-record the mean batch. logs=20 runs 20 logs side by side
// on the same disk, as the bench suite's N=20 cluster does (records/s is
// then the sum over the logs).
func BenchmarkCommit(b *testing.B) {
	for _, mode := range []string{"always", "never"} {
		for _, c := range []struct{ logs, writers int }{{1, 1}, {1, 8}, {1, 64}, {20, 1}, {20, 8}} {
			b.Run(fmt.Sprintf("sync=%s/logs=%d/writers=%d", mode, c.logs, c.writers), func(b *testing.B) {
				benchCommit(b, mode, c.logs, c.writers)
			})
		}
	}
}

func benchCommit(b *testing.B, mode string, logs, writers int) {
	policy, err := ParseSync(mode)
	if err != nil {
		b.Fatal(err)
	}
	var commits atomic.Int64
	o := Options{
		NodeID: "bench", Retention: time.Hour, RetentionBytes: 1 << 30,
		KeepDelivered: time.Hour, Sync: policy,
		OnCommit: func(batch []Record) {
			commits.Add(1)
			for i := range batch {
				batch[i].Note.(chan struct{}) <- struct{}{}
			}
		},
	}
	ls := make([]*Log, logs)
	for i := range ls {
		o.Dir = b.TempDir()
		l, _, err := Open(o)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ls[i] = l
	}
	payload := string(make([]byte, 100))
	var next atomic.Int64 // records handed out
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range logs * writers {
		l := ls[w%logs]
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{}, 1)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				r := Record{Hash: fmt.Sprint(w, "-", i), Origin: "o", SeqNode: "o", SeqEpoch: 1, Seq: uint64(i), Payload: payload, Note: done}
				if _, err := l.Append(r); err != nil {
					b.Error(err)
					return
				}
				<-done
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(commits.Load())/float64(b.N), "commits/record")
}
