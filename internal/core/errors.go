package core

import "errors"

// Validation errors. The runtime maps them to gRPC status codes at the RPC
// boundary (InvalidArgument, or ResourceExhausted for ErrPayloadTooLarge).
var (
	ErrNilMessage      = errors.New("message is nil")
	ErrEmptyHash       = errors.New("message hash is empty")
	ErrHashTooLong     = errors.New("message hash is too long")
	ErrFieldTooLong    = errors.New("node id field is too long")
	ErrPayloadTooLarge = errors.New("payload exceeds the maximum size")
	ErrTwoPayloads     = errors.New("payload and binary_payload are both set")

	// Neighbour management errors.
	ErrEmptyNeighbor = errors.New("neighbour id and endpoint must be non-empty")
	ErrSelfNeighbor  = errors.New("a node cannot be its own neighbour")
)
