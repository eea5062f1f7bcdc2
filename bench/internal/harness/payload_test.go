package harness

import (
	"bytes"
	"math"
	"testing"
)

func TestPayloadID(t *testing.T) {
	for _, tc := range []struct {
		id   uint64
		size int
		want int // len
	}{
		{0, 100, 100},
		{1, 8, 8},
		{math.MaxUint64, 1024, 1024},
		{0x0102030405060708, 65536, 65536},
		{42, 3, 8}, // below IDBytes: padded up to the id
	} {
		p := MakePayload(tc.id, tc.size)
		if len(p) != tc.want {
			t.Errorf("MakePayload(%d, %d): len %d, want %d", tc.id, tc.size, len(p), tc.want)
		}
		got, ok := PayloadID(p)
		if !ok || got != tc.id {
			t.Errorf("PayloadID(MakePayload(%d, %d)) = %d, %v", tc.id, tc.size, got, ok)
		}
	}
	if !bytes.Equal(MakePayload(0x0102030405060708, 8), []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Error("id is not big-endian")
	}
	if !bytes.Equal(MakePayload(7, 100), MakePayload(7, 100)) {
		t.Error("MakePayload is not deterministic")
	}
	for _, p := range [][]byte{nil, {}, {1, 2, 3, 4, 5, 6, 7}} {
		if _, ok := PayloadID(p); ok {
			t.Errorf("PayloadID(%v) ok", p)
		}
	}
	if ValidatePayloadSize(7) == nil || ValidatePayloadSize(8) != nil {
		t.Error("ValidatePayloadSize")
	}
}
