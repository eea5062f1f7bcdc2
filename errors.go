package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/core"
)

// Errors returned by GossipNode methods. They can be tested with
// errors.Is; at the RPC boundary they become gRPC status codes
// (see statusCode).
var (
	ErrNilMessage      = core.ErrNilMessage      // InvalidArgument
	ErrEmptyHash       = core.ErrEmptyHash       // InvalidArgument
	ErrHashTooLong     = core.ErrHashTooLong     // InvalidArgument
	ErrFieldTooLong    = core.ErrFieldTooLong    // InvalidArgument
	ErrPayloadTooLarge = core.ErrPayloadTooLarge // ResourceExhausted
	ErrTwoPayloads     = core.ErrTwoPayloads     // InvalidArgument
	ErrEmptyNeighbor   = core.ErrEmptyNeighbor
	ErrSelfNeighbor    = core.ErrSelfNeighbor

	// ErrClosed is returned by every method of a closed node or factory,
	// and by a second Close. It is net.ErrClosed.
	ErrClosed = net.ErrClosed // Unavailable
	// ErrBusy means the node could not take the message in time (its
	// delivery queue stayed full until the caller's deadline); the
	// message was not recorded, and a retry will be treated as new.
	ErrBusy = errors.New("node busy: delivery queue full")
	// ErrSaturated is returned by Publish (and PutMessageToClient for a
	// new message) when the node stayed saturated — more than
	// Config.MaxQueuedBytes queued for its neighbours' streams — until
	// the caller's deadline. Nothing was recorded.
	ErrSaturated = errors.New("node saturated: neighbours' stream queues full") // ResourceExhausted
	// ErrAlreadySeen is returned by Publish for an id the node has seen.
	ErrAlreadySeen = errors.New("message id already seen") // AlreadyExists
	// ErrNotReady is returned for a new message by a node with
	// Config.RefuseUntilReady that has not joined a cluster yet: nothing
	// was recorded; retry once it reports ready (health SERVING).
	ErrNotReady = errors.New("node not ready: it has not joined a cluster yet (no seed has answered); nothing was published, retry when it reports SERVING")
	// ErrNotJoined is returned by Join when no seed answered.
	ErrNotJoined = errors.New("no seed answered") // Unavailable

	errSubscriptionBuffer = fmt.Errorf("subscription buffer must be between 0 and %d", MaxSubscriptionBuffer) // InvalidArgument

	// ErrServerStarted is returned by a second StartGRPCServer.
	ErrServerStarted = errors.New("gRPC server already started")
)

// statusCode is the gRPC code of an error from the node.
func statusCode(err error) codes.Code {
	switch {
	case errors.Is(err, ErrPayloadTooLarge), errors.Is(err, ErrSaturated), errors.Is(err, ErrSlowConsumer):
		return codes.ResourceExhausted
	case errors.Is(err, ErrNilMessage), errors.Is(err, ErrEmptyHash),
		errors.Is(err, ErrHashTooLong), errors.Is(err, ErrFieldTooLong),
		errors.Is(err, ErrTwoPayloads), errors.Is(err, errSubscriptionBuffer),
		errors.Is(err, ErrEmptyNeighbor), errors.Is(err, ErrSelfNeighbor):
		return codes.InvalidArgument
	case errors.Is(err, ErrAlreadySeen):
		return codes.AlreadyExists
	case errors.Is(err, ErrOutOfRange):
		return codes.OutOfRange
	case errors.Is(err, ErrStateFailed):
		return codes.Unavailable
	case errors.Is(err, ErrClosed), errors.Is(err, ErrBusy), errors.Is(err, ErrNotJoined), errors.Is(err, ErrNotReady):
		return codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return status.Code(err)
}

// rpcError carries a node error across the RPC boundary: errors.Is sees
// the sentinel, and gRPC (through GRPCStatus) sends the right code.
type rpcError struct{ err error }

func (e *rpcError) Error() string { return e.err.Error() }
func (e *rpcError) Unwrap() error { return e.err }

// GRPCStatus is what grpc-go uses to turn the error into a status.
func (e *rpcError) GRPCStatus() *status.Status { return status.New(statusCode(e.err), e.err.Error()) }

func asRPCError(err error) error {
	if err == nil {
		return nil
	}
	return &rpcError{err: err}
}

// retryable says whether a failed send may succeed if tried again: the
// peer was unreachable, slow or restarting, as opposed to a rejection of
// the message itself.
func retryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}
