package gossip

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// PublishStreamWindow is how many requests of one PublishStream call the
// node works on at once: enough that a stream's publishes share the
// delivery log's group commits (each Publish waits for its commit) and the
// streams' batches, few enough that one client cannot queue unbounded
// work. The client's further requests wait in the stream's flow control.
const PublishStreamWindow = 256

// PublishStream serves NodeService.PublishStream: every request is a
// Publish, up to PublishStreamWindow at once, each answered with its
// position in the stream and its outcome. One goroutine sends the answers
// (a gRPC stream allows one sender); the call returns once the client has
// closed its side and every answer is sent, or when the stream breaks.
func (s nodeService) PublishStream(stream grpc.BidiStreamingServer[pb.PublishRequest, pb.PublishStreamResponse]) error {
	ctx := stream.Context()
	window := make(chan struct{}, PublishStreamWindow)
	answers := make(chan *pb.PublishStreamResponse, PublishStreamWindow)
	sent := make(chan error, 1)
	go func() {
		var err error
		for a := range answers {
			if err == nil {
				err = stream.Send(a)
			}
			// After a failed Send the answers are drained, not sent: the
			// stream is broken and the workers must not block.
		}
		sent <- err
	}()

	var workers sync.WaitGroup
	recvErr := func() error {
		for index := uint64(1); ; index++ {
			req, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
			workers.Go(func() {
				defer func() { <-window }()
				answers <- s.publishOne(stream, index, req)
			})
		}
	}()
	workers.Wait()
	close(answers)
	if err := <-sent; err != nil {
		return err
	}
	return recvErr
}

// publishOne publishes one request of a PublishStream call and says how it
// went: the id and ack, or the status Publish failed with.
func (s nodeService) publishOne(stream grpc.ServerStream, index uint64, req *pb.PublishRequest) *pb.PublishStreamResponse {
	id, ack, err := s.n.Publish(stream.Context(), req.GetId(), req.GetPayload(), requestOptions(req)...)
	if err != nil {
		st := status.Convert(err) // Publish returns status errors; anything else is Unknown
		return &pb.PublishStreamResponse{Index: index, Code: uint32(st.Code()), Error: st.Message()}
	}
	return &pb.PublishStreamResponse{Index: index, Id: id, Ack: ack}
}
