package mgs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

const wait = 5 * time.Second

func TestNewSessionID(t *testing.T) {
	for name, prefix := range map[string]string{
		"alice":          "alice-",
		"a/b c":          "a-b-c-",
		"":               "session-",
		"../..":          "session-",
		"bob@corp.local": "bob@corp.local-",
	} {
		id := NewSessionID(name)
		if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+17 || !validSessionID(id) {
			t.Errorf("NewSessionID(%q) = %q", name, id)
		}
	}
	if a, b := NewSessionID("x"), NewSessionID("x"); a == b {
		t.Error("ids repeat")
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "https://", "::"} {
		if _, err := New(Options{BaseURL: u}); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
	s, err := New(Options{BaseURL: "https://127.0.0.1:8443/"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.StreamURL("a-1"), "wss://127.0.0.1:8443/v1/data-channel/a-1?role=publish_subscribe"; got != want {
		t.Errorf("StreamURL = %q, want %q", got, want)
	}
}

func TestControlChannelAndInteractiveShell(t *testing.T) {
	e := newEnv(t, Options{})
	cc := e.agentControl("i-0123456789abcdef0")
	ccr := newReader(cc)

	props := json.RawMessage(`{"portNumber":"22","type":"LocalPortForwarding","localPortNumber":"0"}`)
	id, streamURL, tok := e.start("i-0123456789abcdef0", func(s *SessionSpec) {
		s.DocumentName = "AWS-StartPortForwardingSession"
		s.Document = wire.SessionDocument{SchemaVersion: "1.0", Description: "pf", SessionType: ssmdoc.SessionTypePort,
			Inputs: wire.SessionInputs{RunAsDefaultUser: "ssm-user"}, Properties: props}
	})
	if tok == "" || !strings.HasPrefix(streamURL, "ws://127.0.0.1:") ||
		!strings.HasSuffix(streamURL, "/v1/data-channel/"+id+"?role=publish_subscribe") {
		t.Fatalf("StartSession = %q, token empty=%v", streamURL, tok == "")
	}

	m := ccr.nextOfType(t, wire.TypeInteractiveShell, wait)
	if m.CreatedDate == 0 {
		t.Error("CreatedDate is zero")
	}
	var shell wire.InteractiveShell
	if err := json.Unmarshal(m.Payload, &shell); err != nil {
		t.Fatal(err)
	}
	if shell.TaskID != id || shell.SchemaVersion != 1 {
		t.Errorf("shell = %+v", shell)
	}
	// Content is a JSON string holding the task payload (double-encoded).
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(m.Payload, &raw); err != nil || raw["Content"][0] != '"' {
		t.Fatalf("Content is not a JSON string: %s", m.Payload)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(shell.Content), &p); err != nil {
		t.Fatalf("Content: %v", err)
	}
	if p["SessionId"] != id || p["DocumentName"] != "AWS-StartPortForwardingSession" ||
		p["SessionOwner"] != "arn:aws:sts::123456789012:assumed-role/dev/alice" {
		t.Errorf("payload = %v", p)
	}
	if params, ok := p["Parameters"].(map[string]any); !ok || len(params) != 0 {
		t.Errorf("Parameters = %v, want {}", p["Parameters"])
	}
	doc := p["DocumentContent"].(map[string]any)
	if doc["schemaVersion"] != "1.0" || doc["sessionType"] != "Port" {
		t.Errorf("DocumentContent = %v", doc)
	}
	if inputs := doc["inputs"].(map[string]any); inputs["runAsDefaultUser"] != "ssm-user" {
		t.Errorf("inputs = %v", inputs)
	}
	if pr := doc["properties"].(map[string]any); pr["portNumber"] != "22" || pr["type"] != "LocalPortForwarding" {
		t.Errorf("properties = %v", pr)
	}

	// agent_task_complete is acknowledged by MessageId and ends the session.
	tc := frame(t, wire.TypeAgentTaskComplete, 0, 0, mustJSON(t, wire.AgentTaskComplete{
		SchemaVersion: 1, TaskID: id, Topic: "agent_task_complete", FinalTaskStatus: "Success",
		InstanceID: "i-0123456789abcdef0", RetryNumber: 1}))
	tm, _ := wire.Decode(tc)
	if err := cc.WriteMessage(tc); err != nil {
		t.Fatal(err)
	}
	ack := ccr.nextOfType(t, wire.TypeAgentTaskAcknowledge, wait)
	var ab wire.AgentTaskAcknowledge
	if err := json.Unmarshal(ack.Payload, &ab); err != nil {
		t.Fatal(err)
	}
	if ab.MessageID != tm.MessageID.String() || ab.TaskID != id || ab.Topic != "agent_task_complete" {
		t.Errorf("ack = %+v", ab)
	}
	waitFor(t, "terminated", func() bool { return e.session(id).Status == StatusTerminated })

	// Telemetry is ignored; the channel stays up.
	if err := cc.WriteMessage(frame(t, wire.TypeAgentTelemetry, 0, 0, []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	ccr.quiet(t, 50*time.Millisecond)
	if info, _ := e.svc.Instance("i-0123456789abcdef0"); info.PingStatus != PingStatusOnline || info.PlatformType != "linux" {
		t.Errorf("instance = %+v", info)
	}

	// Closing the control channel: ConnectionLost; new sessions refused.
	_ = cc.Close()
	waitFor(t, "connection lost", func() bool {
		info, _ := e.svc.Instance("i-0123456789abcdef0")
		return info.PingStatus == PingStatusConnectionLost
	})
	_, _, err := e.svc.StartSession(context.Background(), SessionSpec{SessionID: NewSessionID("a"), Target: "i-0123456789abcdef0"})
	if !errors.Is(err, ErrTargetNotConnected) {
		t.Errorf("StartSession offline: %v", err)
	}
	if len(e.svc.Instances()) != 1 {
		t.Errorf("Instances = %+v", e.svc.Instances())
	}
}

func TestControlChannelWrongToken(t *testing.T) {
	e := newEnv(t, Options{})
	_ = e.createToken("/v1/control-channel/i-1")
	c := e.dial("/v1/control-channel/i-1?role=subscribe&stream=input")
	writeJSONText(t, c, map[string]any{"MessageSchemaVersion": "1.0", "TokenValue": "forged", "AgentVersion": "1", "PlatformType": "linux"})
	newReader(c).closed(t, wait)
	if _, ok := e.svc.Instance("i-1"); ok {
		t.Error("instance registered with a forged token")
	}
	if _, _, err := e.svc.StartSession(context.Background(), SessionSpec{SessionID: "a-1", Target: "i-1"}); !errors.Is(err, ErrTargetNotConnected) {
		t.Errorf("StartSession: %v", err)
	}
}

func TestStartSessionValidation(t *testing.T) {
	e := newEnv(t, Options{})
	e.agentControl("i-1")
	for _, spec := range []SessionSpec{{Target: "i-1"}, {SessionID: "../x", Target: "i-1"}, {SessionID: "a-1"}} {
		if _, _, err := e.svc.StartSession(context.Background(), spec); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("StartSession(%+v): %v", spec, err)
		}
	}
	id, _, _ := e.start("i-1", nil)
	if _, _, err := e.svc.StartSession(context.Background(), SessionSpec{SessionID: id, Target: "i-1"}); !errors.Is(err, ErrSessionExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := e.svc.ResumeSession("nope-1"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("ResumeSession unknown: %v", err)
	}
	if err := e.svc.TerminateSession("nope-1", ""); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("TerminateSession unknown: %v", err)
	}
}

// pair starts a session and connects agent and client data channels.
func pair(t testing.TB, e *env, mod func(*SessionSpec)) (id string, cc, agent, client *reader, ac, cl interface {
	WriteMessage([]byte) error
	Close() error
}) {
	t.Helper()
	if e.cc == nil {
		e.cc = newReader(e.agentControl("i-1"))
	}
	cc = e.cc
	id, streamURL, tok := e.start("i-1", mod)
	cc.nextOfType(t, wire.TypeInteractiveShell, wait)
	agentConn := e.agentData(id, "i-1")
	agent = newReader(agentConn)
	agent.nextOfType(t, wire.TypePausePublication, wait) // client not there yet
	clientConn := e.clientData(streamURL, tok)
	client = newReader(clientConn)
	agent.nextOfType(t, wire.TypeStartPublication, wait)
	waitFor(t, "connected", func() bool { return e.session(id).Status == StatusConnected })
	return id, cc, agent, client, agentConn, clientConn
}

func TestRelayByteForByte(t *testing.T) {
	e := newEnv(t, Options{})
	id, _, agent, client, ac, cl := pair(t, e, nil)

	// agent_session_state is consumed, not relayed.
	if err := ac.WriteMessage(frame(t, wire.TypeAgentSessionState, 0, 0,
		mustJSON(t, wire.AgentSessionState{SchemaVersion: 1, SessionState: "Connected", SessionID: id}))); err != nil {
		t.Fatal(err)
	}
	var sentIn, sentOut [][]byte
	for i := range 50 {
		in := frame(t, wire.TypeInputStreamData, int64(i), wire.PayloadOutput, bytes.Repeat([]byte{byte(i)}, 1+i*20))
		out := frame(t, wire.TypeOutputStreamData, int64(i), wire.PayloadOutput, []byte(strings.Repeat("x", 1+i)))
		sentIn, sentOut = append(sentIn, in), append(sentOut, out)
		if err := cl.WriteMessage(in); err != nil {
			t.Fatal(err)
		}
		if err := ac.WriteMessage(out); err != nil {
			t.Fatal(err)
		}
	}
	ackIn := frame(t, wire.TypeAcknowledge, 0, 0, []byte(`{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"x","AcknowledgedMessageSequenceNumber":3,"IsSequentialMessage":true}`))
	ackOut := frame(t, wire.TypeAcknowledge, 0, 0, []byte(`{"AcknowledgedMessageType":"input_stream_data","AcknowledgedMessageId":"y","AcknowledgedMessageSequenceNumber":4,"IsSequentialMessage":true}`))
	sentIn, sentOut = append(sentIn, ackIn), append(sentOut, ackOut)
	_ = cl.WriteMessage(ackIn)
	_ = ac.WriteMessage(ackOut)
	// Things that must not be relayed.
	_ = cl.WriteMessage(frame(t, wire.TypeOutputStreamData, 99, 1, []byte("spoof")))
	_ = ac.WriteMessage(frame(t, wire.TypeInputStreamData, 99, 1, []byte("spoof")))
	_ = cl.WriteMessage([]byte("garbage"))

	for i, want := range sentIn {
		if got := agent.next(t, wait); !bytes.Equal(got, want) {
			t.Fatalf("agent frame %d differs", i)
		}
	}
	for i, want := range sentOut {
		if got := client.next(t, wait); !bytes.Equal(got, want) {
			t.Fatalf("client frame %d differs", i)
		}
	}
	agent.quiet(t, 50*time.Millisecond)
	client.quiet(t, 50*time.Millisecond)
}

func TestDataChannelRejections(t *testing.T) {
	e := newEnv(t, Options{})
	e.agentControl("i-1")
	id, streamURL, _ := e.start("i-1", nil)

	// Wrong client token.
	c := e.clientData(streamURL, "forged")
	newReader(c).closed(t, wait)
	// A client token is not an agent token.
	c = e.dial("/v1/data-channel/" + id + "?role=publish_subscribe")
	writeJSONText(t, c, wire.AgentOpenDataChannelInput{MessageSchemaVersion: "1.0", TokenValue: "forged", ClientInstanceID: "i-1"})
	newReader(c).closed(t, wait)
	// Unknown session.
	code, body := e.post("/v1/data-channel/nope-1", `{}`)
	if code != http.StatusNotFound || !strings.Contains(body, "not found") {
		t.Errorf("CreateDataChannel unknown: %d %s", code, body)
	}
	c = e.dial("/v1/data-channel/nope-1?role=publish_subscribe")
	writeJSONText(t, c, wire.OpenDataChannelInput{MessageSchemaVersion: "1.0", TokenValue: "x"})
	newReader(c).closed(t, wait)
	// Binary first frame.
	c = e.dial("/v1/data-channel/" + id + "?role=publish_subscribe")
	_ = c.WriteMessage(frame(t, wire.TypeInputStreamData, 0, 1, []byte("x")))
	newReader(c).closed(t, wait)
	// Bad paths and methods.
	if code, _ := e.post("/v1/other/x", ""); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
	if code, _ := e.post("/v1/data-channel/", ""); code != http.StatusBadRequest {
		t.Errorf("empty id: %d", code)
	}
	if s := e.session(id).Status; s != StatusConnecting {
		t.Errorf("status after rejections = %s", s)
	}
}

func TestOpenTimeout(t *testing.T) {
	e := newEnv(t, Options{OpenTimeout: 50 * time.Millisecond})
	c := e.dial("/v1/control-channel/i-1?role=subscribe&stream=input")
	newReader(c).closed(t, wait)
}

func TestAgentTerminatingClosesClient(t *testing.T) {
	e := newEnv(t, Options{})
	id, _, _, client, ac, _ := pair(t, e, nil)
	_ = ac.WriteMessage(frame(t, wire.TypeAgentSessionState, 0, 0,
		mustJSON(t, wire.AgentSessionState{SchemaVersion: 1, SessionState: "Terminating", SessionID: id})))
	m := client.nextOfType(t, wire.TypeChannelClosed, wait)
	var cc wire.ChannelClosed
	if err := json.Unmarshal(m.Payload, &cc); err != nil {
		t.Fatal(err)
	}
	if cc.SessionID != id || cc.Output != "" || cc.MessageType != "channel_closed" || cc.SchemaVersion != 1 || cc.DestinationID != "i-1" {
		t.Errorf("channel_closed = %+v", cc)
	}
	client.closed(t, wait)
	s := e.session(id)
	if s.Status != StatusTerminated || s.EndDate.IsZero() {
		t.Errorf("session = %+v", s)
	}
	code, body := e.post("/v1/data-channel/"+id, `{}`)
	if code == http.StatusCreated || !strings.Contains(body, "Session is already terminated") {
		t.Errorf("CreateDataChannel after end: %d %s", code, body)
	}
	if tok, err := e.svc.ResumeSession(id); err != nil || tok != "" {
		t.Errorf("ResumeSession after end = %q, %v", tok, err)
	}
}

func TestTerminateSession(t *testing.T) {
	e := newEnv(t, Options{})
	id, cc, agent, client, _, _ := pair(t, e, nil)
	if err := e.svc.TerminateSession(id, ""); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*reader{"control": cc, "agent": agent, "client": client} {
		m := r.nextOfType(t, wire.TypeChannelClosed, wait)
		var body wire.ChannelClosed
		if err := json.Unmarshal(m.Payload, &body); err != nil || body.SessionID != id {
			t.Errorf("%s: channel_closed %s %v", name, m.Payload, err)
		}
	}
	client.closed(t, wait)
	code, body := e.post("/v1/data-channel/"+id, `{}`)
	if code == http.StatusCreated || !strings.Contains(body, "Session is already terminated") {
		t.Errorf("CreateDataChannel after terminate: %d %s", code, body)
	}
	if err := e.svc.TerminateSession(id, ""); err != nil {
		t.Errorf("second TerminateSession: %v", err)
	}
	if s := e.session(id); s.Status != StatusTerminated {
		t.Errorf("status = %s", s.Status)
	}
}

func TestAgentClosedAfterGrace(t *testing.T) {
	e := newEnv(t, Options{AgentCloseGrace: 50 * time.Millisecond})
	id, _, agent, _, _, _ := pair(t, e, nil)
	_ = e.svc.TerminateSession(id, "")
	agent.closed(t, wait)
}

func TestAgentGoneEndsSession(t *testing.T) {
	e := newEnv(t, Options{AgentReconnectGrace: 50 * time.Millisecond})
	id, _, _, client, ac, _ := pair(t, e, nil)
	_ = ac.Close()
	client.nextOfType(t, wire.TypeChannelClosed, wait)
	client.closed(t, wait)
	if s := e.session(id); s.Status != StatusTerminated {
		t.Errorf("status = %s", s.Status)
	}
}

func TestAgentReconnectKeepsSession(t *testing.T) {
	clk := newFakeClock()
	opts := clockOptions(clk)
	opts.AgentReconnectGrace = 2 * time.Second
	e := newEnv(t, opts)
	id, _, _, client, ac, cl := pair(t, e, nil)
	_ = ac.Close()
	waitFor(t, "the service to notice the agent left", func() bool { return e.agentGone(id) })
	ac2 := e.agentData(id, "i-1")
	agent2 := newReader(ac2)
	agent2.nextOfType(t, wire.TypeStartPublication, wait) // client is connected; harmless
	in := frame(t, wire.TypeInputStreamData, 0, 1, []byte("ls\n"))
	_ = cl.WriteMessage(in)
	if got := agent2.next(t, wait); !bytes.Equal(got, in) {
		t.Error("input not relayed to the reconnected agent")
	}
	clk.Advance(2500 * time.Millisecond) // past the grace: the agent is back
	client.quiet(t, 10*time.Millisecond)
	if s := e.session(id); s.Status != StatusConnected {
		t.Errorf("status = %s", s.Status)
	}
}

func TestPausePublicationWhileClientAway(t *testing.T) {
	e := newEnv(t, Options{})
	id, _, agent, client, ac, cl := pair(t, e, nil)
	_ = cl.Close()
	client.closed(t, wait)
	agent.nextOfType(t, wire.TypePausePublication, wait)
	waitFor(t, "disconnected", func() bool { return e.session(id).Status == StatusDisconnected })

	// Output while the client is away is held for it (the agent sent it
	// before the pause reached it, say), and goes first when it is back.
	held := frame(t, wire.TypeOutputStreamData, 0, 1, []byte("held"))
	_ = ac.WriteMessage(held)
	waitFor(t, "the frame to be held", func() bool { return e.heldForClient(id) == 1 })

	tok, err := e.svc.ResumeSession(id)
	if err != nil || tok == "" {
		t.Fatalf("ResumeSession = %v", err)
	}
	cl2 := e.clientData(e.session(id).StreamURL, tok)
	client2 := newReader(cl2)
	agent.nextOfType(t, wire.TypeStartPublication, wait)
	out := frame(t, wire.TypeOutputStreamData, 1, 1, []byte("back"))
	_ = ac.WriteMessage(out)
	for _, want := range [][]byte{held, out} {
		if got := client2.next(t, wait); !bytes.Equal(got, want) {
			t.Errorf("client got %q, want %q", got, want)
		}
	}
	if s := e.session(id).Status; s != StatusConnected {
		t.Errorf("status = %s", s)
	}
}

func TestNonInteractiveNotPaused(t *testing.T) {
	e := newEnv(t, Options{})
	cc := newReader(e.agentControl("i-1"))
	id, _, _ := e.start("i-1", func(s *SessionSpec) {
		s.Document.SessionType = ssmdoc.SessionTypeNonInteractiveCommands
	})
	cc.nextOfType(t, wire.TypeInteractiveShell, wait)
	agent := newReader(e.agentData(id, "i-1"))
	agent.quiet(t, 100*time.Millisecond)
}

// TestEarlyAgentOutputWaitsForClient: what an agent sends before the
// client's socket is attached (a NonInteractiveCommands handshake request,
// which is never paused) reaches the client when it connects, instead of
// waiting for the agent's retransmission timer.
func TestEarlyAgentOutputWaitsForClient(t *testing.T) {
	e := newEnv(t, Options{})
	cc := newReader(e.agentControl("i-1"))
	id, streamURL, token := e.start("i-1", func(s *SessionSpec) {
		s.Document.SessionType = ssmdoc.SessionTypeNonInteractiveCommands
	})
	cc.nextOfType(t, wire.TypeInteractiveShell, wait)
	ac := e.agentData(id, "i-1")
	early := frame(t, wire.TypeOutputStreamData, 0, 5, []byte(`{"handshake":"request"}`))
	_ = ac.WriteMessage(early)
	waitFor(t, "the frame to be held", func() bool { return e.heldForClient(id) == 1 })
	client := newReader(e.clientData(streamURL, token))
	if got := client.next(t, wait); !bytes.Equal(got, early) {
		t.Fatalf("client got %q first, want the early frame", got)
	}
	if n := e.heldForClient(id); n != 0 {
		t.Fatalf("%d frames still held", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, clockOptions(clk))
	id, _, agent, client, ac, cl := pair(t, e, func(s *SessionSpec) { s.IdleTimeout = 300 * time.Millisecond })
	// Stream data keeps it alive: new input every 100 ms for 600 ms.
	for i := range 6 {
		clk.Advance(100 * time.Millisecond)
		in := frame(t, wire.TypeInputStreamData, int64(i), 1, []byte("k"))
		_ = cl.WriteMessage(in)
		if got := agent.next(t, wait); !bytes.Equal(got, in) { // relayed: the activity is recorded
			t.Fatalf("input %d not relayed", i)
		}
	}
	if s := e.session(id).Status; s != StatusConnected {
		t.Fatalf("session ended despite activity: %s", s)
	}
	// Acks and a retransmission are not activity.
	_ = ac.WriteMessage(frame(t, wire.TypeAcknowledge, 0, 0, []byte(`{}`)))
	client.nextOfType(t, wire.TypeAcknowledge, wait)
	_ = cl.WriteMessage(frame(t, wire.TypeInputStreamData, 0, 1, []byte("dup")))
	agent.next(t, wait)
	clk.Advance(299 * time.Millisecond)
	if s := e.session(id).Status; s != StatusConnected {
		t.Fatalf("session ended %v after the last new data, before the 300ms idle timeout: %s", 299*time.Millisecond, s)
	}
	clk.Advance(time.Millisecond)
	m := client.nextOfType(t, wire.TypeChannelClosed, wait)
	var body wire.ChannelClosed
	_ = json.Unmarshal(m.Payload, &body)
	if body.Output != ReasonIdleTimeout {
		t.Errorf("Output = %q", body.Output)
	}
	if s := e.session(id); s.Status != StatusTerminated || s.Details != ReasonIdleTimeout {
		t.Errorf("session = %+v", s)
	}
}

func TestIdleTimeoutIgnoresPings(t *testing.T) {
	e := newEnv(t, Options{})
	cc := newReader(e.agentControl("i-1"))
	id, streamURL, tok := e.start("i-1", func(s *SessionSpec) { s.IdleTimeout = 50 * time.Millisecond })
	cc.nextOfType(t, wire.TypeInteractiveShell, wait)
	// A client that pings every 5 ms.
	c := e.dialPinging(streamURL, 5*time.Millisecond)
	writeJSONText(t, c, wire.OpenDataChannelInput{MessageSchemaVersion: "1.0", RequestID: uuid.NewString(), TokenValue: tok})
	client := newReader(c)
	client.nextOfType(t, wire.TypeChannelClosed, wait)
	if s := e.session(id); s.Status != StatusTerminated {
		t.Errorf("status = %s", s.Status)
	}
}

func TestMaxDuration(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, clockOptions(clk))
	id, _, agent, client, _, cl := pair(t, e, func(s *SessionSpec) {
		s.MaxDuration = 200 * time.Millisecond
		s.IdleTimeout = -1
	})
	// Activity does not extend the maximum duration.
	for i := range 19 {
		clk.Advance(10 * time.Millisecond)
		_ = cl.WriteMessage(frame(t, wire.TypeInputStreamData, int64(i), 1, []byte("x")))
		agent.next(t, wait)
	}
	if s := e.session(id).Status; s != StatusConnected {
		t.Fatalf("session ended before its maximum duration: %s", s)
	}
	clk.Advance(10 * time.Millisecond)
	m := client.nextOfType(t, wire.TypeChannelClosed, wait)
	var body wire.ChannelClosed
	_ = json.Unmarshal(m.Payload, &body)
	if body.Output != ReasonMaxDuration {
		t.Errorf("Output = %q", body.Output)
	}
	agent.nextOfType(t, wire.TypeChannelClosed, wait)
	if s := e.session(id); s.MaxDuration != 200*time.Millisecond || s.Details != ReasonMaxDuration {
		t.Errorf("session = %+v", s)
	}
}

func TestLateClientOfEndedSessionGetsChannelClosed(t *testing.T) {
	e := newEnv(t, Options{})
	e.agentControl("i-1")
	id, streamURL, tok := e.start("i-1", nil)
	_ = e.svc.TerminateSession(id, "bye")
	r := newReader(e.clientData(streamURL, tok))
	m := r.nextOfType(t, wire.TypeChannelClosed, wait)
	if !strings.Contains(string(m.Payload), `"Output":"bye"`) {
		t.Errorf("payload %s", m.Payload)
	}
	r.closed(t, wait)
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		e := newEnv(t, Options{AgentCloseGrace: 20 * time.Millisecond, AgentReconnectGrace: 20 * time.Millisecond})
		for range 3 {
			id, _, agent, client, ac, cl := pair(t, e, nil)
			_ = cl.WriteMessage(frame(t, wire.TypeInputStreamData, 0, 1, []byte("x")))
			agent.next(t, wait)
			_ = ac.WriteMessage(frame(t, wire.TypeOutputStreamData, 0, 1, []byte("y")))
			client.next(t, wait)
			_ = e.svc.TerminateSession(id, "")
			client.closed(t, wait)
			agent.closed(t, wait)
		}
		_ = e.svc.Close()
		e.srv.CloseClientConnections()
		e.srv.Close()
	}()
	http.DefaultClient.CloseIdleConnections()
	checkGoroutines(t, base)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCloseEndsPendingChannels(t *testing.T) {
	e := newEnv(t, Options{})
	// A socket that never sends its open frame, and a live control channel.
	pending := newReader(e.dial("/v1/control-channel/i-2?role=subscribe&stream=input"))
	cc := newReader(e.agentControl("i-1"))
	waitFor(t, "pending socket tracked", func() bool {
		e.svc.mu.Lock()
		defer e.svc.mu.Unlock()
		return len(e.svc.conns) == 2
	})
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	pending.closed(t, wait)
	cc.closed(t, wait)
	if _, _, err := e.svc.StartSession(context.Background(), SessionSpec{SessionID: "a-1", Target: "i-1"}); !errors.Is(err, ErrClosed) {
		t.Errorf("StartSession after Close: %v", err)
	}
	if code, _ := e.post("/v1/control-channel/i-1", "{}"); code != http.StatusServiceUnavailable {
		t.Errorf("CreateControlChannel after Close: %d", code)
	}
}
