package transport_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
)

// Small keepalive timings: pings every 50 ms, 100 ms to answer.
// fastKeepalive is quick, but with a pong wait generous enough for a
// loaded 2-core machine running the race detector.
var fastKeepalive = transport.ConnOptions{
	PingInterval:   100 * time.Millisecond,
	DelayFirstPing: true,
	PongWait:       500 * time.Millisecond,
}

// drain reads c until it fails, so that it answers pings.
func drain(c messageConn) <-chan error {
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.ReadMessage(); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

func TestKeepalivePongsKeepPeerAlive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dial transport.ConnOptions
		srv  transport.ConnOptions
		// enforcing picks the side that enforces PongWait.
		enforcing func(client, server *transport.Conn) (enforcer, answerer *transport.Conn)
	}{
		{
			name: "server pings client",
			srv:  fastKeepalive,
			enforcing: func(c, s *transport.Conn) (*transport.Conn, *transport.Conn) {
				return s, c
			},
		},
		{
			name: "client pings server",
			dial: fastKeepalive,
			enforcing: func(c, s *transport.Conn) (*transport.Conn, *transport.Conn) {
				return c, s
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, server := transporttest.WebsocketPairWith(t,
				transport.DialOptions{ConnOptions: tt.dial},
				transport.ServerOptions{ConnOptions: tt.srv})
			enforcer, answerer := tt.enforcing(client, server)

			answering := drain(answerer) // reading answers pings
			pending := readAsync(enforcer)
			// Well past the initial deadline (600 ms) and > 3 intervals.
			time.Sleep(1200 * time.Millisecond)
			select {
			case r := <-pending:
				t.Fatalf("enforcing side failed while pongs flowed: %v", r.err)
			case err := <-answering:
				t.Fatalf("answering side failed: %v", err)
			default:
			}
			if err := answerer.WriteMessage([]byte("still here")); err != nil {
				t.Fatalf("WriteMessage: %v", err)
			}
			r := waitRead(t, pending, 2*time.Second)
			if r.err != nil || string(r.b) != "still here" {
				t.Fatalf("ReadMessage = %q, %v; want the message", r.b, r.err)
			}
		})
	}
}

// rawServer starts a loopback server whose handler gets a raw gorilla
// connection, and returns its ws:// URL.
func rawServer(t *testing.T, handle func(ws *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("raw Upgrade: %v", err)
			return
		}
		defer ws.Close()
		handle(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestKeepaliveDropsSilentPeer(t *testing.T) {
	t.Parallel()
	pings := make(chan string, 16)
	url := rawServer(t, func(ws *websocket.Conn) {
		ws.SetPingHandler(func(appData string) error {
			select {
			case pings <- appData:
			default:
			}
			return nil // never pong
		})
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	c, err := transport.Dial(context.Background(), url, transport.DialOptions{ConnOptions: fastKeepalive})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()

	start := time.Now()
	_, err = c.ReadMessage()
	elapsed := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadMessage err = %v, want a deadline error", err)
	}
	// Initial deadline: PingInterval + PongWait = 600 ms.
	if elapsed < 500*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("dropped after %s, want about 600ms", elapsed)
	}
	select {
	case p := <-pings:
		if p != transport.PingPayload {
			t.Errorf("ping payload %q, want %q", p, transport.PingPayload)
		}
	case <-time.After(2 * time.Second):
		t.Error("the peer received no ping")
	}
}

func TestKeepaliveClientPingsAtOpen(t *testing.T) {
	t.Parallel()
	pings := make(chan string, 4)
	url := rawServer(t, func(ws *websocket.Conn) {
		answer := ws.PingHandler()
		ws.SetPingHandler(func(appData string) error {
			pings <- appData
			return answer(appData)
		})
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	// Default options: the client's 5 min interval, first ping at once.
	c, err := transport.Dial(context.Background(), url, transport.DialOptions{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	select {
	case p := <-pings:
		if p != "keepalive" {
			t.Errorf("ping payload %q, want keepalive", p)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no ping right after open")
	}
}

func TestAgentConnOptions(t *testing.T) {
	t.Parallel()
	o := transport.AgentConnOptions()
	if o.PingInterval != 54*time.Second || !o.DelayFirstPing || o.PongWait != 60*time.Second {
		t.Errorf("AgentConnOptions() = %+v, want 54s delayed pings and 60s pong wait", o)
	}
}

func TestConnPeerDropsTCP(t *testing.T) {
	t.Parallel()
	url := rawServer(t, func(ws *websocket.Conn) {
		ws.NetConn().Close() // no close frame
	})
	c, err := transport.Dial(context.Background(), url, transport.DialOptions{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	_, err = c.ReadMessage()
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("ReadMessage err = %v, want CloseError 1006", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		t.Errorf("abnormal closure must match io.ErrUnexpectedEOF only: %v", err)
	}
}

func TestConnAnswersPingWhileWritersBusy(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("long data test")
	}
	// The server enforces PongWait while the client floods it with data:
	// pongs from the client must still get through between data frames.
	// A pong queues behind whatever data already sits in the socket
	// buffers (megabytes on loopback), so PongWait must cover draining
	// them; the agent's 60 s does, 100 ms does not.
	opts := transport.ConnOptions{
		PingInterval:   50 * time.Millisecond,
		DelayFirstPing: true,
		PongWait:       time.Second,
	}
	client, server := transporttest.WebsocketPairWith(t,
		transport.DialOptions{},
		transport.ServerOptions{ConnOptions: opts})
	clientRead := drain(client)
	stop := make(chan struct{})
	writeDone := make(chan error, 1)
	go func() {
		msg := make([]byte, 32<<10)
		for {
			select {
			case <-stop:
				writeDone <- nil
				return
			default:
			}
			if err := client.WriteMessage(msg); err != nil {
				writeDone <- err
				return
			}
		}
	}()
	// Past the initial deadline (1.05 s): only pongs can have kept it open.
	deadline := time.Now().Add(1500 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		if _, err := server.ReadMessage(); err != nil {
			t.Fatalf("server ReadMessage after %d messages: %v", n, err)
		}
		n++
	}
	close(stop)
	// Keep reading so that a writer blocked on full socket buffers sees
	// stop; a read loop in this goroutine could block for good after the
	// writer's last message.
	go func() {
		for {
			if _, err := server.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := <-writeDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	select {
	case err := <-clientRead:
		t.Fatalf("client read: %v", err)
	default:
	}
}
