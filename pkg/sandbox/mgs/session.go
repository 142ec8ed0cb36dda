package mgs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// Session statuses, as DescribeSessions reports them.
const (
	// StatusConnecting: started, the client has not connected yet.
	StatusConnecting = "Connecting"
	// StatusConnected: the client's data channel is open.
	StatusConnected = "Connected"
	// StatusDisconnected: the client was connected and its socket dropped;
	// ResumeSession can bring it back.
	StatusDisconnected = "Disconnected"
	// StatusTerminated: the session is over.
	StatusTerminated = "Terminated"
	// StatusFailed: the session could not be started on the agent.
	StatusFailed = "Failed"
)

// Reasons put in channel_closed Output when the service ends a session.
const (
	// ReasonIdleTimeout is sent when idleSessionTimeout expires (§9.9).
	ReasonIdleTimeout = "Session terminated due to idle timeout."
	// ReasonMaxDuration is sent when maxSessionDuration expires (§9.9).
	ReasonMaxDuration = "Session terminated because it reached the maximum session duration."
)

// SessionSpec describes a session to start. The SSM API layer resolves the
// document and its parameters; the service only delivers them.
type SessionSpec struct {
	// SessionID is the new session's id (see NewSessionID). Required.
	SessionID string
	// Target is the instance id. Required.
	Target string
	// Owner is the SessionOwner ARN of the caller.
	Owner string
	// DocumentName is the session document's name, e.g.
	// SSM-SessionManagerRunShell or AWS-StartPortForwardingSession.
	DocumentName string
	// Document is the document content with properties and inputs already
	// substituted (§9.4).
	Document wire.SessionDocument
	// RunAsUser is sent as the payload's RunAsUser (usually empty).
	RunAsUser string
	// Reason is the caller's StartSession reason, kept for DescribeSessions.
	Reason string
	// IdleTimeout ends the session after this long without stream data.
	// Zero means DefaultIdleTimeout; negative disables it.
	IdleTimeout time.Duration
	// MaxDuration ends the session this long after it started. Zero or
	// negative means no limit.
	MaxDuration time.Duration
}

// SessionInfo describes a session for DescribeSessions.
type SessionInfo struct {
	SessionID    string
	Target       string
	Owner        string
	DocumentName string
	Reason       string
	// Status is one of the Status* constants.
	Status string
	// StreamURL is the session's data-channel URL.
	StreamURL string
	StartDate time.Time
	// EndDate is zero while the session is active.
	EndDate time.Time
	// Details says why the session ended (empty for a normal end).
	Details string
	// MaxDuration is the session's maximum duration (zero: none).
	MaxDuration time.Duration
}

// endCause says who ended a session.
type endCause int

const (
	// endByAgent: the agent finished (Terminating, agent_task_complete, or
	// its data channel went away for good). The agent is not told.
	endByAgent endCause = iota
	// endByService: TerminateSession or a timer. The agent is told on both
	// its channels.
	endByService
)

// session is one session's state. All fields are guarded by Service.mu.
type session struct {
	spec      SessionSpec
	streamURL string
	status    string
	start     time.Time
	end       time.Time
	details   string

	clientTokens []string
	agentTokens  []string

	agent, client   *peer
	clientEverSeen  bool
	nonInteractive  bool // never pause: the agent fails such commands (§4.7)
	agentGoneTimer  Timer
	idleTimer       Timer
	maxTimer        Timer
	lastActivity    time.Time
	lastInSeq       int64
	lastOutSeq      int64
	idle            time.Duration
	agentCloseTimer Timer
	// toClient holds the agent's frames while no client socket is
	// attached (relay.go), up to maxHeldFrames.
	toClient [][]byte
}

// terminated reports whether the session is over.
func (ss *session) terminated() bool {
	return ss.status == StatusTerminated || ss.status == StatusFailed
}

// stopTimersLocked stops the session's timers.
func (ss *session) stopTimersLocked() {
	for _, t := range []Timer{ss.agentGoneTimer, ss.idleTimer, ss.maxTimer} {
		if t != nil {
			t.Stop()
		}
	}
}

// StartSession registers a session and sends interactive_shell on the
// target's control channel (§9.4, §9.7). It returns the StreamUrl and the
// client's token. It fails with ErrTargetNotConnected if the target has no
// live control channel.
func (s *Service) StartSession(ctx context.Context, spec SessionSpec) (streamURL, token string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", fmt.Errorf("starting session: %w", err)
	}
	if !validSessionID(spec.SessionID) {
		return "", "", fmt.Errorf("starting session: %w: malformed session id %q", ErrInvalidSpec, spec.SessionID)
	}
	if spec.Target == "" {
		return "", "", fmt.Errorf("starting session %s: %w: missing target", spec.SessionID, ErrInvalidSpec)
	}
	doc := spec.Document
	if doc.SchemaVersion == "" {
		doc.SchemaVersion = "1.0"
	}
	if doc.SessionType == "" {
		doc.SessionType = ssmdoc.SessionTypeStandardStream
	}
	if doc.Parameters == nil {
		doc.Parameters = map[string]json.RawMessage{}
	}
	now := s.now()
	frame, err := interactiveShellFrame(now, wire.AgentTaskPayload{
		SessionID:       spec.SessionID,
		DocumentName:    spec.DocumentName,
		RunAsUser:       spec.RunAsUser,
		SessionOwner:    spec.Owner,
		Parameters:      map[string]json.RawMessage{},
		DocumentContent: doc,
	})
	if err != nil {
		return "", "", fmt.Errorf("starting session %s: %w", spec.SessionID, err)
	}

	token = newToken()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", "", fmt.Errorf("starting session %s: %w", spec.SessionID, ErrClosed)
	}
	inst := s.instances[spec.Target]
	if inst == nil || inst.cc == nil {
		s.mu.Unlock()
		return "", "", fmt.Errorf("starting session on %s: %w", spec.Target, ErrTargetNotConnected)
	}
	if _, dup := s.sessions[spec.SessionID]; dup {
		s.mu.Unlock()
		return "", "", fmt.Errorf("starting session %s: %w", spec.SessionID, ErrSessionExists)
	}
	cc := inst.cc
	ss := &session{
		spec:           spec,
		streamURL:      s.StreamURL(spec.SessionID),
		status:         StatusConnecting,
		start:          now,
		clientTokens:   []string{token},
		nonInteractive: doc.SessionType == ssmdoc.SessionTypeNonInteractiveCommands,
		lastActivity:   now,
		lastInSeq:      -1,
		lastOutSeq:     -1,
		idle:           spec.IdleTimeout,
	}
	if ss.idle == 0 {
		ss.idle = DefaultIdleTimeout
	}
	s.sessions[spec.SessionID] = ss
	s.order = append(s.order, spec.SessionID)
	s.armTimersLocked(ss)
	s.mu.Unlock()

	if err := cc.conn.WriteMessage(frame); err != nil {
		s.mu.Lock()
		if !ss.terminated() {
			ss.status = StatusFailed
			ss.end = s.now()
			ss.details = "could not deliver the session to the agent"
			ss.stopTimersLocked()
		}
		s.mu.Unlock()
		return "", "", fmt.Errorf("starting session on %s: %w", spec.Target, ErrTargetNotConnected)
	}
	s.logf("session %s: started on %s (%s)", spec.SessionID, spec.Target, spec.DocumentName)
	return ss.streamURL, token, nil
}

// armTimersLocked starts the idle and max-duration timers. s.mu held.
func (s *Service) armTimersLocked(ss *session) {
	if ss.idle > 0 {
		ss.idleTimer = s.opts.AfterFunc(ss.idle, func() { s.idleCheck(ss) })
	}
	if ss.spec.MaxDuration > 0 {
		ss.maxTimer = s.opts.AfterFunc(ss.spec.MaxDuration, func() {
			s.endSession(ss, ReasonMaxDuration, endByService)
		})
	}
}

// idleCheck runs when the idle timer fires: the session ends unless stream
// data arrived since the timer was armed, in which case the timer is re-armed
// for the rest of the window. Activity only stores a timestamp, so the hot
// relay path never touches the timer.
func (s *Service) idleCheck(ss *session) {
	s.mu.Lock()
	if ss.terminated() {
		s.mu.Unlock()
		return
	}
	left := ss.idle - s.now().Sub(ss.lastActivity)
	if left > 0 {
		ss.idleTimer.Reset(left)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.endSession(ss, ReasonIdleTimeout, endByService)
}

// ResumeSession hands out a new client token for the session's original
// StreamUrl (§9.8). It returns an empty token, and no error, for a session
// that is over: the client then reports that the session timed out.
func (s *Service) ResumeSession(sessionID string) (token string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[sessionID]
	if ss == nil {
		return "", fmt.Errorf("resuming session %s: %w", sessionID, ErrSessionNotFound)
	}
	if ss.terminated() || s.closed {
		return "", nil
	}
	token = newToken()
	ss.clientTokens = append(ss.clientTokens, token)
	if len(ss.clientTokens) > maxTokensPerInstance {
		ss.clientTokens = ss.clientTokens[len(ss.clientTokens)-maxTokensPerInstance:]
	}
	return token, nil
}

// TerminateSession ends a session: channel_closed goes to the agent on its
// control channel and its data channel, and to the client, whose socket is
// then closed (§9.8). reason, if not empty, is the Output the client prints.
// Terminating a session that is already over is not an error.
func (s *Service) TerminateSession(sessionID, reason string) error {
	s.mu.Lock()
	ss := s.sessions[sessionID]
	s.mu.Unlock()
	if ss == nil {
		return fmt.Errorf("terminating session %s: %w", sessionID, ErrSessionNotFound)
	}
	s.endSession(ss, reason, endByService)
	return nil
}

// endSession marks ss terminated and tells the peers (§9.8).
func (s *Service) endSession(ss *session, output string, cause endCause) {
	now := s.now()
	s.mu.Lock()
	if ss.terminated() {
		s.mu.Unlock()
		return
	}
	ss.status = StatusTerminated
	ss.end = now
	ss.details = output
	ss.stopTimersLocked()
	client, agent := ss.client, ss.agent
	ss.client = nil
	var cc *controlConn
	if inst := s.instances[ss.spec.Target]; inst != nil {
		cc = inst.cc
	}
	if agent != nil {
		// Let the agent close its own socket; close it if it does not.
		ss.agentCloseTimer = s.opts.AfterFunc(s.opts.AgentCloseGrace, agent.close)
	}
	s.mu.Unlock()

	id, target := ss.spec.SessionID, ss.spec.Target
	if client != nil {
		if f, err := channelClosedFrame(now, id, target, output); err == nil {
			client.sendLast(f)
		} else {
			client.close()
		}
	}
	if cause == endByService {
		if f, err := channelClosedFrame(now, id, target, output); err == nil {
			if cc != nil {
				if err := cc.conn.WriteMessage(f); err != nil {
					s.logf("session %s: channel_closed to the control channel: %v", id, err)
				}
			}
			if agent != nil {
				agent.send(f, s.opts.EnqueueWait)
			}
		}
	}
	if output == "" {
		s.logf("session %s: terminated", id)
	} else {
		s.logf("session %s: terminated: %s", id, output)
	}
}

// Sessions returns every session, in start order.
func (s *Service) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.order))
	for _, id := range s.order {
		ss := s.sessions[id]
		out = append(out, SessionInfo{
			SessionID:    id,
			Target:       ss.spec.Target,
			Owner:        ss.spec.Owner,
			DocumentName: ss.spec.DocumentName,
			Reason:       ss.spec.Reason,
			Status:       ss.status,
			StreamURL:    ss.streamURL,
			StartDate:    ss.start,
			EndDate:      ss.end,
			Details:      ss.details,
			MaxDuration:  max(ss.spec.MaxDuration, 0),
		})
	}
	return out
}
