package transport_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
)

// upgradeServer returns a handler that upgrades, echoes one message and
// closes, and a channel that reports upgrade errors.
func echoOnceHandler(t *testing.T, opts transport.ServerOptions) http.Handler {
	t.Helper()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Upgrade(w, r, opts)
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		defer c.Close()
		b, err := c.ReadMessage()
		if err != nil {
			return
		}
		_ = c.WriteMessage(b)
		_, _ = c.ReadMessage() // wait for the client's close
	})
}

// roundTrip sends one message over c and expects it echoed.
func roundTrip(t *testing.T, c *transport.Conn) {
	t.Helper()
	if err := c.WriteMessage([]byte("ping?")); err != nil {
		t.Fatalf("WriteMessage: %v", err)
	}
	b, err := c.ReadMessage()
	if err != nil || string(b) != "ping?" {
		t.Fatalf("ReadMessage = %q, %v; want echo", b, err)
	}
}

// countingDialer counts TCP dial attempts.
type countingDialer struct{ n atomic.Int32 }

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func TestDialRefusesInsecureURL(t *testing.T) {
	t.Parallel()
	tests := []string{
		"ws://example.invalid/v1/data-channel/s-1?role=publish_subscribe&token=SECRET",
		"ws://10.0.0.1/v1/data-channel/s-1",
		"ws://10.0.0.1:8080/",
		"http://example.invalid/",
		"WS://ssmmessages.us-east-1.amazonaws.com/",
		"ws://127.0.0.1.example.invalid/",
		"ws://[2001:db8::1]/",
	}
	for _, raw := range tests {
		t.Run(raw, func(t *testing.T) {
			var d countingDialer
			var proxied atomic.Int32
			start := time.Now()
			c, err := transport.Dial(context.Background(), raw, transport.DialOptions{
				NetDialContext: d.dial,
				Proxy: func(*http.Request) (*url.URL, error) {
					proxied.Add(1)
					return nil, nil
				},
			})
			elapsed := time.Since(start)
			if c != nil {
				c.Close()
			}
			if !errors.Is(err, transport.ErrInsecureURL) {
				t.Fatalf("Dial err = %v, want ErrInsecureURL", err)
			}
			if !strings.Contains(err.Error(), "wss://") {
				t.Errorf("error %q does not tell the user to use wss://", err)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "role=") {
				t.Errorf("error %q leaks the URL query", err)
			}
			if n := d.n.Load() + proxied.Load(); n != 0 {
				t.Errorf("Dial made %d network attempts, want none", n)
			}
			if elapsed > 200*time.Millisecond { // a real dial to 10.0.0.1 would hang for seconds
				t.Errorf("Dial took %s to refuse, want instant", elapsed)
			}
		})
	}
}

func TestDialRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"ftp://localhost/", "wss:///nohost", "://x", "wss://host/%zz?token=SECRET"} {
		_, err := transport.Dial(context.Background(), raw, transport.DialOptions{})
		if err == nil {
			t.Errorf("Dial(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("Dial(%q) error leaks the query: %v", raw, err)
		}
	}
}

func TestDialLoopbackPlainAllowed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(echoOnceHandler(t, transport.ServerOptions{}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{
		"ws://127.0.0.1:" + port + "/v1/data-channel/s?role=publish_subscribe",
		"ws://localhost:" + port + "/",
		"http://127.0.0.1:" + port + "/",
	} {
		t.Run(raw, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := transport.Dial(ctx, raw, transport.DialOptions{})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if !c.RemoteAddr().(*net.TCPAddr).IP.IsLoopback() || c.LocalAddr() == nil {
				t.Errorf("addresses: local %v remote %v", c.LocalAddr(), c.RemoteAddr())
			}
			roundTrip(t, c)
		})
	}
}

func TestDialIPv6Loopback(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(echoOnceHandler(t, transport.ServerOptions{}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := transport.Dial(context.Background(), "ws://"+ln.Addr().String()+"/", transport.DialOptions{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	roundTrip(t, c)
}

func TestDialTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(echoOnceHandler(t, transport.ServerOptions{}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the unknown-CA case logs a TLS error
	srv.StartTLS()
	t.Cleanup(srv.Close)
	wss := "wss" + strings.TrimPrefix(srv.URL, "https") + "/v1/data-channel/s-1"

	t.Run("with the CA", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		tlsConf.RootCAs = pool
		c, err := transport.Dial(context.Background(), wss, transport.DialOptions{TLSConfig: tlsConf})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		roundTrip(t, c)
	})
	t.Run("https scheme", func(t *testing.T) {
		tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig
		c, err := transport.Dial(context.Background(), srv.URL, transport.DialOptions{TLSConfig: tlsConf})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		roundTrip(t, c)
	})
	t.Run("unknown CA", func(t *testing.T) {
		_, err := transport.Dial(context.Background(), wss, transport.DialOptions{})
		var uae x509.UnknownAuthorityError
		if !errors.As(err, &uae) {
			t.Fatalf("Dial without the CA: err = %v, want x509.UnknownAuthorityError", err)
		}
	})
}

func TestDialHandshakeRejected(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "AWS4-HMAC-SHA256 SECRET-SIGNATURE" {
			t.Errorf("Authorization header not sent")
		}
		if r.Header.Get("Sec-WebSocket-Protocol") != "" {
			t.Errorf("client requested a subprotocol")
		}
		http.Error(w, "denied: SECRET-BODY", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	h := http.Header{}
	h.Set("Authorization", "AWS4-HMAC-SHA256 SECRET-SIGNATURE")
	_, err := transport.Dial(context.Background(), srv.URL+"/v1/control-channel/i-1?role=subscribe", transport.DialOptions{Header: h})
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("Dial err = %v, want HandshakeError 403", err)
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "role=") {
		t.Errorf("error %q leaks headers, body or query", err)
	}
}

func TestUpgradeNoSubprotocolAnyOrigin(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(echoOnceHandler(t, transport.ServerOptions{}))
	t.Cleanup(srv.Close)
	h := http.Header{}
	h.Set("Origin", "https://elsewhere.example")
	h.Set("Sec-WebSocket-Protocol", "chat")
	c, err := transport.Dial(context.Background(), srv.URL, transport.DialOptions{Header: h})
	if err != nil {
		t.Fatalf("Dial with a foreign Origin: %v", err)
	}
	defer c.Close()
	roundTrip(t, c)
}

func TestUpgradeRejectsPlainHTTP(t *testing.T) {
	t.Parallel()
	errc := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := transport.Upgrade(w, r, transport.ServerOptions{})
		errc <- err
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if err := <-errc; err == nil {
		t.Error("Upgrade of a plain GET succeeded")
	}
}

func TestDialHandshakeTimeout(t *testing.T) {
	t.Parallel()
	// A listener that accepts TCP and never answers the upgrade.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})

	t.Run("HandshakeTimeout", func(t *testing.T) {
		start := time.Now()
		_, err := transport.Dial(context.Background(), "ws://"+ln.Addr().String()+"/", transport.DialOptions{HandshakeTimeout: 150 * time.Millisecond})
		if err == nil {
			t.Fatal("Dial succeeded against a silent listener")
		}
		if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
			t.Errorf("Dial returned after %s, want about 150ms", d)
		}
		if !strings.Contains(err.Error(), "timed out") {
			t.Errorf("error %q does not say it timed out", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := transport.Dial(ctx, "ws://"+ln.Addr().String()+"/", transport.DialOptions{})
		if err == nil {
			t.Fatal("Dial succeeded against a silent listener")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Dial returned after %s, want about 150ms", d)
		}
	})
}
