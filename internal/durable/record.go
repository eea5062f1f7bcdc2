package durable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
)

// Record is one entry of the delivery log: a message this node accepted
// and handed to its application, at a node-local offset.
type Record struct {
	Offset  uint64 // 1, 2, 3, … dense and monotonic in one node's log
	At      int64  // when it was logged, UnixNano (non-decreasing along offsets)
	Hash    string // the message id
	Origin  string
	From    string
	Payload string // any bytes (a string so that the in-memory log shares the delivery's)
	Hops    uint32
	Created int64 // the origin's publish time, UnixNano; 0 unknown
	// The message's place in its dissemination sequence.
	SeqNode  string
	SeqEpoch uint64
	Seq      uint64

	// Note is not stored: Append's caller gets it back in OnCommit with
	// the record (e.g. someone waiting for the commit).
	Note any
	// handled marks a MarkHandled note: no offset, no log entry.
	handled bool
}

// Size is the record's encoded size, what retention bytes count.
func (r *Record) Size() int {
	return len(r.Hash) + len(r.Origin) + len(r.From) + len(r.Payload) + len(r.SeqNode) + 64
}

// ErrCorrupt is wrapped by every decoding error: the bytes are not a
// record this version wrote (truncated, altered, or garbage).
var ErrCorrupt = errors.New("corrupt record")

// recordVersion is the first byte of an encoded record.
const recordVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalRecord encodes r: a version byte, the fields (unsigned varints,
// length-prefixed strings), then a CRC-32C of everything before it, so
// that a damaged value is detected (bbolt checks its pages' structure,
// not the values' bytes).
func MarshalRecord(r *Record) []byte {
	b := make([]byte, 0, r.Size()+16)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, r.Offset)
	b = binary.AppendUvarint(b, uint64(r.At))
	b = appendBytes(b, []byte(r.Hash))
	b = appendBytes(b, []byte(r.Origin))
	b = appendBytes(b, []byte(r.From))
	b = appendBytes(b, []byte(r.Payload))
	b = binary.AppendUvarint(b, uint64(r.Hops))
	b = binary.AppendUvarint(b, uint64(r.Created))
	b = appendBytes(b, []byte(r.SeqNode))
	b = binary.AppendUvarint(b, r.SeqEpoch)
	b = binary.AppendUvarint(b, r.Seq)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// UnmarshalRecord decodes what MarshalRecord encoded. Any other input
// gives an error wrapping ErrCorrupt, never a panic.
func UnmarshalRecord(b []byte) (Record, error) {
	var r Record
	d, err := newDecoder(b)
	if err != nil {
		return r, err
	}
	r.Offset = d.uvarint()
	r.At = int64(d.uvarint())
	r.Hash = d.string()
	r.Origin = d.string()
	r.From = d.string()
	r.Payload = d.string()
	hops := d.uvarint()
	r.Created = int64(d.uvarint())
	r.SeqNode = d.string()
	r.SeqEpoch = d.uvarint()
	r.Seq = d.uvarint()
	if err := d.end(); err != nil {
		return Record{}, err
	}
	if hops > 1<<32-1 {
		return Record{}, fmt.Errorf("%w: hop count %d out of range", ErrCorrupt, hops)
	}
	r.Hops = uint32(hops)
	return r, nil
}

// Span is the numbers First..Last of a sequence, inclusive.
type Span struct{ First, Last uint64 }

// Spans is a set of sequence numbers as sorted, disjoint, non-adjacent
// spans: its size is the number of gaps, not of numbers.
type Spans []Span

// Has reports whether s is in the set.
func (ss Spans) Has(s uint64) bool {
	i := sort.Search(len(ss), func(i int) bool { return ss[i].Last >= s })
	return i < len(ss) && ss[i].First <= s
}

// Add adds s to the set; it reports whether s was new.
func (ss *Spans) Add(s uint64) bool {
	v := *ss
	i := sort.Search(len(v), func(i int) bool { return v[i].Last >= s })
	if i < len(v) && v[i].First <= s {
		return false
	}
	joinPrev := i > 0 && v[i-1].Last+1 == s
	joinNext := i < len(v) && v[i].First == s+1
	switch {
	case joinPrev && joinNext:
		v[i-1].Last = v[i].Last
		v = slices.Delete(v, i, i+1)
	case joinPrev:
		v[i-1].Last = s
	case joinNext:
		v[i].First = s
	default:
		v = slices.Insert(v, i, Span{s, s})
	}
	*ss = v
	return true
}

// Delivered is what a node delivered of one sequence: the numbers, and
// when it last delivered one (UnixNano), which decides when the entry
// may be forgotten.
type Delivered struct {
	Spans Spans
	Last  int64
}

// MarshalDelivered encodes d like a record: version, fields, CRC-32C.
// Spans are encoded as (gap from the previous span's end, length − 1).
func MarshalDelivered(d *Delivered) []byte {
	b := make([]byte, 0, 16+8*len(d.Spans))
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(d.Last))
	b = binary.AppendUvarint(b, uint64(len(d.Spans)))
	prev := uint64(0)
	for _, sp := range d.Spans {
		b = binary.AppendUvarint(b, sp.First-prev)
		b = binary.AppendUvarint(b, sp.Last-sp.First)
		prev = sp.Last
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// UnmarshalDelivered decodes what MarshalDelivered encoded; other input
// gives an error wrapping ErrCorrupt.
func UnmarshalDelivered(b []byte) (Delivered, error) {
	var out Delivered
	d, err := newDecoder(b)
	if err != nil {
		return out, err
	}
	out.Last = int64(d.uvarint())
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // each span takes at least 2 bytes
		return Delivered{}, fmt.Errorf("%w: %d spans in %d bytes", ErrCorrupt, n, len(d.b))
	}
	prev := uint64(0)
	for i := uint64(0); i < n && d.err == nil; i++ {
		gap, length := d.uvarint(), d.uvarint()
		first := prev + gap
		last := first + length
		if first < prev || last < first || (i > 0 && first <= prev+1) || first == 0 {
			return Delivered{}, fmt.Errorf("%w: spans not sorted and disjoint", ErrCorrupt)
		}
		out.Spans = append(out.Spans, Span{first, last})
		prev = last
	}
	if err := d.end(); err != nil {
		return Delivered{}, err
	}
	return out, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads fields; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
}

func newDecoder(b []byte) (*decoder, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrCorrupt, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if body[0] != recordVersion {
		return nil, fmt.Errorf("%w: record version %d, this build reads %d", ErrCorrupt, body[0], recordVersion)
	}
	return &decoder{b: body[1:]}, nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// string reads a length-prefixed field (one copy).
func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: field of %d bytes, %d left", ErrCorrupt, n, len(d.b))
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return d.err
}
