package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// DialOptions configure Dial. The zero value dials like the Session Manager
// client (§1.2): no extra headers, no subprotocol, the proxy from the
// environment, the system roots and a 45 s handshake timeout.
type DialOptions struct {
	// Header holds extra upgrade request headers, such as the agent's SigV4
	// signature (§9.3, §9.6). Headers never appear in errors or logs.
	Header http.Header

	// TLSConfig is used for wss:// (for example RootCAs holding the sandbox
	// CA). Nil means the system defaults.
	TLSConfig *tls.Config

	// HandshakeTimeout bounds the TCP connect, TLS and upgrade exchange.
	// Zero means DefaultHandshakeTimeout; negative means no timeout beyond
	// ctx (the agent sets none, §10.1).
	HandshakeTimeout time.Duration

	// Proxy picks the HTTP proxy for a request. Nil means
	// http.ProxyFromEnvironment (which never proxies loopback addresses).
	Proxy func(*http.Request) (*url.URL, error)

	// NetDialContext, if set, opens the TCP connection instead of net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// ConnOptions tune the resulting connection (limits, keepalive, debug).
	ConnOptions
}

// HandshakeError reports that the server answered the websocket upgrade with
// something other than a valid 101 Switching Protocols response.
type HandshakeError struct {
	// URL is the dialled URL without its query or user information.
	URL string
	// StatusCode is the HTTP status the server answered with.
	StatusCode int
}

// Error implements error.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket handshake with %s failed: server answered HTTP %d %s",
		e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Dial opens a websocket to rawURL.
//
// rawURL must be wss:// (or https://), or ws:// (or http://) to a loopback
// host: plain websockets to anything else fail with ErrInsecureURL before any
// network activity. No subprotocol is requested. The handshake is bounded by
// both ctx and opts.HandshakeTimeout; ctx does not affect the connection once
// Dial has returned.
func Dial(ctx context.Context, rawURL string, opts DialOptions) (*Conn, error) {
	u, err := parseDialURL(rawURL)
	if err != nil {
		return nil, err
	}
	safe := redactURL(u)

	timeout := opts.HandshakeTimeout
	switch {
	case timeout == 0:
		timeout = DefaultHandshakeTimeout
	case timeout < 0:
		timeout = 0 // gorilla: no handshake timeout
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	co := opts.ConnOptions.withDefaults()
	d := websocket.Dialer{
		NetDialContext:   opts.NetDialContext,
		Proxy:            proxy,
		TLSClientConfig:  opts.TLSConfig,
		HandshakeTimeout: timeout,
		ReadBufferSize:   co.ReadBufferSize,
		// Conn writes its frames itself: gorilla never needs a buffer.
		WriteBufferPool: unusedWriteBuffers{},
	}
	ws, resp, err := d.DialContext(ctx, u.String(), opts.Header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return nil, &HandshakeError{URL: safe, StatusCode: resp.StatusCode}
		}
		if ctx.Err() == nil && isTimeout(err) {
			return nil, fmt.Errorf("websocket handshake with %s timed out after %s: %w", safe, timeout, err)
		}
		return nil, fmt.Errorf("dialing websocket %s: %w", safe, err)
	}
	c := newConn(ws, opts.ConnOptions, false)
	c.debugf("websocket open to %s", safe)
	return c, nil
}

// parseDialURL validates rawURL and normalises its scheme to ws or wss.
// Errors never include the query.
func parseDialURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL
		}
		return nil, fmt.Errorf("parsing websocket url: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("parsing websocket url: missing host")
	}
	switch strings.ToLower(u.Scheme) {
	case "wss", "https":
		u.Scheme = "wss"
	case "ws", "http":
		if !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("refusing to dial %s: %w", redactURL(u), ErrInsecureURL)
		}
		u.Scheme = "ws"
	default:
		return nil, fmt.Errorf("parsing websocket url: unsupported scheme %q (want wss)", u.Scheme)
	}
	return u, nil
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL returns u without user information, query or fragment, for
// errors and logs.
func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// isTimeout reports whether err is a deadline or network timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
