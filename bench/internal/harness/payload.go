package harness

import (
	"encoding/binary"
	"fmt"
)

// IDBytes is the size of the message id at the start of every payload.
const IDBytes = 8

// MakePayload returns a new payload of size bytes (at least IDBytes) whose
// first IDBytes bytes are id, big-endian, and the rest a fixed filler
// derived from id. The filler is not compressible to nothing (no system
// under test compresses, but a later one might) and is the same for every
// system.
func MakePayload(id uint64, size int) []byte {
	if size < IDBytes {
		size = IDBytes
	}
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, id)
	x := id*0x9e3779b97f4a7c15 + 1
	for i := IDBytes; i < size; i++ {
		// xorshift: cheap, deterministic, printable-range bytes.
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = 'a' + byte(x%26)
	}
	return p
}

// PayloadID returns the message id at the start of payload; ok is false if
// payload is shorter than IDBytes.
func PayloadID(payload []byte) (id uint64, ok bool) {
	if len(payload) < IDBytes {
		return 0, false
	}
	return binary.BigEndian.Uint64(payload), true
}

// ValidatePayloadSize rejects payload sizes the harness cannot encode.
func ValidatePayloadSize(size int) error {
	if size < IDBytes {
		return fmt.Errorf("payload size %d is below the %d-byte message id", size, IDBytes)
	}
	return nil
}
