package gossip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Publish injects a new message at this node and returns its id and the
// node's ACK. With an empty id the node assigns a unique one (128 random
// bits, hex). payload may be any bytes: valid UTF-8 travels in the seed's
// payload field, anything else in binary_payload. An id the node has
// already seen fails with ErrAlreadySeen (nothing is sent again). With
// Traced() (or when Config.TraceSample picks it) the message is traced:
// see Trace.
func (n *GossipNode) Publish(ctx context.Context, id string, payload []byte, opts ...PublishOption) (string, *pb.GossipAck, error) {
	if id == "" {
		id = newMessageID()
	}
	var o publishOptions
	for _, opt := range opts {
		opt.applyPublish(&o)
	}
	msg := &pb.GossipMessage{Hash: id, FromHash: n.Hash, CreatedUnixNano: time.Now().UnixNano(), Trace: n.sample(o)}
	if utf8.Valid(payload) {
		msg.Payload = string(payload)
	} else {
		msg.BinaryPayload = payload
	}
	ack, err := n.PutMessageToClient(ctx, msg)
	if err != nil {
		return "", nil, err
	}
	if ack.GetDuplicate() {
		return id, ack, asRPCError(fmt.Errorf("%w: %q", ErrAlreadySeen, logID(id)))
	}
	return id, ack, nil
}

// newMessageID returns 128 random bits in hex.
func newMessageID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
