package gossip

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// TestStaticFlowWindows: between two nodes on real gRPC, a stream that
// carries messages one at a time sends no HTTP/2 PINGs (FlowWindowBytes:
// static windows, no BDP estimation). With gRPC's dynamic windows the
// receiver of each lone DATA frame sends a PING and a WINDOW_UPDATE and
// the sender answers the PING: with dynamic windows this test counted 24
// PINGs a→b and 25 b→a over its 40 messages. The only PINGs
// the defaults may send are keepalives, after 10 s without traffic.
func TestStaticFlowWindows(t *testing.T) {
	const count = 40
	got := make(chan Delivery, count)
	b, err := New("b", "", nil, nil, nil, nil, WithDeliveryHandler(func(d Delivery) { got <- d }))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := grpc.NewServer(b.ServerOptions()...)
	b.Register(srv)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := &frameCountingListener{Listener: inner}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(lis) })
	defer func() { srv.Stop(); wg.Wait() }()

	a, err := New("a", "", nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.AddNeighbor("b", inner.Addr().String()); err != nil {
		t.Fatal(err)
	}
	// One at a time: each message is its own envelope, and b's ACK of it
	// its own envelope back, the pattern that made BDP estimation ping.
	for i := range count {
		if _, _, err := a.Publish(t.Context(), fmt.Sprintf("m%d", i), []byte("payload")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("b did not deliver message %d", i)
		}
	}
	if st := a.Stats().Stream; st.StreamPeers != 1 || st.EnvelopesSent < count {
		t.Fatalf("a did not stream to b: %+v", st)
	}
	in, out := lis.counts()
	if in.data == 0 || out.data == 0 {
		t.Fatalf("no DATA frames counted (a→b %+v, b→a %+v): the counter is broken", in, out)
	}
	if in.ping != 0 || out.ping != 0 {
		t.Errorf("PING frames a→b %d, b→a %d over %d messages (DATA %d and %d): flow-control windows are not static",
			in.ping, out.ping, count, in.data, out.data)
	}
}

// frameCountingListener counts the HTTP/2 frames of the connections it
// accepts, in each direction.
type frameCountingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*frameCountingConn
}

func (l *frameCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &frameCountingConn{Conn: c}
	fc.in.skip = len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") // the client's preface
	l.mu.Lock()
	l.conns = append(l.conns, fc)
	l.mu.Unlock()
	return fc, nil
}

// counts sums the frames read (client to server) and written (server to
// client) over every accepted connection.
func (l *frameCountingListener) counts() (in, out frameCounts) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.mu.Lock()
		in.add(c.in.frameCounts)
		out.add(c.out.frameCounts)
		c.mu.Unlock()
	}
	return in, out
}

type frameCountingConn struct {
	net.Conn
	mu      sync.Mutex
	in, out frameParser
}

func (c *frameCountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in.feed(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *frameCountingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.out.feed(p[:n])
	c.mu.Unlock()
	return n, err
}

type frameCounts struct{ data, ping, windowUpdate int }

func (f *frameCounts) add(o frameCounts) {
	f.data += o.data
	f.ping += o.ping
	f.windowUpdate += o.windowUpdate
}

// frameParser follows one direction of an HTTP/2 connection: skip bytes
// of preface, then frames of a 9-byte header (24-bit length, type, flags,
// stream id) and their payload (RFC 9113 §4.1).
type frameParser struct {
	frameCounts
	skip int
	buf  []byte
}

func (p *frameParser) feed(b []byte) {
	p.buf = append(p.buf, b...)
	if p.skip > 0 {
		k := min(p.skip, len(p.buf))
		p.buf, p.skip = p.buf[k:], p.skip-k
	}
	for len(p.buf) >= 9 {
		length := int(binary.BigEndian.Uint32(append([]byte{0}, p.buf[:3]...)))
		if len(p.buf) < 9+length {
			return
		}
		switch p.buf[3] {
		case 0x0:
			p.data++
		case 0x6:
			p.ping++
		case 0x8:
			p.windowUpdate++
		}
		p.buf = p.buf[9+length:]
	}
}
