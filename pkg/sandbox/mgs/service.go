// Package mgs is the sandbox's ssmmessages service ("MGS", the Message
// Gateway Service): the REST and websocket endpoints the SSM Agent and the
// Session Manager client talk to (SESSION-PROTOCOL.md §9), and the session
// lifecycle the SSM API layer drives (StartSession, ResumeSession,
// TerminateSession).
//
// The Service is an http.Handler. It serves
//
//	POST /v1/control-channel/<instanceId>                       CreateControlChannel (§9.2)
//	GET  /v1/control-channel/<instanceId>?role=subscribe&…       control channel (§9.3, §9.4)
//	POST /v1/data-channel/<sessionId>                            CreateDataChannel (§9.5)
//	GET  /v1/data-channel/<sessionId>?role=publish_subscribe     data channels of client and agent (§9.6, §9.7)
//
// It relays stream frames byte for byte and never sequences or acknowledges
// anything itself: reliability is end to end. Tokens are bearer credentials
// and never reach logs or errors. TLS is the caller's concern.
package mgs

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
)

// Defaults for zero Options fields.
const (
	// DefaultIdleTimeout is Session Manager's default idleSessionTimeout (§9.9).
	DefaultIdleTimeout = 20 * time.Minute
	// DefaultOpenTimeout bounds the wait for the first (Open*Channel) frame.
	DefaultOpenTimeout = 30 * time.Second
	// DefaultAgentReconnectGrace is how long a session waits for an agent
	// whose data channel dropped before the session is ended. The agent
	// retries for about 3 s plus connection time (§9.6).
	DefaultAgentReconnectGrace = 15 * time.Second
	// DefaultAgentCloseGrace is how long the service lets an agent close
	// its own data channel after the session ended (§9.8) before closing it.
	DefaultAgentCloseGrace = 5 * time.Second
	// DefaultWriteTimeout bounds each websocket write.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultEnqueueWait bounds how long a reader waits for room in the
	// other side's send queue before it drops the frame (the sender's resend
	// timer recovers it). It keeps a slow peer from stalling the other
	// side's reader, and with it that side's acks and pongs.
	DefaultEnqueueWait = time.Second
	// sendQueueLen is the per-socket send queue length in frames.
	sendQueueLen = 512
	// maxTokensPerInstance bounds the control-channel tokens kept per
	// instance; the agent retries CreateControlChannel forever.
	maxTokensPerInstance = 16
	// maxRESTBody bounds Create*Channel request bodies.
	maxRESTBody = 64 << 10
)

// Errors returned by the session API. Match them with errors.Is.
var (
	// ErrTargetNotConnected means the target has no live control channel.
	ErrTargetNotConnected = errors.New("target is not connected")
	// ErrSessionNotFound means no session has the given id.
	ErrSessionNotFound = errors.New("session not found")
	// ErrSessionExists means StartSession was given an id already in use.
	ErrSessionExists = errors.New("session already exists")
	// ErrInvalidSpec means a SessionSpec is incomplete or malformed.
	ErrInvalidSpec = errors.New("invalid session spec")
	// ErrClosed means the Service has been closed.
	ErrClosed = errors.New("ssmmessages service closed")
)

// Options configure a Service.
type Options struct {
	// BaseURL is the public base URL clients and agents reach the service
	// at, e.g. "https://127.0.0.1:8443". StreamUrl values are built from it
	// with the scheme mapped to ws or wss. Required.
	BaseURL string

	// Logf, if set, receives one line per notable event. It never receives
	// tokens or payloads.
	Logf func(format string, args ...any)

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// AfterFunc runs f after d for the session timers (idle timeout,
	// maximum duration, agent reconnect and close graces). Nil means
	// time.AfterFunc; tests drive a clock of their own with it and Now.
	AfterFunc func(d time.Duration, f func()) Timer

	// OpenTimeout bounds the wait for the first frame of a channel. Zero
	// means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// AgentReconnectGrace: zero means DefaultAgentReconnectGrace.
	AgentReconnectGrace time.Duration
	// AgentCloseGrace: zero means DefaultAgentCloseGrace.
	AgentCloseGrace time.Duration
	// WriteTimeout: zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// EnqueueWait: zero means DefaultEnqueueWait.
	EnqueueWait time.Duration

	// MaxMessageSize, when positive, is the largest websocket message a
	// data channel accepts from a client or an agent: a larger one closes
	// that socket with status 1009 (message too big), as a service with a
	// message size limit would. The real service's limit is unknown; this
	// lets tests show that clients fall back to smaller messages. Zero
	// means the transport's default limit.
	MaxMessageSize int64
}

// Timer is a timer started by Options.AfterFunc; *time.Timer is one.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// Service is the ssmmessages service. Create it with New; it is safe for
// concurrent use.
type Service struct {
	opts    Options
	wsBase  url.URL // scheme ws|wss, host, path prefix
	now     func() time.Time
	connOpt transport.ServerOptions

	mu        sync.Mutex
	closed    bool
	instances map[string]*instance
	removed   map[string]bool // deregistered instance ids
	sessions  map[string]*session
	order     []string                     // session ids in start order
	conns     map[*transport.Conn]struct{} // every open websocket, for Close
}

// New returns a Service for opts.
func New(opts Options) (*Service, error) {
	u, err := url.Parse(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing base url: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "wss":
		u.Scheme = "wss"
	case "http", "ws":
		u.Scheme = "ws"
	default:
		return nil, fmt.Errorf("base url %q: scheme must be http, https, ws or wss", opts.BaseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("base url %q: missing host", opts.BaseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment, u.User = "", "", nil
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.AgentReconnectGrace <= 0 {
		opts.AgentReconnectGrace = DefaultAgentReconnectGrace
	}
	if opts.AgentCloseGrace <= 0 {
		opts.AgentCloseGrace = DefaultAgentCloseGrace
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.EnqueueWait <= 0 {
		opts.EnqueueWait = DefaultEnqueueWait
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.AfterFunc == nil {
		opts.AfterFunc = func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
	}
	return &Service{
		opts:   opts,
		wsBase: *u,
		now:    now,
		connOpt: transport.ServerOptions{ConnOptions: transport.ConnOptions{
			// The service answers pings (transport does that while a read
			// is pending, and every socket always has a reader) but sends
			// none of its own and sets no read deadline (§1.4).
			PingInterval: -1,
			WriteTimeout: opts.WriteTimeout,
			// The relay reads whole messages only to hand them on: a
			// 64 KiB buffer takes a frame's header with its payload, and
			// often the next frames, in one read (a 1 GiB download:
			// 133 000 → 80 000 system calls in the relay).
			ReadBufferSize: 64 << 10,
		}},
		instances: make(map[string]*instance),
		removed:   make(map[string]bool),
		sessions:  make(map[string]*session),
		conns:     make(map[*transport.Conn]struct{}),
	}, nil
}

// logf forwards to Options.Logf.
func (s *Service) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// StreamURL returns the data-channel URL of sessionID.
func (s *Service) StreamURL(sessionID string) string {
	u := s.wsBase
	u.Path = u.Path + "/v1/data-channel/" + sessionID
	u.RawQuery = "role=publish_subscribe"
	return u.String()
}

// ServeHTTP routes the four ssmmessages endpoints.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, s.wsBase.Path)
	var kind, id string
	switch {
	case strings.HasPrefix(path, "/v1/control-channel/"):
		kind, id = "control", strings.TrimPrefix(path, "/v1/control-channel/")
	case strings.HasPrefix(path, "/v1/data-channel/"):
		kind, id = "data", strings.TrimPrefix(path, "/v1/data-channel/")
	default:
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "no such ssmmessages endpoint")
		return
	}
	if id == "" || strings.Contains(id, "/") {
		writeError(w, http.StatusBadRequest, "ValidationException", "missing or malformed id in path")
		return
	}
	switch {
	case kind == "control" && r.Method == http.MethodPost:
		s.createControlChannel(w, r, id)
	case kind == "control" && r.Method == http.MethodGet:
		s.serveControlChannel(w, r, id)
	case kind == "data" && r.Method == http.MethodPost:
		s.createDataChannel(w, r, id)
	case kind == "data" && r.Method == http.MethodGet:
		s.serveDataChannel(w, r, id)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "ValidationException", "method not allowed")
	}
}

// writeError writes an XML error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_, _ = w.Write(errorXML(code, msg))
}

// writeToken writes the 201 XML answer of a Create*Channel call.
func writeToken(w http.ResponseWriter, root, token string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(channelOutputXML(root, token))
}

// drainBody reads and discards a bounded request body: the agent's JSON
// carries nothing the sandbox needs (§9.2, §9.5).
func drainBody(r *http.Request) {
	buf := make([]byte, 4096)
	body := http.MaxBytesReader(nil, r.Body, maxRESTBody)
	for {
		if _, err := body.Read(buf); err != nil {
			return
		}
	}
}

// tokenEqual compares tokens in constant time.
func tokenEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// track registers an accepted websocket so that Close can end it, and
// returns the function that forgets it. It reports false (and closes conn)
// if the service is closed.
func (s *Service) track(conn *transport.Conn) (untrack func(), ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.Close()
		return nil, false
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}, true
}

// Close ends every channel and stops every timer. Sessions keep their
// state for Sessions(); the service refuses new channels and sessions.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var peers []*peer
	var ccs []*controlConn
	for _, inst := range s.instances {
		if inst.cc != nil {
			ccs = append(ccs, inst.cc)
			inst.cc = nil
		}
	}
	conns := make([]*transport.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	for _, ss := range s.sessions {
		ss.stopTimersLocked()
		if ss.agentCloseTimer != nil {
			ss.agentCloseTimer.Stop()
		}
		for _, p := range []*peer{ss.agent, ss.client} {
			if p != nil {
				peers = append(peers, p)
			}
		}
		ss.agent, ss.client = nil, nil
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.close()
	}
	for _, c := range ccs {
		_ = c.conn.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}
