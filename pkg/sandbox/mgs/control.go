package mgs

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sigv4"
)

// Ping statuses reported for instances (DescribeInstanceInformation).
const (
	// PingStatusOnline means the instance's control channel is open.
	PingStatusOnline = "Online"
	// PingStatusConnectionLost means the control channel was open once and
	// is gone now.
	PingStatusConnectionLost = "ConnectionLost"
)

// InstanceInfo describes an instance that has opened a control channel.
type InstanceInfo struct {
	InstanceID string
	// PingStatus is PingStatusOnline or PingStatusConnectionLost.
	PingStatus string
	// LastPingDateTime is when the agent last showed life: the channel
	// opening, a frame or a websocket ping.
	LastPingDateTime time.Time
	// AgentVersion and PlatformType come from OpenControlChannel (§9.3).
	AgentVersion string
	PlatformType string
	// AccountID is the account of the credentials that created the
	// control channel ("" when it was not signed).
	AccountID string
}

// instance is the service's view of one agent.
type instance struct {
	id           string
	tokens       []string // issued by CreateControlChannel, newest last
	cc           *controlConn
	everOnline   bool
	lastSeen     time.Time
	agentVersion string
	platformType string
	accountID    string
}

// controlConn is one open control channel.
type controlConn struct {
	conn *transport.Conn
}

// createControlChannel answers POST /v1/control-channel/<id> (§9.2).
func (s *Service) createControlChannel(w http.ResponseWriter, r *http.Request, instanceID string) {
	drainBody(r)
	token := newToken()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "service is shutting down")
		return
	}
	if s.removed[instanceID] {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "AccessDeniedException", "instance "+instanceID+" is deregistered")
		return
	}
	inst := s.instanceLocked(instanceID)
	if c := sigv4.CallerFrom(r.Context()); c != nil {
		inst.accountID = c.AccountID
	}
	inst.tokens = append(inst.tokens, token)
	if len(inst.tokens) > maxTokensPerInstance {
		inst.tokens = inst.tokens[len(inst.tokens)-maxTokensPerInstance:]
	}
	s.mu.Unlock()
	writeToken(w, "CreateControlChannelOutput", token)
}

// instanceLocked returns the instance record for id, creating it. s.mu held.
func (s *Service) instanceLocked(id string) *instance {
	inst := s.instances[id]
	if inst == nil {
		inst = &instance{id: id}
		s.instances[id] = inst
	}
	return inst
}

// serveControlChannel runs one control-channel websocket (§9.3, §9.4).
func (s *Service) serveControlChannel(w http.ResponseWriter, r *http.Request, instanceID string) {
	opt := s.connOpt
	var cc *controlConn
	opt.Debug = func(format string, _ ...any) {
		// Websocket pings count as signs of life for LastPingDateTime.
		if strings.HasPrefix(format, "ping received") {
			s.touchInstance(instanceID)
		}
	}
	conn, err := transport.Upgrade(w, r, opt)
	if err != nil {
		s.logf("control channel %s: %v", instanceID, err)
		return
	}
	untrack, ok := s.track(conn)
	if !ok {
		return
	}
	defer untrack()
	cc = &controlConn{conn: conn}
	defer func() { _ = conn.Close() }()

	open, ok := s.readOpen(conn, "control channel "+instanceID)
	if !ok {
		return
	}
	var in wire.OpenControlChannelInput
	if err := wire.DecodeJSON(open, &in); err != nil {
		s.logf("control channel %s: bad OpenControlChannel frame", instanceID)
		return
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	inst := s.instances[instanceID]
	valid := false
	if inst != nil && in.TokenValue != "" {
		for _, t := range inst.tokens {
			if tokenEqual(t, in.TokenValue) {
				valid = true
			}
		}
	}
	if !valid {
		s.mu.Unlock()
		s.logf("control channel %s: rejected: invalid token", instanceID)
		return
	}
	old := inst.cc
	inst.cc = cc
	inst.everOnline = true
	inst.lastSeen = s.now()
	inst.agentVersion = in.AgentVersion
	inst.platformType = in.PlatformType
	s.mu.Unlock()
	if old != nil {
		_ = old.conn.Close()
	}
	s.logf("control channel %s: open (agent %s, %s)", instanceID, in.AgentVersion, in.PlatformType)

	for {
		kind, b, err := conn.ReadFrame()
		if err != nil {
			break
		}
		s.touchInstance(instanceID)
		if kind != transport.Binary {
			continue
		}
		m, err := wire.Decode(b)
		if err != nil {
			continue
		}
		if m.MessageType == wire.TypeAgentTaskComplete {
			s.agentTaskComplete(cc, instanceID, &m)
		}
		// agent_telemetry and anything else: ignored (§9.4).
	}

	s.mu.Lock()
	if inst.cc == cc {
		inst.cc = nil
		inst.lastSeen = s.now()
	}
	s.mu.Unlock()
	s.logf("control channel %s: closed", instanceID)
}

// readOpen reads the first frame of a channel, which must be TEXT and arrive
// within OpenTimeout.
func (s *Service) readOpen(conn *transport.Conn, what string) ([]byte, bool) {
	t := time.AfterFunc(s.opts.OpenTimeout, func() { _ = conn.Close() })
	kind, b, err := conn.ReadFrame()
	stopped := t.Stop()
	if err != nil || !stopped {
		s.logf("%s: no open frame: closed before the first frame", what)
		return nil, false
	}
	if kind != transport.Text {
		s.logf("%s: first frame is not TEXT", what)
		return nil, false
	}
	return b, true
}

// touchInstance records a sign of life.
func (s *Service) touchInstance(id string) {
	s.mu.Lock()
	if inst := s.instances[id]; inst != nil {
		inst.lastSeen = s.now()
	}
	s.mu.Unlock()
}

// agentTaskComplete acknowledges an agent_task_complete and ends its session.
func (s *Service) agentTaskComplete(cc *controlConn, instanceID string, m *wire.Message) {
	var body wire.AgentTaskComplete
	if err := wire.DecodeJSON(m.Payload, &body); err != nil {
		s.logf("control channel %s: bad agent_task_complete body", instanceID)
		return
	}
	ack, err := encodeJSONFrame(s.now(), wire.TypeAgentTaskAcknowledge, 0, wire.AgentTaskAcknowledge{
		SchemaVersion: 1,
		MessageID:     m.MessageID.String(),
		TaskID:        body.TaskID,
		Topic:         wire.TypeAgentTaskComplete,
	})
	if err == nil {
		if err := cc.conn.WriteMessage(ack); err != nil {
			s.logf("control channel %s: writing agent_task_acknowledge: %v", instanceID, err)
		}
	}
	s.mu.Lock()
	ss := s.sessions[body.TaskID]
	if ss != nil && ss.spec.Target != instanceID {
		ss = nil
	}
	s.mu.Unlock()
	if ss != nil {
		s.endSession(ss, "", endByAgent)
	}
}

// RemoveInstance deregisters an instance: its control channel (if open) is
// closed, it no longer appears in Instances, and CreateControlChannel for
// it is refused from now on, as AWS refuses a deregistered or terminated
// node.
func (s *Service) RemoveInstance(id string) {
	s.mu.Lock()
	inst := s.instances[id]
	delete(s.instances, id)
	s.removed[id] = true
	s.mu.Unlock()
	if inst != nil && inst.cc != nil {
		_ = inst.cc.conn.Close()
	}
}

// Instances returns every instance that has opened a control channel,
// sorted by id.
func (s *Service) Instances() []InstanceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InstanceInfo, 0, len(s.instances))
	for _, inst := range s.instances {
		if !inst.everOnline {
			continue
		}
		out = append(out, inst.infoLocked())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out
}

// Instance returns the state of one instance; ok is false if it never
// opened a control channel.
func (s *Service) Instance(id string) (info InstanceInfo, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.instances[id]
	if inst == nil || !inst.everOnline {
		return InstanceInfo{}, false
	}
	return inst.infoLocked(), true
}

// infoLocked snapshots inst. s.mu held.
func (inst *instance) infoLocked() InstanceInfo {
	st := PingStatusConnectionLost
	if inst.cc != nil {
		st = PingStatusOnline
	}
	return InstanceInfo{
		InstanceID:       inst.id,
		PingStatus:       st,
		LastPingDateTime: inst.lastSeen,
		AgentVersion:     inst.agentVersion,
		PlatformType:     inst.platformType,
		AccountID:        inst.accountID,
	}
}
