package sandbox

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// proxy is the sandbox's intercepting HTTPS proxy (Options.Proxy): clients
// that ignore endpoint settings (the official plugin's KMS client, older
// SDKs, agents' uploads) reach AWS's real host names through HTTPS_PROXY.
// CONNECT to an AWS host (*.amazonaws.com:443) is answered by the sandbox
// itself: the tunnel is terminated with a certificate for that host minted
// by the sandbox CA, and the requests inside it go to the same handlers as
// the endpoint (SigV4 check, SSM APIs, ssmmessages, moto routed by Host).
// Every other destination, and every plain-HTTP proxy request, is refused
// with 403 and the reason.
type proxy struct {
	ca      *authority
	ln      net.Listener
	srv     *http.Server // answers CONNECT
	tunnels *http.Server // serves the requests inside the tunnels
	conns   *connListener

	mu       sync.Mutex
	requests map[string]int // requests served inside tunnels, by host
}

// awsHost reports whether host is one the proxy serves: an AWS endpoint
// such as kms.us-east-1.amazonaws.com, ssm.amazonaws.com or
// bucket.s3.us-east-1.amazonaws.com.
func awsHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if !strings.HasSuffix(h, ".amazonaws.com") || len(h) == len(".amazonaws.com") {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// startProxy listens on addr (loopback) and serves the proxy with handler
// behind each tunnel.
func startProxy(addr string, ca *authority, handler http.Handler, logf func(string, ...any)) (*proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for the proxy on %s: %w", addr, err)
	}
	p := &proxy{ca: ca, ln: ln, conns: newConnListener(ln.Addr()), requests: map[string]int{}}
	p.tunnels = &http.Server{ReadHeaderTimeout: 15 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests[strings.ToLower(r.Host)]++
		p.mu.Unlock()
		handler.ServeHTTP(w, r)
	})}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serveProxy), ReadHeaderTimeout: 15 * time.Second}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("proxy stopped: %v", err)
		}
	}()
	go func() { _ = p.tunnels.Serve(p.conns) }()
	return p, nil
}

// URL is the proxy's address for HTTPS_PROXY.
func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

// close stops the proxy and every tunnel.
func (p *proxy) close() {
	_ = p.srv.Close()
	_ = p.tunnels.Close()
	p.conns.Close()
}

// refuse answers a request the proxy does not serve.
func refuse(w http.ResponseWriter, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Ssmkit-Proxy", "refused")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "ssmkit sandbox proxy: "+format+"\n", args...)
}

// serveProxy answers CONNECT for AWS hosts and refuses everything else.
func (p *proxy) serveProxy(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		refuse(w, "refusing %s %s: the sandbox proxy only tunnels HTTPS (CONNECT) to AWS endpoints (*.amazonaws.com:443)", r.Method, r.URL.Redacted())
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		refuse(w, "refusing CONNECT %q: not host:port", r.Host)
		return
	}
	if !awsHost(host) || port != "443" {
		refuse(w, "refusing CONNECT %s: only AWS endpoints (*.amazonaws.com:443) are served by the sandbox; nothing leaves this machine", r.Host)
		return
	}
	cert, err := p.ca.certFor(strings.ToLower(host))
	if err != nil {
		http.Error(w, "ssmkit sandbox proxy: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "ssmkit sandbox proxy: cannot tunnel on this connection", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil || buf.Reader.Buffered() > 0 {
		// A client that sends its TLS hello before the answer is not one we
		// can serve correctly.
		_ = conn.Close()
		return
	}
	tc := tls.Server(conn, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}})
	if !p.conns.push(tc) {
		_ = tc.Close()
	}
}

// requestsTo is how many requests for host came through tunnels.
func (p *proxy) requestsTo(host string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[strings.ToLower(host)]
}

// connListener hands hijacked connections to an http.Server.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the server; false once the listener is closed.
func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
