package transport

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestIsLoopbackHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LocalHost", true},
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"10.0.0.1", false},
		{"128.0.0.1", false},
		{"example.invalid", false},
		{"localhost.example.invalid", false},
		{"127.0.0.1.nip.io", false},
		{"::2", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isLoopbackHost(tt.host); got != tt.want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestCloseStopsKeepalive(t *testing.T) {
	t.Parallel()
	accepted := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, ServerOptions{ConnOptions: ConnOptions{PingInterval: 10 * time.Millisecond}})
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		accepted <- c
	}))
	defer srv.Close()
	c, err := Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), DialOptions{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	s := <-accepted
	for _, conn := range []*Conn{c, s} {
		select {
		case <-conn.pingDone:
			t.Fatal("keepalive stopped before Close")
		default:
		}
		if err := conn.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-conn.pingDone:
		default:
			t.Fatal("keepalive still running after Close returned")
		}
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	o := ConnOptions{}.withDefaults()
	if o.MaxMessageSize != DefaultMaxMessageSize || o.PingInterval != DefaultPingInterval ||
		o.ReadBufferSize != DefaultReadBufferSize || o.WriteBufferSize != DefaultBufferSize || o.PongWait != 0 {
		t.Errorf("zero options resolved to %+v", o)
	}
	// PongWait without pings would time every connection out.
	o = ConnOptions{PingInterval: -1, PongWait: time.Second}.withDefaults()
	if o.PongWait != 0 {
		t.Errorf("PongWait kept with pings disabled: %+v", o)
	}
}
