// Package sessiontest is an in-process stand-in for the SSM session APIs,
// the ssmmessages relay and the SSM Agent, for tests of code built on the
// session package. The Service answers StartSession, ResumeSession and
// TerminateSession like the SSM client, accepts the client's data channel
// on a loopback websocket, checks its token and runs the agent role of the
// data channel with a small plugin (an echo shell, a command, a port
// forwarder) directly on it.
package sessiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/uuid"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// Plugin is what the emulated agent runs for a session.
type Plugin struct {
	// SessionType is one of the wire.SessionType* names.
	SessionType string
	// Properties are the Port session's properties.
	Properties json.RawMessage
	// AgentVersion is what the agent reports (default
	// datachannel.DefaultAgentVersion).
	AgentVersion string
	// SeparateOutput marks a NonInteractiveCommands session with separate
	// stdout and stderr.
	SeparateOutput bool
	// Run serves the session; the session ends when it returns or ctx
	// ends (TerminateSession, by API or flag).
	Run func(ctx context.Context, ch *datachannel.Channel) error
	// Control, when set, receives the client's Flag and Size messages.
	Control func(p datachannel.Packet)
}

// Service is the fake SSM API and ssmmessages endpoint. Its methods
// StartSession, ResumeSession and TerminateSession satisfy
// session.SSMAPI.
type Service struct {
	// URL is the ws:// base of the data channel endpoint.
	URL string
	// Plugin picks the plugin for a StartSession request. The default,
	// DefaultPlugin, is set by New.
	Plugin func(in *ssm.StartSessionInput) (Plugin, error)
	// Tune, when set, adjusts each agent channel's configuration.
	Tune func(*datachannel.Config)

	tb  testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	sessions map[string]*fakeSession
	tokens   map[string]string // token → session ID
	starts   []*ssm.StartSessionInput

	seq         atomic.Int64
	resumeNull  atomic.Bool
	startErr    atomic.Pointer[error]
	closeOutput atomic.Pointer[string]
	blackhole   atomic.Bool
	resumes     atomic.Int32
	terminates  atomic.Int32
	rejected    atomic.Int32
}

// New starts a Service; tb.Cleanup ends its sessions and server.
func New(tb testing.TB) *Service {
	tb.Helper()
	s := &Service{
		tb:       tb,
		sessions: map[string]*fakeSession{},
		tokens:   map[string]string{},
	}
	s.Plugin = DefaultPlugin
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveDataChannel))
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	tb.Cleanup(s.close)
	return s
}

func (s *Service) close() {
	s.mu.Lock()
	var all []*fakeSession
	for _, fs := range s.sessions {
		all = append(all, fs)
	}
	s.mu.Unlock()
	for _, fs := range all {
		fs.cancel()
		fs.wait(5 * time.Second)
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// FailStart makes StartSession return err (nil restores success).
func (s *Service) FailStart(err error) {
	if err == nil {
		s.startErr.Store(nil)
		return
	}
	s.startErr.Store(&err)
}

// SetResumeNullToken makes ResumeSession answer with no token, as the
// service does for a session that timed out.
func (s *Service) SetResumeNullToken(null bool) { s.resumeNull.Store(null) }

// SetCloseOutput sets the Output of the channel_closed messages sent from
// now on.
func (s *Service) SetCloseOutput(out string) { s.closeOutput.Store(&out) }

// Blackhole makes every agent ignore what the clients send, so nothing
// is acknowledged any more, as with a service that stopped relaying.
func (s *Service) Blackhole(on bool) { s.blackhole.Store(on) }

// blackholeConn drops incoming messages while the service is a black hole.
type blackholeConn struct {
	datachannel.MessageConn
	on *atomic.Bool
}

func (c blackholeConn) ReadMessage() ([]byte, error) {
	for {
		b, err := c.MessageConn.ReadMessage()
		if err != nil || !c.on.Load() {
			return b, err
		}
	}
}

// Starts returns the StartSession requests received so far.
func (s *Service) Starts() []*ssm.StartSessionInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*ssm.StartSessionInput(nil), s.starts...)
}

// Resumes returns the number of ResumeSession calls.
func (s *Service) Resumes() int { return int(s.resumes.Load()) }

// Terminates returns the number of TerminateSession calls.
func (s *Service) Terminates() int { return int(s.terminates.Load()) }

// Rejected returns the number of data channel opens refused for a bad
// token.
func (s *Service) Rejected() int { return int(s.rejected.Load()) }

// Token returns the current token of session id; tests use it to check
// that tokens never leak.
func (s *Service) Token(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, sid := range s.tokens {
		if sid == id {
			return tok
		}
	}
	return ""
}

// Sizes returns the terminal sizes the client sent on session id.
func (s *Service) Sizes(id string) []wire.SizeData {
	fs := s.session(id)
	if fs == nil {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]wire.SizeData(nil), fs.sizes...)
}

// Flags returns the flags the client sent on session id.
func (s *Service) Flags(id string) []wire.Flag {
	fs := s.session(id)
	if fs == nil {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]wire.Flag(nil), fs.flags...)
}

// Ended reports whether session id has ended on the agent side.
func (s *Service) Ended(id string) bool {
	fs := s.session(id)
	if fs == nil {
		return false
	}
	select {
	case <-fs.done:
		return true
	default:
		return false
	}
}

// DropConnections closes the client websocket of every session without a
// close handshake on the protocol level, as a network failure would. The
// agents wait for the client to come back.
func (s *Service) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fs := range s.sessions {
		fs.mu.Lock()
		if fs.cur != nil {
			_ = fs.cur.Close()
		}
		fs.mu.Unlock()
	}
}

func (s *Service) session(id string) *fakeSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *Service) newToken(id string) string {
	tok := "tok-" + uuid.NewString()
	s.mu.Lock()
	for t, sid := range s.tokens {
		if sid == id {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = id
	s.mu.Unlock()
	return tok
}

// StartSession creates a session and its plugin.
func (s *Service) StartSession(ctx context.Context, in *ssm.StartSessionInput, _ ...func(*ssm.Options)) (*ssm.StartSessionOutput, error) {
	if p := s.startErr.Load(); p != nil {
		return nil, *p
	}
	if aws.ToString(in.Target) == "" {
		return nil, errors.New("ValidationException: Target is required")
	}
	plugin, err := s.Plugin(in)
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("tester-%017x", s.seq.Add(1))
	sctx, cancel := context.WithCancel(context.Background())
	fs := &fakeSession{
		svc:    s,
		id:     id,
		target: aws.ToString(in.Target),
		plugin: plugin,
		conns:  make(chan *transport.Conn, 4),
		ctx:    sctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	s.sessions[id] = fs
	s.starts = append(s.starts, in)
	s.mu.Unlock()
	return &ssm.StartSessionOutput{
		SessionId:  aws.String(id),
		StreamUrl:  aws.String(s.URL + "/v1/data-channel/" + id + "?role=publish_subscribe"),
		TokenValue: aws.String(s.newToken(id)),
	}, nil
}

// ResumeSession issues a new token, or none after SetResumeNullToken.
func (s *Service) ResumeSession(ctx context.Context, in *ssm.ResumeSessionInput, _ ...func(*ssm.Options)) (*ssm.ResumeSessionOutput, error) {
	s.resumes.Add(1)
	id := aws.ToString(in.SessionId)
	fs := s.session(id)
	if fs == nil {
		return nil, errors.New("DoesNotExistException: no such session")
	}
	out := &ssm.ResumeSessionOutput{SessionId: aws.String(id), StreamUrl: aws.String(s.URL + "/v1/data-channel/" + id + "?role=publish_subscribe&resumed=1")}
	if !s.resumeNull.Load() {
		out.TokenValue = aws.String(s.newToken(id))
	}
	return out, nil
}

// TerminateSession ends the session's plugin; the client then receives
// channel_closed.
func (s *Service) TerminateSession(ctx context.Context, in *ssm.TerminateSessionInput, _ ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error) {
	s.terminates.Add(1)
	id := aws.ToString(in.SessionId)
	if fs := s.session(id); fs != nil {
		fs.cancel()
	}
	return &ssm.TerminateSessionOutput{SessionId: aws.String(id)}, nil
}

// serveDataChannel accepts a client data channel (§9.7).
func (s *Service) serveDataChannel(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/data-channel/")
	conn, err := transport.Upgrade(w, r, transport.ServerOptions{})
	if err != nil {
		return
	}
	kind, body, err := conn.ReadFrame()
	if err != nil || kind != transport.Text {
		_ = conn.Close()
		return
	}
	var open wire.OpenDataChannelFrame
	if err := json.Unmarshal(body, &open); err != nil {
		_ = conn.Close()
		return
	}
	s.mu.Lock()
	sid, ok := s.tokens[open.TokenValue]
	fs := s.sessions[id]
	s.mu.Unlock()
	if !ok || sid != id || fs == nil || open.MessageSchemaVersion != wire.MessageSchemaVersion ||
		open.ClientID == "" || open.RequestID == "" || open.ClientVersion == "" {
		s.rejected.Add(1)
		_ = conn.Close()
		return
	}
	fs.accept(conn)
}

// fakeSession is one session on the agent side.
type fakeSession struct {
	svc    *Service
	id     string
	target string
	plugin Plugin
	conns  chan *transport.Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	cur     *transport.Conn
	started bool
	sizes   []wire.SizeData
	flags   []wire.Flag
}

func (fs *fakeSession) wait(d time.Duration) {
	fs.mu.Lock()
	started := fs.started
	fs.mu.Unlock()
	if !started {
		return
	}
	select {
	case <-fs.done:
	case <-time.After(d):
	}
}

func (fs *fakeSession) accept(conn *transport.Conn) {
	fs.mu.Lock()
	fs.cur = conn
	start := !fs.started
	fs.started = true
	fs.mu.Unlock()
	if !start {
		select {
		case fs.conns <- conn:
		default:
			_ = conn.Close()
		}
		return
	}
	go fs.run(conn)
}

func (fs *fakeSession) reconnect(ctx context.Context) (datachannel.MessageConn, error) {
	select {
	case c := <-fs.conns:
		return blackholeConn{c, &fs.svc.blackhole}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-fs.ctx.Done():
		return nil, fs.ctx.Err()
	case <-time.After(15 * time.Second):
		return nil, errors.New("client did not come back")
	}
}

func (fs *fakeSession) onControl(p datachannel.Packet) error {
	switch p.Type {
	case wire.PayloadSize:
		var sz wire.SizeData
		if err := wire.DecodeJSON(p.Data, &sz); err == nil {
			fs.mu.Lock()
			fs.sizes = append(fs.sizes, sz)
			fs.mu.Unlock()
		}
	case wire.PayloadFlag:
		if f, err := wire.DecodeFlag(p.Data); err == nil {
			fs.mu.Lock()
			fs.flags = append(fs.flags, f)
			fs.mu.Unlock()
			if f == wire.FlagTerminateSession {
				fs.cancel()
			}
		}
	}
	if fs.plugin.Control != nil {
		fs.plugin.Control(p)
	}
	return nil
}

// run serves the session: handshake, plugin, then channel_closed (§7.4).
func (fs *fakeSession) run(conn *transport.Conn) {
	defer close(fs.done)
	defer fs.cancel()
	p := fs.plugin
	cfg := datachannel.Config{
		Role:         datachannel.RoleAgent,
		SessionID:    fs.id,
		TargetID:     fs.target,
		AgentVersion: p.AgentVersion,
		Agent: datachannel.AgentSession{
			SessionType:    p.SessionType,
			Properties:     p.Properties,
			SeparateOutput: p.SeparateOutput,
		},
		OnControl: fs.onControl,
		Reconnect: fs.reconnect,
	}
	if fs.svc.Tune != nil {
		fs.svc.Tune(&cfg)
	}
	ch, err := datachannel.New(blackholeConn{conn, &fs.svc.blackhole}, cfg)
	if err != nil {
		fs.svc.tb.Errorf("sessiontest: agent channel: %v", err)
		_ = conn.Close()
		return
	}
	defer ch.Close()
	if _, err := ch.Handshake(fs.ctx); err != nil {
		return
	}
	ran := make(chan error, 1)
	go func() {
		if p.Run == nil {
			<-fs.ctx.Done()
			ran <- nil
			return
		}
		ran <- p.Run(fs.ctx, ch)
	}()
	select {
	case <-ran:
	case <-fs.ctx.Done():
	case <-ch.Done():
		return // the connection is gone for good
	}
	// Wait for the client to acknowledge everything, then close (§7.4).
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = ch.Flush(fctx)
	cancel()
	fs.sendChannelClosed()
}

func (fs *fakeSession) sendChannelClosed() {
	out := ""
	if p := fs.svc.closeOutput.Load(); p != nil {
		out = *p
	}
	now := time.Now()
	id := uuid.New()
	body, err := wire.EncodeJSON(wire.ChannelClosed{
		MessageID:     id.String(),
		CreatedDate:   fmt.Sprint(now.UnixMilli()),
		DestinationID: fs.target,
		SessionID:     fs.id,
		MessageType:   wire.TypeChannelClosed,
		SchemaVersion: 1,
		Output:        out,
	})
	if err != nil {
		return
	}
	frame, err := wire.Encode(&wire.Message{
		MessageType:   wire.TypeChannelClosed,
		SchemaVersion: wire.SchemaVersion,
		CreatedDate:   wire.UnixMilli(now),
		Flags:         wire.FlagsAck,
		MessageID:     id,
		PayloadType:   wire.PayloadNone,
		Payload:       body,
	})
	if err != nil {
		return
	}
	fs.mu.Lock()
	c := fs.cur
	fs.mu.Unlock()
	if c != nil {
		_ = c.WriteMessage(frame)
	}
}
