package transport_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
)

// benchSizes are the message sizes every throughput benchmark runs: a
// typical protocol frame (1 KiB payload) and a large one.
var benchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
}

// benchThroughput sends b.N messages of n bytes from w to r and reports MB/s.
func benchThroughput(b *testing.B, n int, w, r messageConn) {
	b.Helper()
	msg := make([]byte, n)
	done := make(chan error, 1)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			m, err := r.ReadMessage()
			if err != nil {
				done <- err
				return
			}
			if len(m) != n {
				b.Errorf("got %d bytes, want %d", len(m), n)
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := w.WriteMessage(msg); err != nil {
			b.Fatalf("WriteMessage: %v", err)
		}
	}
	if err := <-done; err != nil {
		b.Fatalf("ReadMessage: %v", err)
	}
}

// BenchmarkConnThroughput is the raw websocket baseline: client to server
// over loopback TCP through transport.Conn.
func BenchmarkConnThroughput(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			client, server := transporttest.WebsocketPair(b)
			benchThroughput(b, s.n, client, server)
		})
	}
}

// gorillaConn adapts a bare gorilla connection, used the obvious way
// (ReadMessage, default 4 KiB buffers), to messageConn for comparison.
type gorillaConn struct{ ws *websocket.Conn }

func (g gorillaConn) ReadMessage() ([]byte, error) {
	_, b, err := g.ws.ReadMessage()
	return b, err
}
func (g gorillaConn) WriteMessage(b []byte) error {
	return g.ws.WriteMessage(websocket.BinaryMessage, b)
}
func (g gorillaConn) Close() error { return g.ws.Close() }

// BenchmarkGorillaThroughput is the same exchange through bare gorilla with
// its defaults, to show what Conn's buffering and read path buy.
func BenchmarkGorillaThroughput(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			accepted := make(chan *websocket.Conn, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					b.Errorf("Upgrade: %v", err)
					return
				}
				accepted <- ws
			}))
			defer srv.Close()
			cws, _, err := websocket.DefaultDialer.DialContext(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			sws := <-accepted
			defer cws.Close()
			defer sws.Close()
			benchThroughput(b, s.n, gorillaConn{cws}, gorillaConn{sws})
		})
	}
}

// BenchmarkFramedThroughput runs the exchange over transporttest.Framed on loopback TCP.
func BenchmarkFramedThroughput(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := ln.Accept(); err == nil {
					accepted <- c
				}
			}()
			cc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			w, r := transporttest.NewFramed(cc), transporttest.NewFramed(<-accepted)
			defer w.Close()
			defer r.Close()
			benchThroughput(b, s.n, w, r)
		})
	}
}

// BenchmarkPipeThroughput runs the exchange over the in-memory transporttest.Pipe.
func BenchmarkPipeThroughput(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			w, r := transporttest.Pipe()
			defer w.Close()
			benchThroughput(b, s.n, w, r)
		})
	}
}
