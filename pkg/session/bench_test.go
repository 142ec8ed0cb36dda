package session_test

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
)

// benchEcho pushes b.N × 1 MiB through addr and back on one connection.
func benchEcho(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	got := make([]byte, len(buf))
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		errc := make(chan error, 1)
		go func() { _, err := c.Write(buf); errc <- err }()
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEchoLoopback is the baseline: the echo server over plain
// loopback TCP. Compare BenchmarkEchoForwardMux with it.
func BenchmarkEchoLoopback(b *testing.B) {
	benchEcho(b, sessiontest.EchoServer(b))
}

// BenchmarkEchoForwardMux is the same echo through Forward: smux over the
// data channel over a loopback websocket to the fake agent.
func BenchmarkEchoForwardMux(b *testing.B) {
	echo := sessiontest.EchoServer(b)
	_, port, _ := net.SplitHostPort(echo)
	svc := sessiontest.New(b)
	var p int
	for _, r := range port {
		p = p*10 + int(r-'0')
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := session.Open(ctx, svc, session.PortForwardRequest("i-0123456789abcdef0", p, 0, ""), session.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- session.Forward(ctx, s, session.ForwardOptions{OnReady: func(a net.Addr) { ready <- a.String() }})
	}()
	benchEcho(b, <-ready)
	b.StopTimer()
	cancel()
	<-done
}
