package durable

import (
	"bytes"
	"errors"
	"testing"
)

// A corrupted record is an error wrapping ErrCorrupt, never a panic; a
// record that decodes re-encodes to the same bytes.
func FuzzUnmarshalRecord(f *testing.F) {
	f.Add(MarshalRecord(&Record{Offset: 1, At: 5, Hash: "h", Origin: "o", From: "f", Payload: "p", Hops: 2, Created: 4, SeqNode: "n", SeqEpoch: 3, Seq: 9}))
	f.Add(MarshalRecord(&Record{}))
	f.Add([]byte{1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := MarshalRecord(&r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzUnmarshalDelivered(f *testing.F) {
	f.Add(MarshalDelivered(&Delivered{Last: 7, Spans: Spans{{1, 5}, {7, 9}}}))
	f.Add(MarshalDelivered(&Delivered{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := UnmarshalDelivered(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		for i, sp := range d.Spans {
			if sp.First == 0 || sp.Last < sp.First || (i > 0 && sp.First <= d.Spans[i-1].Last+1) {
				t.Fatalf("decoded spans not sorted and disjoint: %v", d.Spans)
			}
		}
	})
}
