// Package session is what a user opens over AWS Systems Manager Session
// Manager: an interactive shell, a command, a port forward or an SSH stream.
// It starts the session through the SSM API, dials the data channel
// (SESSION-PROTOCOL.md §1), runs the client role of the datachannel package
// on it and adds the behaviour of each session kind (§7, §8).
//
// Open returns a Session; one of RunShell, RunCommand, Forward or Stream
// then drives it until it ends. The caller closes it.
package session

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/uuid"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// SSMAPI is the part of the SSM client a session needs (*ssm.Client
// implements it).
type SSMAPI interface {
	StartSession(ctx context.Context, in *ssm.StartSessionInput, optFns ...func(*ssm.Options)) (*ssm.StartSessionOutput, error)
	ResumeSession(ctx context.Context, in *ssm.ResumeSessionInput, optFns ...func(*ssm.Options)) (*ssm.ResumeSessionOutput, error)
	TerminateSession(ctx context.Context, in *ssm.TerminateSessionInput, optFns ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error)
}

// StartRequest is what StartSession is asked for (§1.1).
type StartRequest struct {
	// Target is the managed node: an instance ID (i-…) or a hybrid node ID (mi-…).
	Target string
	// DocumentName is the session document; empty means the service's
	// default shell document (SSM-SessionManagerRunShell).
	DocumentName string
	// Parameters are the document's parameters; each value is a list.
	Parameters map[string][]string
	// Reason is recorded with the session; optional.
	Reason string
}

// Options tune Open. The zero value dials like the official client.
type Options struct {
	// KeyService performs KMS calls for encrypted sessions (§6). Without
	// it, a session whose preferences require KMS encryption fails its
	// handshake.
	KeyService encryption.KeyService
	// Dial configures the websocket dial (TLS roots for a sandbox, proxy).
	Dial transport.DialOptions
	// ClientID identifies this process to the service; empty means a
	// random UUID chosen once per process (§1.2).
	ClientID string
	// HandshakeTimeout bounds the wait for the session handshake, or for a
	// plain shell's first output (default 60 s).
	HandshakeTimeout time.Duration
	// Logf, when set, receives debug lines. Tokens, keys and payloads
	// never reach it.
	Logf func(format string, args ...any)
	// Tune, when set, adjusts the data channel configuration (tests use it
	// for faster retransmission).
	Tune func(*datachannel.Config)
	// MaxPayloadSize is the largest payload sent per data channel message;
	// zero means $SSMKIT_MAX_PAYLOAD (EnvMaxPayload), or else the data
	// channel's default (32 KiB). A session whose service refuses a
	// message as too big falls back to 1 KiB by itself.
	MaxPayloadSize int
	// PickOne lets OpenTarget use the single node a name pattern matches
	// (--pick-one); without it such a pattern is an error.
	PickOne bool
}

// DefaultHandshakeTimeout is how long Open waits for the session to be
// ready after the data channel is open.
const DefaultHandshakeTimeout = 60 * time.Second

// Errors a Session reports.
var (
	// ErrTimedOut means ResumeSession returned no token: the service
	// timed the session out while the connection was down (§10.3). The
	// session ended; this is not a failure of the client.
	ErrTimedOut = errors.New("session timed out")
	// ErrNotPortSession is returned by Forward for a session whose
	// document is not a LocalPortForwarding document.
	ErrNotPortSession = errors.New("not a port forwarding session")
)

// processClientID is the per-process ClientId (§1.2). It is computed once
// and never changes, so it is not mutable state.
var processClientID = sync.OnceValue(uuid.NewString)

// Session is an open Session Manager session.
type Session struct {
	api       SSMAPI
	opts      Options
	id        string
	target    string
	streamURL string
	clientID  string

	ch       *datachannel.Channel
	chReady  chan struct{} // closed once ch is set
	info     datachannel.SessionInfo
	timedOut atomic.Bool

	handler atomic.Pointer[datachannel.ControlHandler]

	terminateOnce sync.Once
	terminateErr  error
}

// Open starts a session on req.Target and waits until it is ready: the
// StartSession call, the data channel (45 s websocket handshake), the
// OpenDataChannel frame and the session handshake. On failure after
// StartSession the session is terminated.
func Open(ctx context.Context, api SSMAPI, req StartRequest, opts Options) (*Session, error) {
	if req.Target == "" {
		return nil, errors.New("starting session: no target")
	}
	if _, err := opts.maxPayload(); err != nil {
		return nil, err // before a session exists
	}
	in := &ssm.StartSessionInput{Target: aws.String(req.Target), Parameters: req.Parameters}
	if req.DocumentName != "" {
		in.DocumentName = aws.String(req.DocumentName)
	}
	if req.Reason != "" {
		in.Reason = aws.String(req.Reason)
	}
	out, err := api.StartSession(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("starting session on %s: %w", req.Target, err)
	}
	return Attach(ctx, api, req.Target, StartResponse{
		SessionID:  aws.ToString(out.SessionId),
		StreamURL:  aws.ToString(out.StreamUrl),
		TokenValue: aws.ToString(out.TokenValue),
	}, opts)
}

// StartResponse is what StartSession returned (§1.1).
type StartResponse struct {
	SessionID  string `json:"SessionId"`
	StreamURL  string `json:"StreamUrl"`
	TokenValue string `json:"TokenValue"`
}

// Attach opens the data channel of a session that was started already,
// as the AWS CLI starts one and hands the response to its plugin, and
// waits until it is ready. target is the StartSession target (the KMS data
// key is bound to it). On failure the session is terminated.
func Attach(ctx context.Context, api SSMAPI, target string, resp StartResponse, opts Options) (*Session, error) {
	if resp.SessionID == "" || resp.StreamURL == "" || resp.TokenValue == "" {
		return nil, fmt.Errorf("starting session on %s: the response lacks a session ID, stream URL or token", target)
	}

	s := &Session{
		api:       api,
		opts:      opts,
		id:        resp.SessionID,
		target:    target,
		streamURL: resp.StreamURL,
		clientID:  opts.ClientID,
		chReady:   make(chan struct{}),
	}
	if s.clientID == "" {
		s.clientID = processClientID()
	}
	if err := s.open(ctx, resp.TokenValue); err != nil {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = s.Terminate(tctx)
		cancel()
		return nil, err
	}
	return s, nil
}

func (s *Session) open(ctx context.Context, token string) error {
	conn, err := s.dialRetry(ctx, token)
	if err != nil {
		return fmt.Errorf("opening the data channel of session %s: %w", s.id, err)
	}
	cfg := datachannel.Config{
		Role:       datachannel.RoleClient,
		SessionID:  s.id,
		TargetID:   s.target,
		KeyService: s.opts.KeyService,
		OnControl:  s.onControl,
		Reconnect:  s.reconnect,
		Logf:       s.opts.Logf,
	}
	if cfg.MaxPayloadSize, err = s.opts.maxPayload(); err != nil {
		_ = conn.Close()
		return err
	}
	if s.opts.Tune != nil {
		s.opts.Tune(&cfg)
	}
	ch, err := datachannel.New(conn, cfg)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("session %s: %w", s.id, err)
	}
	s.ch = ch
	close(s.chReady)
	go s.watch()

	timeout := s.opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := ch.Handshake(hctx)
	if err != nil {
		_ = ch.Close()
		if s.timedOut.Load() {
			return fmt.Errorf("session %s: %w", s.id, ErrTimedOut)
		}
		return fmt.Errorf("session %s: %w", s.id, err)
	}
	s.info = info
	return nil
}

// watch calls TerminateSession when the agent stopped acknowledging (§4.4).
func (s *Session) watch() {
	<-s.ch.Done()
	if errors.Is(s.ch.Err(), datachannel.ErrResendTimeout) {
		s.logf("messages unacknowledged for too long: terminating session")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.Terminate(ctx)
		cancel()
	}
}

// Reconnect back-off for the first open (§10.3).
const (
	openAttempts     = 6
	openInitialDelay = 100 * time.Millisecond
	openMaxDelay     = 5 * time.Second
)

// dialRetry opens the data channel, retrying with the same token (§10.3).
func (s *Session) dialRetry(ctx context.Context, token string) (*transport.Conn, error) {
	delay := openInitialDelay + rand.N(openInitialDelay)
	var lastErr error
	for attempt := 0; attempt < openAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			delay *= 2
			if delay > openMaxDelay {
				delay = openInitialDelay + rand.N(openInitialDelay)
			}
		}
		conn, err := s.dial(ctx, token)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil || errors.Is(err, transport.ErrInsecureURL) {
			break
		}
		s.logf("opening data channel (attempt %d): %v", attempt+1, err)
	}
	return nil, lastErr
}

// dial opens one websocket to the original StreamUrl and sends the
// OpenDataChannel frame (§1.2, §1.3).
func (s *Session) dial(ctx context.Context, token string) (*transport.Conn, error) {
	conn, err := transport.Dial(ctx, s.streamURL, s.opts.Dial)
	if err != nil {
		return nil, err
	}
	body, err := wire.EncodeJSON(wire.OpenDataChannelInput{
		MessageSchemaVersion: wire.MessageSchemaVersion,
		RequestID:            uuid.NewString(),
		TokenValue:           token,
		ClientID:             s.clientID,
		ClientVersion:        datachannel.DefaultClientVersion,
	})
	if err != nil {
		_ = conn.Close()
		return nil, errors.New("encoding the OpenDataChannel request")
	}
	if err := conn.WriteText(body); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("sending the OpenDataChannel request: %w", err)
	}
	return conn, nil
}

// reconnect is the data channel's Reconnect hook: ResumeSession for a
// fresh token, then the ORIGINAL StreamUrl (§10.3, §11.22).
func (s *Session) reconnect(ctx context.Context) (datachannel.MessageConn, error) {
	<-s.chReady
	out, err := s.api.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(s.id)})
	if err != nil {
		return nil, fmt.Errorf("resuming session %s: %w", s.id, err)
	}
	token := aws.ToString(out.TokenValue)
	if token == "" {
		// The service timed the session out. End the channel from outside
		// this hook: Close waits for the goroutine that called it.
		if s.timedOut.CompareAndSwap(false, true) {
			s.logf("ResumeSession returned no token: session timed out")
			go s.ch.Close()
		}
		return nil, ErrTimedOut
	}
	conn, err := s.dial(ctx, token)
	if err != nil {
		return nil, err
	}
	s.logf("data channel reconnected")
	return conn, nil
}

func (s *Session) onControl(p datachannel.Packet) error {
	h := s.handler.Load()
	if h == nil {
		// No mode has started yet: leave it unacked, the agent resends.
		return datachannel.ErrNotReady
	}
	return (*h)(p)
}

// setHandler installs the mode's control handler.
func (s *Session) setHandler(h datachannel.ControlHandler) { s.handler.Store(&h) }

func (s *Session) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("session: "+format, args...)
	}
}

// ID returns the session ID.
func (s *Session) ID() string { return s.id }

// Target returns the target the session was opened on.
func (s *Session) Target() string { return s.target }

// MaxPayload is the largest payload the session sends per message now: the
// configured size, or 1 KiB after the service refused a larger message.
func (s *Session) MaxPayload() int { return s.ch.MaxPayload() }

// Stats returns the data channel's counters: messages sent, resent and
// received, duplicates, and whether it fell back to small messages.
func (s *Session) Stats() datachannel.Stats { return s.ch.Stats() }

// Info returns what the handshake established: session type, port
// properties, agent version, encryption.
func (s *Session) Info() datachannel.SessionInfo { return s.info }

// Done is closed when the data channel has ended.
func (s *Session) Done() <-chan struct{} { return s.ch.Done() }

// Err returns why the session ended, nil while it runs: a
// *datachannel.ClosedError when the service closed it, ErrTimedOut,
// datachannel.ErrClosed after Close, or the failure.
func (s *Session) Err() error {
	if s.timedOut.Load() {
		return ErrTimedOut
	}
	return s.ch.Err()
}

// Terminate ends the session on the service side with the
// TerminateSession API. It is safe to call more than once.
func (s *Session) Terminate(ctx context.Context) error {
	s.terminateOnce.Do(func() {
		_, err := s.api.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(s.id)})
		if err != nil {
			s.terminateErr = fmt.Errorf("terminating session %s: %w", s.id, err)
		}
	})
	return s.terminateErr
}

// Close closes the data channel. It does not terminate the session on
// the service side; see Terminate.
func (s *Session) Close() error {
	if s.ch == nil {
		return nil
	}
	err := s.ch.Close()
	s.logf("data channel: %v", s.ch.Stats())
	return err
}

// ended classifies how the session ended for the mode functions: nil for
// a normal end (channel_closed, time-out, local Close), the error
// otherwise. It also returns a line to print to stderr, if any: the
// service's reason, or with announce the official client's "Exiting
// session" line.
func (s *Session) ended(announce bool) (string, error) {
	err := s.Err()
	var ce *datachannel.ClosedError
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, ErrTimedOut):
		return fmt.Sprintf("Session: %s timed out.", s.id), nil
	case errors.As(err, &ce):
		// The official client's wording (§3.4.2).
		if ce.Output != "" {
			return fmt.Sprintf("SessionId: %s : %s", s.id, ce.Output), nil
		}
		if announce {
			return fmt.Sprintf("Exiting session with sessionId: %s.", s.id), nil
		}
		return "", nil
	case errors.Is(err, datachannel.ErrClosed):
		return "", nil
	}
	return "", fmt.Errorf("session %s: %w", s.id, err)
}

// terminateQuietly calls TerminateSession with a short deadline that does
// not depend on ctx (which is typically already cancelled).
func (s *Session) terminateQuietly(ctx context.Context) {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.Terminate(tctx); err != nil {
		s.logf("%v", err)
	}
}
