//go:build crash

// The crash loop (make test-crash): real gossipd processes with --data-dir
// killed with SIGKILL and restarted while a publisher runs. It is behind
// the crash build tag because it runs for about a minute and a half.

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// crashNode is one gossipd of the loop: its fixed address and data dir,
// and the process of its current life.
type crashNode struct {
	id, addr, dir string
	mu            sync.Mutex
	p             *proc
	lives         int
}

// resumer follows one node's log by offset across the node's restarts:
// each stream from the offset after the last one seen. It records every
// (offset, id) and any gap or duplicate.
type resumer struct {
	mu       sync.Mutex
	ids      []string // by offset - 1
	count    map[string]int
	problems []string
	resumes  int
}

func (r *resumer) run(ctx context.Context, api pbgrpc.NodeServiceClient) {
	for ctx.Err() == nil {
		r.mu.Lock()
		next := uint64(len(r.ids)) + 1
		r.resumes++
		r.mu.Unlock()
		stream, err := api.Subscribe(ctx, &pb.SubscribeRequest{Buffer: 1 << 16, Start: &pb.SubscribeRequest_FromOffset{FromOffset: next}})
		for err == nil {
			var m *pb.SubscribeResponse
			if m, err = stream.Recv(); err != nil {
				break
			}
			r.mu.Lock()
			switch {
			case m.GetOffset() != uint64(len(r.ids))+1:
				r.problems = append(r.problems, fmt.Sprintf("offset %d after %d", m.GetOffset(), len(r.ids)))
			case m.GetMissed() > 0:
				r.problems = append(r.problems, fmt.Sprintf("missed %d before offset %d", m.GetMissed(), m.GetOffset()))
			}
			r.ids = append(r.ids, m.GetId())
			r.count[m.GetId()]++
			r.mu.Unlock()
		}
		if status.Code(err) == codes.OutOfRange {
			r.mu.Lock()
			r.problems = append(r.problems, "resume: "+err.Error())
			r.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *resumer) has(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[id]
}

// TestCrashLoop: 3 gossipd with --data-dir, a publisher through all of
// them, CRASH_CYCLES (default 15) kill -9 + restart of random nodes
// (restarted without --join: they rejoin the members they saved).
// At the end every node's log holds every acknowledged publish exactly
// once (and no message twice), a subscriber that resumed by offset across
// every restart saw no gap and no duplicate, and a gossipctl subscribe
// --offset-file killed with SIGKILL and run again missed nothing.
func TestCrashLoop(t *testing.T) {
	const n = 3
	cycles := envInt("CRASH_CYCLES", 15)
	rate := envInt("CRASH_RATE", 200) // messages per second
	nodes := make([]*crashNode, n)
	base := t.TempDir()
	for i := range nodes {
		nodes[i] = &crashNode{id: fmt.Sprintf("c%d", i), addr: freePort(t), dir: filepath.Join(base, fmt.Sprintf("c%d", i))}
	}
	startNode := func(i int) {
		c := nodes[i]
		args := []string{"--id", c.id, "--listen", c.addr, "--admin-listen", "", "--log-format", "json", "--log-level", "warn", "--data-dir", c.dir}
		// First lives join node 0; restarts get no --join: they rejoin the
		// members their previous life saved in --data-dir.
		if c.lives == 0 && i != 0 {
			args = append(args, "--join", nodes[0].addr)
		}
		p := start(t, nil, "gossipd", args...)
		// --log-level warn: started is not logged; the listener is up once
		// the process answers.
		cc := dial(t, c.addr)
		deadline := time.Now().Add(15 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := pbgrpc.NewNodeServiceClient(cc).Status(ctx, &pb.StatusRequest{})
			cancel()
			if err == nil {
				break
			}
			select {
			case <-p.exited:
				t.Fatalf("%s exited: %v\n%s", c.id, p.exitErr, p.err.snapshot())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not answering: %v", c.id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.mu.Lock()
		c.p = p
		c.lives++
		c.mu.Unlock()
	}
	for i := range nodes {
		startNode(i)
	}
	apis := make([]pbgrpc.NodeServiceClient, n)
	for i, c := range nodes {
		apis[i] = pbgrpc.NewNodeServiceClient(dial(t, c.addr))
	}
	// Wait for the cluster: a publish on each node reaches the others.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make([]*resumer, n)
	var wg sync.WaitGroup
	for i := range res {
		res[i] = &resumer{count: map[string]int{}}
		wg.Go(func() { res[i].run(ctx, apis[i]) })
	}
	waitAll := func(what string, limit time.Duration, ids []string) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			missing, example := 0, ""
			for i, r := range res {
				for _, id := range ids {
					if r.has(id) == 0 {
						if missing == 0 {
							example = fmt.Sprintf("%s lacks %s", nodes[i].id, id)
						}
						missing++
					}
				}
			}
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d deliveries missing after %v (%s)", what, missing, limit, example)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	warm := []string{"warm-0", "warm-1", "warm-2"}
	for i, id := range warm {
		for {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := apis[i].Publish(pctx, &pb.PublishRequest{Id: id, Payload: []byte(id)})
			pcancel()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitAll("warm-up", 30*time.Second, warm)

	// gossipctl subscribe --offset-file on node 0, killed and run again.
	posFile := filepath.Join(base, "pos")
	var ctlProcs []*proc // every gossipctl subscribe run, in order
	startCtl := func() *proc {
		p := start(t, nil, "gossipctl", "--addr", nodes[0].addr, "subscribe", "--offset-file", posFile, "--from-earliest")
		ctlProcs = append(ctlProcs, p)
		return p
	}
	exited := func(p *proc) bool {
		select {
		case <-p.exited:
			return true
		default:
			return false
		}
	}
	// collectCtl reads every line every run printed: offset → id, and
	// how many lines repeated an offset already printed.
	collectCtl := func() (seen map[uint64]string, lines int) {
		seen = map[uint64]string{}
		for _, p := range ctlProcs {
			for _, line := range p.out.snapshot() {
				var m struct {
					Offset uint64 `json:"offset"`
					ID     string `json:"id"`
				}
				if json.Unmarshal([]byte(line), &m) != nil {
					continue
				}
				lines++
				seen[m.Offset] = m.ID
			}
		}
		return seen, lines
	}

	// The publisher: rate messages/s through every node in turn; a
	// publish that fails (its node is down or not ready) is not
	// acknowledged and is not retried under its id.
	var pubMu sync.Mutex
	acked := []string{}
	attempts := 0
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubWG sync.WaitGroup
	pubWG.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-pubCtx.Done():
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("p-%06d", k)
			pctx, pcancel := context.WithTimeout(pubCtx, time.Second)
			_, err := apis[k%n].Publish(pctx, &pb.PublishRequest{Id: id, Payload: []byte(id)})
			pcancel()
			pubMu.Lock()
			attempts++
			if err == nil {
				acked = append(acked, id)
			}
			pubMu.Unlock()
		}
	})

	// The killer.
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	ctl := startCtl()
	began := time.Now()
	for cycle := range cycles {
		time.Sleep(time.Duration(500+rnd.IntN(1500)) * time.Millisecond)
		i := rnd.IntN(n)
		c := nodes[i]
		c.mu.Lock()
		p := c.p
		c.mu.Unlock()
		p.cmd.Process.Kill() // SIGKILL
		<-p.exited
		if cycle%3 == 0 { // the subscriber process too
			ctl.cmd.Process.Kill()
			<-ctl.exited
		}
		time.Sleep(time.Duration(200+rnd.IntN(1500)) * time.Millisecond)
		startNode(i)
		if exited(ctl) { // killed, or ended with its node
			ctl = startCtl()
		}
	}
	time.Sleep(2 * time.Second)
	stopPub()
	pubWG.Wait()
	run := time.Since(began)
	pubMu.Lock()
	ackedIDs := append([]string(nil), acked...)
	tried := attempts
	pubMu.Unlock()

	waitAll("after the loop", 60*time.Second, ackedIDs)
	// The offset-file subscriber catches up with node 0's log.
	if exited(ctl) {
		ctl = startCtl()
	}
	res[0].mu.Lock()
	want := len(res[0].ids)
	res[0].mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if seen, _ := collectCtl(); len(seen) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctl.stop(t, os.Interrupt, 5*time.Second)
	ctlSeen, ctlLines := collectCtl()
	cancel()
	wg.Wait()

	for i, r := range res {
		r.mu.Lock()
		for _, p := range r.problems {
			t.Errorf("%s: subscriber resuming by offset: %s", nodes[i].id, p)
		}
		dups := 0
		for id, k := range r.count {
			if k > 1 {
				dups++
				if dups <= 5 {
					t.Errorf("%s: %s is in the log %d times", nodes[i].id, id, k)
				}
			}
		}
		lost := 0
		for _, id := range ackedIDs {
			if r.count[id] == 0 {
				lost++
			}
		}
		if lost > 0 || dups > 0 {
			t.Errorf("%s: %d acknowledged publishes missing from its log, %d messages logged more than once", nodes[i].id, lost, dups)
		}
		t.Logf("%s: %d lives, log 1..%d, subscriber resumed %d times, duplicates %d, lost %d", nodes[i].id, nodes[i].lives, len(r.ids), r.resumes-1, dups, lost)
		r.mu.Unlock()
	}
	// Node 0's log as gossipctl --offset-file printed it across kills.
	res[0].mu.Lock()
	for o := uint64(1); o <= uint64(len(res[0].ids)); o++ {
		if id, ok := ctlSeen[o]; !ok || id != res[0].ids[o-1] {
			t.Errorf("gossipctl subscribe --offset-file: offset %d is %q, the log has %q", o, id, res[0].ids[o-1])
			break
		}
	}
	res[0].mu.Unlock()
	t.Logf("crash loop: %d kill -9 cycles in %v, %d publishes tried, %d acknowledged; gossipctl subscribe --offset-file: %d runs, %d lines for %d offsets (printed again after a kill: %d)",
		cycles, run.Round(time.Second), tried, len(ackedIDs), len(ctlProcs), ctlLines, len(ctlSeen), ctlLines-len(ctlSeen))
	for _, c := range nodes {
		c.mu.Lock()
		c.p.stop(t, os.Interrupt, 15*time.Second)
		c.mu.Unlock()
	}
}
