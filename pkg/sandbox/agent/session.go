package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// Causes a session can be cancelled with.
var (
	// errClosedByService: channel_closed arrived on the control channel.
	errClosedByService = errors.New("session closed by the service")
	// errTerminatedByClient: the client sent the TerminateSession flag.
	errTerminatedByClient = errors.New("session terminated by the client")
)

// flushTimeout bounds the wait for the client to acknowledge the last
// output before Terminating is sent (§7.4).
const flushTimeout = 2 * time.Second

// plugin serves one session type over an established data channel. serve
// returns the session's final status and output once it is over; it may
// start goroutines with session.goroutine, which end when the data channel
// closes.
type plugin interface {
	serve(ch *datachannel.Channel, info datachannel.SessionInfo) (status, output string)
}

// session is one session worker (§9.4–§9.6).
type session struct {
	a    *Agent
	task wire.AgentTaskPayload
	doc  *wire.SessionDocument
	id   string

	ctx    context.Context
	cancel context.CancelCauseFunc

	handler atomic.Pointer[datachannel.ControlHandler]
	// stateSent is signalled each time an agent_session_state message has
	// been written to the websocket (see trackedConn).
	stateSent chan struct{}
	// ledger follows a Port session's input (see inputLedger); nil for
	// other session types.
	ledger *inputLedger

	wg       sync.WaitGroup // plugin goroutines
	mu       sync.Mutex
	cleanups []func() // run after the plugin goroutines have ended
	// transcriptDone closes the session's transcript, when it has one.
	transcriptDone func()
}

func newSession(parent context.Context, a *Agent, task wire.AgentTaskPayload) *session {
	ctx, cancel := context.WithCancelCause(parent)
	s := &session{a: a, task: task, doc: &task.DocumentContent, id: task.SessionID, ctx: ctx, cancel: cancel,
		stateSent: make(chan struct{}, 4)}
	if task.DocumentContent.SessionType == ssmdoc.SessionTypePort {
		s.ledger = newInputLedger()
	}
	return s
}

func (s *session) logf(format string, args ...any) {
	s.a.logf("session "+s.id+": "+format, args...)
}

// goroutine runs f as a plugin goroutine that run waits for.
func (s *session) goroutine(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// atEnd registers f to run once the session's goroutines have ended.
func (s *session) atEnd(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

// setHandler installs the plugin's handler for Size and Flag messages.
func (s *session) setHandler(h datachannel.ControlHandler) { s.handler.Store(&h) }

// onControl routes Size and Flag messages to the plugin. Until the plugin
// is ready they stay unacknowledged, so the client resends them (§4.8).
func (s *session) onControl(p datachannel.Packet) error {
	if h := s.handler.Load(); h != nil {
		return (*h)(p)
	}
	switch p.Type {
	case wire.PayloadSize, wire.PayloadFlag:
		return datachannel.ErrNotReady
	}
	return nil
}

// run serves the session and returns its final status and output.
func (s *session) run() (status, output string) {
	if v := s.doc.SchemaVersion; v != "" && v != "1.0" {
		return taskFailed, fmt.Sprintf("session document schemaVersion %q is not supported (want 1.0)", v)
	}
	var (
		p   plugin
		err error
	)
	switch st := s.doc.SessionType; st {
	case ssmdoc.SessionTypeStandardStream:
		p, err = newShellPlugin(s, false)
	case ssmdoc.SessionTypeInteractiveCommands:
		p, err = newShellPlugin(s, true)
	case ssmdoc.SessionTypeNonInteractiveCommands:
		p, err = newCommandPlugin(s)
	case ssmdoc.SessionTypePort:
		p, err = newPortPlugin(s)
	default:
		err = fmt.Errorf("session type %q is not supported", st)
	}
	if err != nil {
		s.logf("%v", err)
		return taskFailed, err.Error()
	}

	conn, err := s.a.openDataChannelRetry(s.ctx, s.id)
	if err != nil {
		if s.ctx.Err() != nil {
			return taskSuccess, ""
		}
		s.logf("%v", err)
		return taskFailed, err.Error()
	}
	ch, err := datachannel.New(s.track(conn), datachannel.Config{
		Role:         datachannel.RoleAgent,
		SessionID:    s.id,
		TargetID:     s.a.cfg.InstanceID,
		AgentVersion: s.a.cfg.AgentVersion,
		Agent: datachannel.AgentSession{
			SessionType:      s.doc.SessionType,
			Properties:       s.doc.Properties,
			KMSKeyID:         s.doc.Inputs.KMSKeyID,
			RequireChallenge: s.a.cfg.RequireKMSChallenge,
			SeparateOutput:   separateOutput(s.doc),
		},
		KeyService: s.a.cfg.KeyService,
		OnControl:  s.onControl,
		Reconnect:  s.reconnect,
		Logf:       s.dataLogf(),
	})
	if err != nil {
		_ = conn.Close()
		return taskFailed, fmt.Sprintf("starting data channel: %v", err)
	}
	defer func() {
		_ = ch.Close()
		s.wg.Wait()
		s.mu.Lock()
		cleanups := s.cleanups
		s.cleanups = nil
		s.mu.Unlock()
		for _, f := range cleanups {
			f()
		}
	}()
	if err := ch.SendSessionState(wire.SessionStateConnected); err != nil {
		return s.channelEnded(ch)
	}
	info, err := ch.Handshake(s.ctx)
	if err != nil {
		if s.ctx.Err() != nil {
			return s.channelEnded(ch)
		}
		s.logf("%v", err)
		return taskFailed, err.Error()
	}
	return p.serve(ch, info)
}

// reconnect is the data channel's Reconnect: a fresh CreateDataChannel and
// websocket (§9.6). A terminated session ends the worker at once.
func (s *session) reconnect(ctx context.Context) (datachannel.MessageConn, error) {
	conn, err := s.a.openDataChannel(ctx, s.id)
	if err != nil {
		if errors.Is(err, ErrSessionTerminated) {
			s.cancel(err)
		}
		return nil, err
	}
	return s.track(conn), nil
}

// trackedConn reports when agent_session_state messages have actually been
// written. The data channel queues them; closing it right after could
// drop Terminating, which the service needs to end the client's side.
// It also shows Port sessions' incoming frames to their ledger.
type trackedConn struct {
	datachannel.MessageConn
	sent   chan<- struct{}
	ledger *inputLedger
}

func (s *session) track(c datachannel.MessageConn) datachannel.MessageConn {
	return &trackedConn{MessageConn: c, sent: s.stateSent, ledger: s.ledger}
}

func (c *trackedConn) ReadMessage() ([]byte, error) {
	b, err := c.MessageConn.ReadMessage()
	if err == nil && c.ledger != nil {
		c.ledger.observe(b)
	}
	return b, err
}

func (c *trackedConn) WriteMessage(b []byte) error {
	err := c.MessageConn.WriteMessage(b)
	if err == nil {
		c.wrote(b)
	}
	return err
}

// WriteMessages keeps the connection's batched writes (transport.Conn
// sends a batch with one system call).
func (c *trackedConn) WriteMessages(bs [][]byte) error {
	bw, ok := c.MessageConn.(interface{ WriteMessages([][]byte) error })
	if !ok {
		for _, b := range bs {
			if err := c.WriteMessage(b); err != nil {
				return err
			}
		}
		return nil
	}
	err := bw.WriteMessages(bs)
	if err == nil {
		for _, b := range bs {
			c.wrote(b)
		}
	}
	return err
}

// Recycle hands received buffers back to the connection's pool.
func (c *trackedConn) Recycle(b []byte) {
	if r, ok := c.MessageConn.(interface{ Recycle([]byte) }); ok {
		r.Recycle(b)
	}
}

// wrote signals an agent_session_state message that went out.
func (c *trackedConn) wrote(b []byte) {
	if mt, _, err := wire.DecodeHeader(b); err == nil && mt == wire.TypeAgentSessionState {
		select {
		case c.sent <- struct{}{}:
		default:
		}
	}
}

func (s *session) dataLogf() func(string, ...any) {
	if s.a.cfg.Logf == nil {
		return nil
	}
	return func(format string, args ...any) { s.logf("data channel: "+format, args...) }
}

// channelEnded turns the way a session was cut short into its final status:
// cancelled by the service or the client, or the channel closed by the
// service, is a success (§7.4); anything else is a failure.
func (s *session) channelEnded(ch *datachannel.Channel) (status, output string) {
	if cause := context.Cause(s.ctx); cause != nil {
		if errors.Is(cause, errClosedByService) || errors.Is(cause, errTerminatedByClient) ||
			errors.Is(cause, ErrSessionTerminated) || errors.Is(cause, context.Canceled) {
			return taskSuccess, ""
		}
		return taskFailed, cause.Error()
	}
	err := ch.Err()
	var ce *datachannel.ClosedError
	if err == nil || errors.As(err, &ce) || errors.Is(err, datachannel.ErrClosed) {
		return taskSuccess, ""
	}
	return taskFailed, err.Error()
}

// finishShell ends a shell-like session that ended on its own: wait for the
// client to acknowledge the output, then send Terminating (§7.4).
func (s *session) finishShell(ch *datachannel.Channel) {
	ctx, cancel := context.WithTimeout(s.ctx, flushTimeout)
	_ = ch.Flush(ctx)
	cancel()
	// The transcript is complete before the session reports its end: a
	// reader that sees the session ended (logs --follow) then finds all
	// of it, instead of racing the last flush to CloudWatch Logs.
	s.mu.Lock()
	done := s.transcriptDone
	s.mu.Unlock()
	if done != nil {
		done()
	}
	for drained := false; !drained; { // forget Connected
		select {
		case <-s.stateSent:
		default:
			drained = true
		}
	}
	if ch.SendSessionState(wire.SessionStateTerminating) != nil {
		return
	}
	select {
	case <-s.stateSent:
	case <-ch.Done():
	case <-time.After(time.Second):
	}
}

// failShell reports err to the client as output, ends the session with
// Terminating and returns the failure.
func (s *session) failShell(ch *datachannel.Channel, err error, stderr bool) (status, output string) {
	s.logf("%v", err)
	msg := []byte(err.Error() + "\r\n")
	if stderr {
		_, _ = ch.WriteStderr(msg)
	} else {
		_, _ = ch.Write(msg)
	}
	s.finishShell(ch)
	return taskFailed, err.Error()
}

// platformProperties returns the Linux part of a command document's
// properties: properties.linux when present, else properties itself.
func platformProperties(raw json.RawMessage) map[string]json.RawMessage {
	var top map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &top) != nil {
		return nil
	}
	for k, v := range top {
		if strings.EqualFold(k, "linux") {
			var linux map[string]json.RawMessage
			if json.Unmarshal(v, &linux) == nil {
				// Fall back to top-level keys the platform block lacks.
				for tk, tv := range top {
					if _, ok := lookupKey(linux, tk); !ok && !isPlatformKey(tk) {
						linux[tk] = tv
					}
				}
				return linux
			}
		}
	}
	return top
}

func isPlatformKey(k string) bool {
	switch strings.ToLower(k) {
	case "linux", "windows", "macos":
		return true
	}
	return false
}

// lookupKey finds k in m case-insensitively, as Go's JSON decoder would.
func lookupKey(m map[string]json.RawMessage, k string) (json.RawMessage, bool) {
	if v, ok := m[k]; ok {
		return v, true
	}
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return nil, false
}

// propString reads a string property; arrays of strings are joined with
// newlines (a command list) and numbers and booleans are taken as text.
func propString(m map[string]json.RawMessage, k string) (string, error) {
	v, ok := lookupKey(m, k)
	if !ok || string(v) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	var list []string
	if json.Unmarshal(v, &list) == nil {
		return strings.Join(list, "\n"), nil
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), nil
	}
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return fmt.Sprint(b), nil
	}
	return "", fmt.Errorf("property %s is neither a string nor a list of strings", k)
}

// propBool reads a boolean property that may also be "true"/"false".
func propBool(m map[string]json.RawMessage, k string) bool {
	v, ok := lookupKey(m, k)
	if !ok {
		return false
	}
	var b wire.BoolString
	if err := b.UnmarshalJSON(v); err != nil {
		return false
	}
	return bool(b)
}

// separateOutput reports whether a NonInteractiveCommands document asks for
// separate stdout/stderr streams.
func separateOutput(doc *wire.SessionDocument) bool {
	if doc.SessionType != ssmdoc.SessionTypeNonInteractiveCommands {
		return false
	}
	return propBool(platformProperties(doc.Properties), "separateOutputStream")
}
