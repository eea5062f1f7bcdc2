// Command floor measures what gRPC allows on this machine: the CPU time one
// gossip copy costs over a single bidirectional Gossip.Stream on loopback,
// with nothing of the protocol around it. It is the ceiling the runtime is
// compared with (docs/PERFORMANCE.md, "The floor").
//
// The sender marshals each GossipMessage (100 B payload by default, the
// fields a stream copy carries: hash, origin, sequence node, epoch and
// number, hops, created time), puts --batch of them in one Envelope and
// sends it; the receiver decodes the Envelope, unmarshals every message
// (as the runtime must, to read its id), and answers each Envelope with a
// cumulative ack, as the runtime's streams do. Both ends run in this
// process, so the process CPU time (getrusage: user + system, every
// thread) divided by the copies moved is the cost of one copy, both ends
// included. Allocations are counted with runtime.MemStats over the same
// span.
//
// Both ends use the library's static HTTP/2 flow-control windows
// (gossip.FlowWindowBytes); --window 0 measures with gRPC's default,
// dynamic windows (BDP estimation: a PING, its answer and a WINDOW_UPDATE
// per lone DATA frame).
//
// Usage:
//
//	go run ./cmd/floor                      # batches 1, 16, 64, 256; 200,000 copies each
//	go run ./cmd/floor --batch 64 --copies 1000000 --payload 1024
//	go run ./cmd/floor --window 0           # with gRPC's dynamic windows
//
// The result is a table (or --json): batch size, copies, wall time, copies
// per second, CPU µs per copy, allocations and bytes per copy, and the
// published-message ceiling that follows for a cluster of --nodes nodes on
// --cores cores (each message costs nodes-1 copies).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/bench/internal/harness"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// result is one batch size's measurement.
type result struct {
	Batch         int     `json:"batch"`
	Copies        int     `json:"copies"`
	PayloadBytes  int     `json:"payload_bytes"`
	WallSec       float64 `json:"wall_s"`
	CopiesPerSec  float64 `json:"copies_per_s"`
	CPUMicrosPer  float64 `json:"cpu_us_per_copy"`
	AllocsPerCopy float64 `json:"allocs_per_copy"`
	BytesPerCopy  float64 `json:"bytes_per_copy"`
	// CeilingMsgPerSec is cores / (CPU per copy × (nodes-1)): the most
	// messages per second a cluster of nodes nodes on cores cores could
	// publish if copies cost nothing but this.
	CeilingMsgPerSec float64 `json:"ceiling_msgs_per_s"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	batches := fs.String("batch", "1,16,64,256", "comma-separated copies per Envelope to measure")
	copies := fs.Int("copies", 200_000, "copies moved per batch size")
	payload := fs.Int("payload", 100, "payload bytes per message")
	nodes := fs.Int("nodes", 20, "cluster size for the ceiling column (each message costs nodes-1 copies)")
	cores := fs.Int("cores", runtime.NumCPU(), "cores for the ceiling column")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	window := fs.Int("window", gossip.FlowWindowBytes, "static HTTP/2 flow-control window per stream and connection, bytes (at least 65535); 0: gRPC's dynamic windows")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizes []int
	for _, f := range strings.Split(*batches, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || b < 1 {
			return fmt.Errorf("--batch %q: want positive integers separated by commas", *batches)
		}
		sizes = append(sizes, b)
	}
	if *copies < 1 || *payload < 0 || *nodes < 2 || *cores < 1 {
		return errors.New("--copies and --cores must be at least 1, --nodes at least 2, --payload not negative")
	}
	if *window != 0 && (*window < 65535 || *window > 1<<30) {
		return fmt.Errorf("--window %d: want 0 (dynamic) or 65535 to 1073741824 bytes", *window)
	}
	var srvOpts []grpc.ServerOption
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if *window != 0 {
		w := int32(*window)
		srvOpts = append(srvOpts, grpc.StaticStreamWindowSize(w), grpc.StaticConnWindowSize(w))
		dialOpts = append(dialOpts, grpc.WithStaticStreamWindowSize(w), grpc.WithStaticConnWindowSize(w))
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer(srvOpts...)
	pbgrpc.RegisterGossipServer(srv, &sink{})
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), dialOpts...)
	if err != nil {
		return err
	}
	defer conn.Close()

	var results []result
	for _, b := range sizes {
		r, err := measure(pbgrpc.NewGossipClient(conn), b, *copies, *payload)
		if err != nil {
			return fmt.Errorf("batch %d: %w", b, err)
		}
		r.CeilingMsgPerSec = float64(*cores) / (r.CPUMicrosPer * 1e-6 * float64(*nodes-1))
		results = append(results, r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "batch\tcopies\tpayload B\twall\tcopies/s\tCPU µs/copy\tallocs/copy\tB/copy\tceiling msg/s (N=%d, %d cores)\t\n", *nodes, *cores)
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.2fs\t%.0f\t%.2f\t%.1f\t%.0f\t%.0f\t\n", r.Batch, r.Copies, r.PayloadBytes,
			r.WallSec, r.CopiesPerSec, r.CPUMicrosPer, r.AllocsPerCopy, r.BytesPerCopy, r.CeilingMsgPerSec)
	}
	return tw.Flush()
}

// measure moves copies messages in envelopes of batch over a new stream,
// with at most 64 envelopes unacknowledged (a window, as the runtime's
// streams keep), and returns the cost.
func measure(c pbgrpc.GossipClient, batch, copies, payloadBytes int) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := c.Stream(ctx)
	if err != nil {
		return result{}, err
	}
	const window = 64
	acks := make(chan error, 1)
	acked := make(chan uint64, window)
	go func() {
		for {
			env, err := st.Recv()
			if err != nil {
				acks <- err
				return
			}
			acked <- env.GetAck()
		}
	}()

	body := strings.Repeat("x", payloadBytes)
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c0, t0 := harness.CPUTime(), time.Now()
	var seq, inflight uint64
	for sent := 0; sent < copies; {
		n := min(batch, copies-sent)
		env := &pb.Envelope{Messages: make([][]byte, 0, n)}
		for range n {
			seq++
			b, err := proto.Marshal(&pb.GossipMessage{
				Hash: "node-01/" + strconv.FormatUint(seq, 10), Origin: "node-01", FromHash: "node-01",
				Payload: body, SeqNode: "node-01", SeqEpoch: 1, Seq: seq, Hops: 1,
				CreatedUnixNano: t0.UnixNano(),
			})
			if err != nil {
				return result{}, err
			}
			env.Messages = append(env.Messages, b)
		}
		for inflight >= window {
			select {
			case <-acked:
				inflight--
			case err := <-acks:
				return result{}, err
			}
		}
		if err := st.Send(env); err != nil {
			return result{}, err
		}
		inflight++
		sent += n
	}
	for inflight > 0 {
		select {
		case <-acked:
			inflight--
		case err := <-acks:
			return result{}, err
		}
	}
	wall, cpu := time.Since(t0), harness.CPUTime()-c0
	runtime.ReadMemStats(&m1)
	st.CloseSend()
	return result{
		Batch: batch, Copies: copies, PayloadBytes: payloadBytes, WallSec: wall.Seconds(),
		CopiesPerSec:  float64(copies) / wall.Seconds(),
		CPUMicrosPer:  cpu.Seconds() * 1e6 / float64(copies),
		AllocsPerCopy: float64(m1.Mallocs-m0.Mallocs) / float64(copies),
		BytesPerCopy:  float64(m1.TotalAlloc-m0.TotalAlloc) / float64(copies),
	}, nil
}

// sink is the receiving end: it decodes every message of every envelope
// (the runtime must, to read ids and sequence numbers) and answers each
// envelope with a cumulative ack of the messages received so far.
type sink struct {
	pbgrpc.UnimplementedGossipServer
}

func (*sink) Stream(st grpc.BidiStreamingServer[pb.Envelope, pb.Envelope]) error {
	var received uint64
	var m pb.GossipMessage
	for {
		env, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		for _, b := range env.GetMessages() {
			if err := proto.Unmarshal(b, &m); err != nil {
				return err
			}
			received++
		}
		if err := st.Send(&pb.Envelope{Ack: received}); err != nil {
			return err
		}
	}
}
