package core

import (
	"fmt"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// ValidateMessage checks msg against the limits in c (which must have been
// validated). It returns an error wrapping one of the sentinel errors.
// Proto3 has already guaranteed that strings are valid UTF-8.
func ValidateMessage(c *Config, msg *pb.GossipMessage) error {
	switch {
	case msg == nil:
		return ErrNilMessage
	case msg.GetHash() == "":
		return ErrEmptyHash
	case len(msg.GetHash()) > c.MaxHashBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrHashTooLong, len(msg.GetHash()), c.MaxHashBytes)
	case len(msg.GetFromHash()) > c.MaxHashBytes:
		return fmt.Errorf("%w: from_hash is %d bytes, limit %d", ErrFieldTooLong, len(msg.GetFromHash()), c.MaxHashBytes)
	case len(msg.GetOrigin()) > c.MaxHashBytes:
		return fmt.Errorf("%w: origin is %d bytes, limit %d", ErrFieldTooLong, len(msg.GetOrigin()), c.MaxHashBytes)
	case len(msg.GetPayload())+len(msg.GetBinaryPayload()) > c.MaxPayloadBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(msg.GetPayload())+len(msg.GetBinaryPayload()), c.MaxPayloadBytes)
	case len(msg.GetPayload()) > 0 && len(msg.GetBinaryPayload()) > 0:
		return ErrTwoPayloads
	}
	return nil
}
