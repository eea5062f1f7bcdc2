package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// maxReportedFailures is how many failed lines publish --lines names on
// stderr; the rest are only counted.
const maxReportedFailures = 10

// linesResult is what publish --lines did.
type linesResult struct {
	Published uint64  `json:"published"`
	Failed    uint64  `json:"failed"`
	Skipped   uint64  `json:"skipped_empty"`
	Seconds   float64 `json:"seconds"`
	Rate      float64 `json:"msgs_per_second"`
}

// publishLines publishes every non-empty line of r as one message over one
// NodeService.PublishStream call: a reader goroutine sends while this one
// collects the answers, so the node always has a window of requests to
// work on. Failed lines (answers with a code) are named on stderr, up to
// maxReportedFailures; the command fails when any line failed or the call
// broke, after printing what was published. A line over the node's
// --max-payload is refused on its own; one so large that gRPC refuses the
// request (the payload limit plus room for ids) ends the call.
func (g *globals) publishLines(ctx context.Context, client pbgrpc.NodeServiceClient, r io.Reader, trace bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.PublishStream(ctx)
	if err != nil {
		return g.rpcFailure(ctx, "publish", err, false)
	}
	start := time.Now()
	var res linesResult
	// The reader says which line each request index is; the answers take
	// them in index order and keep the ones not answered yet.
	lineOf := make(map[uint64]uint64)
	var indexed uint64 // the highest index taken from lines
	var longest int    // the longest line sent, for a refusal of the call by size
	lines := make(chan [2]uint64, 1024)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), maxStdinPayload+1)
		var index, line uint64
		for sc.Scan() {
			line++
			if len(sc.Bytes()) == 0 {
				res.Skipped++ // read only here until lines is closed
				continue
			}
			index++
			longest = max(longest, len(sc.Bytes()))
			if err := stream.Send(&pb.PublishRequest{Payload: sc.Bytes(), Trace: trace}); err != nil {
				readErr <- nil // the answer loop sees why (Recv fails)
				return
			}
			lines <- [2]uint64{index, line}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("line %d is longer than %s, the most gossipctl reads (and the largest --max-payload gossipd allows)", line+1, sizeText(maxStdinPayload))
			}
			readErr <- failf("publish: reading stdin: %v; the lines before it were published", err)
			cancel()
			return
		}
		readErr <- stream.CloseSend()
	}()

	reported := 0
	var callErr error
	for {
		resp, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				callErr = err
			}
			break
		}
		for resp.GetIndex() > indexed {
			l, ok := <-lines
			if !ok {
				break
			}
			lineOf[l[0]], indexed = l[1], l[0]
		}
		line := lineOf[resp.GetIndex()]
		delete(lineOf, resp.GetIndex())
		if resp.GetCode() == uint32(codes.OK) {
			res.Published++
			continue
		}
		res.Failed++
		if reported < maxReportedFailures {
			reported++
			fmt.Fprintf(g.stderr, "gossipctl: publish: line %d: %v: %s\n", line, codes.Code(resp.GetCode()), resp.GetError())
		}
	}
	for range lines { // let the reader finish
	}
	rerr := <-readErr
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.Rate = float64(res.Published) / res.Seconds
	}
	var werr error
	if g.json() {
		werr = writeJSON(g.stdout, res)
	} else {
		_, werr = fmt.Fprintf(g.stdout, "published %d messages in %.2fs (%.0f msg/s), %d failed, %d empty lines skipped\n",
			res.Published, res.Seconds, res.Rate, res.Failed, res.Skipped)
	}
	switch {
	case rerr != nil: // first: a read error also cancels the call
		return rerr
	case callErr != nil:
		// A line far over the node's limit is refused by gRPC itself,
		// which ends the call: say so in our words.
		if tl := g.tooLarge(longest, callErr); tl != nil {
			return failf("publish: the call ended at the longest line: %s; published before it ended: %d",
				strings.TrimSuffix(tl.Error(), "; nothing was published"), res.Published)
		}
		return g.rpcFailure(ctx, "publish", callErr, res.Published+res.Failed > 0)
	case res.Failed > 0:
		more := ""
		if res.Failed > maxReportedFailures {
			more = fmt.Sprintf(" (the first %d are named above)", maxReportedFailures)
		}
		return failf("publish: %d of %d lines were not published%s", res.Failed, res.Failed+res.Published, more)
	}
	return output("publish", werr)
}
