package gossip

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpc-gossip/gossip/memnet"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// FuzzPutMessageToClientBytes feeds arbitrary request bytes through the
// server's decode path (lenientCodec) and handler: the node must answer
// with an ACK for the decoded hash or with InvalidArgument /
// ResourceExhausted, never panic, and keep serving.
func FuzzPutMessageToClientBytes(f *testing.F) {
	for _, m := range []*pb.GossipMessage{
		{Hash: "h", FromHash: "x", Payload: "hello"},
		{Hash: "h2", Origin: "o", Hops: 7, CreatedUnixNano: 1},
		{},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte{0x0a, 0x02, 0xc3, 0x28})

	node, err := New("fuzz", "mem-fuzz", nil, nil, nil, nil,
		WithTransport(memnet.New(1).Transport("mem-fuzz")), WithConfig(Config{MaxPayloadBytes: 64}))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { node.Close() })
	codec := lenientCodec{encoding.GetCodecV2(encproto.Name)}

	f.Fuzz(func(t *testing.T, data []byte) {
		dec := func(v any) error { return codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, v) }
		resp, err := node.putHandler(node, context.Background(), dec, nil)
		if err != nil {
			if c := status.Code(err); c != codes.InvalidArgument && c != codes.ResourceExhausted {
				t.Fatalf("code %v for %x: %v", c, data, err)
			}
			return
		}
		var want pb.GossipMessage
		if err := proto.Unmarshal(data, &want); err != nil {
			t.Fatalf("handler accepted bytes proto rejects: %v", err)
		}
		if ack := resp.(*pb.GossipAck); ack.GetHash() != want.GetHash() || ack.GetFrom() != "fuzz" {
			t.Fatalf("ack %v for %v", ack, &want)
		}
	})
}
