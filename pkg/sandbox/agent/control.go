package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// Final task statuses of agent_task_complete (§9.4).
const (
	taskSuccess = "Success"
	taskFailed  = "Failed"
)

// controlChannel opens the control channel (§9.2, §9.3) and serves it until
// it fails or ctx ends. opened reports whether it got as far as sending
// OpenControlChannel.
func (a *Agent) controlChannel(ctx context.Context) (opened bool, err error) {
	restURL, wsURL := a.channelURLs("control-channel", a.cfg.InstanceID, "role=subscribe&stream=input")
	token, err := a.createChannel(ctx, restURL, createControlChannelInput{
		MessageSchemaVersion: wire.MessageSchemaVersion,
		RequestID:            uuid.NewString(),
	})
	if err != nil {
		return false, fmt.Errorf("creating control channel: %w", err)
	}
	conn, err := a.dial(ctx, wsURL)
	if err != nil {
		return false, fmt.Errorf("opening control channel: %w", err)
	}
	defer conn.Close()
	open, err := wire.EncodeJSON(wire.OpenControlChannelInput{
		Cookie:               nil,
		MessageSchemaVersion: wire.MessageSchemaVersion,
		RequestID:            uuid.NewString(),
		TokenValue:           token,
		AgentVersion:         a.cfg.AgentVersion,
		PlatformType:         a.cfg.PlatformType,
	})
	if err == nil {
		err = conn.WriteText(open)
	}
	if err != nil {
		return false, fmt.Errorf("sending OpenControlChannel: %w", err)
	}
	a.setControl(conn)
	defer a.setControl(nil)
	a.logf("control channel open")

	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	for {
		frame, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			return true, fmt.Errorf("reading control channel: %w", err)
		}
		a.handleControl(ctx, frame)
	}
}

func (a *Agent) setControl(c *transport.Conn) {
	a.mu.Lock()
	a.control = c
	a.mu.Unlock()
}

// handleControl dispatches one control-channel message (§9.4).
func (a *Agent) handleControl(ctx context.Context, frame []byte) {
	m, err := wire.Decode(frame)
	if err != nil {
		a.logf("control channel: dropping frame: %v", err)
		return
	}
	switch m.MessageType {
	case wire.TypeInteractiveShell:
		a.handleInteractiveShell(ctx, m.Payload)
	case wire.TypeChannelClosed:
		var cc wire.ChannelClosed
		if err := wire.DecodeJSON(m.Payload, &cc); err != nil || cc.SessionID == "" {
			a.logf("control channel: channel_closed without a session id")
			return
		}
		a.mu.Lock()
		s := a.sessions[cc.SessionID]
		a.mu.Unlock()
		if s == nil {
			a.logf("channel_closed for unknown session %s", cc.SessionID)
			return
		}
		a.logf("session %s: channel_closed from the service", cc.SessionID)
		s.cancel(errClosedByService)
	case wire.TypeAgentTaskAcknowledge:
		var ack wire.AgentTaskAcknowledge
		if err := wire.DecodeJSON(m.Payload, &ack); err != nil {
			a.logf("control channel: bad agent_task_acknowledge: %v", err)
			return
		}
		a.mu.Lock()
		w := a.ackWaiters[strings.ToLower(ack.MessageID)]
		delete(a.ackWaiters, strings.ToLower(ack.MessageID))
		a.mu.Unlock()
		if w != nil {
			close(w)
		}
	default:
		// agent_job and the rest: Run Command over MGS is out of scope.
	}
}

// validSessionID reports whether id can name a session: it is used in URL
// paths, so no separators or control characters.
func validSessionID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for _, c := range id {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("/\\?#%", c) {
			return false
		}
	}
	return true
}

// handleInteractiveShell starts a session worker (§9.4). A session id that
// is already live is refused, as the real agent's DuplicateCommand.
func (a *Agent) handleInteractiveShell(ctx context.Context, payload []byte) {
	var is wire.InteractiveShell
	if err := wire.DecodeJSON(payload, &is); err != nil {
		a.logf("interactive_shell: %v", err)
		return
	}
	var task wire.AgentTaskPayload
	if err := wire.DecodeJSON([]byte(is.Content), &task); err != nil {
		a.logf("interactive_shell: content: %v", err)
		return
	}
	if !validSessionID(task.SessionID) {
		a.logf("interactive_shell: invalid session id %q", task.SessionID)
		return
	}
	a.mu.Lock()
	if _, dup := a.sessions[task.SessionID]; dup {
		a.mu.Unlock()
		a.logf("session %s: duplicate interactive_shell ignored", task.SessionID)
		return
	}
	s := newSession(ctx, a, task)
	a.sessions[task.SessionID] = s
	a.wg.Add(1)
	a.mu.Unlock()

	go func() {
		defer a.wg.Done()
		status, output := s.run()
		s.cancel(nil)
		a.sendTaskComplete(ctx, task.SessionID, status, output)
		a.mu.Lock()
		delete(a.sessions, task.SessionID)
		a.mu.Unlock()
	}()
}

// sendTaskComplete reports a finished session and resends the identical
// message until it is acknowledged, TaskCompleteAttempts times in all (§9.4).
func (a *Agent) sendTaskComplete(ctx context.Context, sessionID, status, output string) {
	if ctx.Err() != nil {
		return // the agent is stopping; there is no one to tell
	}
	body, err := wire.EncodeJSON(wire.AgentTaskComplete{
		SchemaVersion:   1,
		TaskID:          sessionID,
		Topic:           wire.TypeAgentTaskComplete,
		FinalTaskStatus: status,
		InstanceID:      a.cfg.InstanceID,
		Output:          output,
		RetryNumber:     1,
	})
	if err != nil {
		a.logf("session %s: encoding agent_task_complete: %v", sessionID, err)
		return
	}
	id := uuid.New()
	m := wire.Message{
		MessageType:   wire.TypeAgentTaskComplete,
		SchemaVersion: wire.SchemaVersion,
		CreatedDate:   wire.UnixMilli(time.Now()),
		MessageID:     id,
		PayloadType:   wire.PayloadNone,
		Payload:       body,
	}
	frame, err := wire.Encode(&m)
	if err != nil {
		a.logf("session %s: encoding agent_task_complete: %v", sessionID, err)
		return
	}
	acked := make(chan struct{})
	key := id.String()
	a.mu.Lock()
	a.ackWaiters[key] = acked
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.ackWaiters, key)
		a.mu.Unlock()
	}()

	for attempt := 1; attempt <= a.cfg.TaskCompleteAttempts; attempt++ {
		a.mu.Lock()
		conn := a.control
		a.mu.Unlock()
		if conn != nil {
			if err := conn.WriteMessage(frame); err != nil {
				a.logf("session %s: sending agent_task_complete: %v", sessionID, err)
			}
		}
		t := time.NewTimer(a.cfg.TaskAckTimeout)
		select {
		case <-acked:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	a.logf("session %s: agent_task_complete was not acknowledged", sessionID)
}
