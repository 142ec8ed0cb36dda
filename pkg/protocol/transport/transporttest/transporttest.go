// Package transporttest provides test support for code built on transport:
// a connected pair of websocket Conns over a real loopback server, and two
// message connections of the same shape without a network (Framed over any
// byte stream, an in-memory Pipe).
package transporttest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
)

// WebsocketPair returns a client and a server Conn joined by a real websocket
// over a loopback httptest server, both with default options. Both
// connections and the server are closed by tb.Cleanup.
func WebsocketPair(tb testing.TB) (client, server *transport.Conn) {
	tb.Helper()
	return WebsocketPairWith(tb, transport.DialOptions{}, transport.ServerOptions{})
}

// WebsocketPairWith is WebsocketPair with explicit dial and server options.
func WebsocketPairWith(tb testing.TB, dial transport.DialOptions, srv transport.ServerOptions) (client, server *transport.Conn) {
	tb.Helper()
	type result struct {
		c   *transport.Conn
		err error
	}
	accepted := make(chan result, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Upgrade(w, r, srv)
		accepted <- result{c, err}
	}))
	tb.Cleanup(hs.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), dial)
	if err != nil {
		tb.Fatalf("dialing loopback websocket: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	select {
	case r := <-accepted:
		if r.err != nil {
			tb.Fatalf("accepting loopback websocket: %v", r.err)
		}
		server = r.c
	case <-ctx.Done():
		tb.Fatalf("accepting loopback websocket: %v", ctx.Err())
	}
	tb.Cleanup(func() { _ = server.Close() })
	return client, server
}
