package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// fakeMGS is a minimal ssmmessages service written from SESSION-PROTOCOL.md
// §9.2–§9.7: control channel, CreateDataChannel and a data-channel relay.
type fakeMGS struct {
	t   testing.TB
	srv *httptest.Server

	mu            sync.Mutex
	ctl           *transport.Conn
	ctlCreates    int
	dataCreates   map[string]int
	sessions      map[string]*fakeSession
	terminated    map[string]bool
	skipAcks      int // agent_task_complete messages to leave unacknowledged
	ctlOpens      chan wire.OpenControlChannelInput
	taskCompletes chan taskComplete
	conns         []*transport.Conn
	handlers      sync.WaitGroup
}

type taskComplete struct {
	MessageID string
	Body      wire.AgentTaskComplete
}

// fakeSession is the relay state of one session.
type fakeSession struct {
	mu     sync.Mutex
	agent  *transport.Conn
	client *transport.Conn
	states chan string
	// maxOutput is the largest output_stream_data payload the agent sent.
	maxOutput atomic.Int64
}

func newFakeMGS(t testing.TB) *fakeMGS {
	f := &fakeMGS{
		t:             t,
		dataCreates:   map[string]int{},
		sessions:      map[string]*fakeSession{},
		terminated:    map[string]bool{},
		ctlOpens:      make(chan wire.OpenControlChannelInput, 16),
		taskCompletes: make(chan taskComplete, 64),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/control-channel/{id}", f.createControl)
	mux.HandleFunc("GET /v1/control-channel/{id}", f.controlSocket)
	mux.HandleFunc("POST /v1/data-channel/{sid}", f.createData)
	mux.HandleFunc("GET /v1/data-channel/{sid}", f.dataSocket)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.handlers.Wait()
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

// upgrade accepts a websocket and tracks it for the cleanup.
func (f *fakeMGS) upgrade(w http.ResponseWriter, r *http.Request) (*transport.Conn, error) {
	conn, err := transport.Upgrade(w, r, transport.ServerOptions{})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.conns = append(f.conns, conn)
	f.handlers.Add(1)
	f.mu.Unlock()
	return conn, nil
}

func (f *fakeMGS) session(sid string) *fakeSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[sid]
	if s == nil {
		s = &fakeSession{states: make(chan string, 16)}
		f.sessions[sid] = s
	}
	return s
}

func writeToken(w http.ResponseWriter, root, token string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "<%s><MessageSchemaVersion>1.0</MessageSchemaVersion><TokenValue>%s</TokenValue></%s>", root, token, root)
}

func (f *fakeMGS) createControl(w http.ResponseWriter, r *http.Request) {
	var in struct{ MessageSchemaVersion, RequestId string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.MessageSchemaVersion != "1.0" || in.RequestId == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.ctlCreates++
	f.mu.Unlock()
	writeToken(w, "CreateControlChannelOutput", "ctl-token-"+r.PathValue("id"))
}

func (f *fakeMGS) controlSocket(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "role=subscribe&stream=input" {
		http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	conn, err := f.upgrade(w, r)
	if err != nil {
		return
	}
	defer f.handlers.Done()
	defer conn.Close()
	kind, b, err := conn.ReadFrame()
	if err != nil || kind != transport.Text {
		return
	}
	var open wire.OpenControlChannelInput
	if err := json.Unmarshal(b, &open); err != nil || open.TokenValue != "ctl-token-"+r.PathValue("id") ||
		!bytes.Contains(b, []byte(`"Cookie":null`)) {
		f.t.Errorf("bad OpenControlChannel: %s", b)
		return
	}
	f.mu.Lock()
	f.ctl = conn
	f.mu.Unlock()
	f.ctlOpens <- open
	for {
		frame, err := conn.ReadMessage()
		if err != nil {
			f.mu.Lock()
			if f.ctl == conn {
				f.ctl = nil
			}
			f.mu.Unlock()
			return
		}
		m, err := wire.Decode(frame)
		if err != nil || m.MessageType != wire.TypeAgentTaskComplete {
			continue
		}
		var tc wire.AgentTaskComplete
		if err := wire.DecodeJSON(m.Payload, &tc); err != nil {
			f.t.Errorf("bad agent_task_complete: %v", err)
			continue
		}
		f.taskCompletes <- taskComplete{MessageID: m.MessageID.String(), Body: tc}
		f.mu.Lock()
		skip := f.skipAcks > 0
		if skip {
			f.skipAcks--
		}
		f.mu.Unlock()
		if !skip {
			body, _ := json.Marshal(wire.AgentTaskAcknowledge{SchemaVersion: 1, MessageID: m.MessageID.String(), TaskID: tc.TaskID, Topic: wire.TypeAgentTaskComplete})
			// The agent may be closing: a failed ack is not the test's concern.
			_ = f.writeControl(wire.TypeAgentTaskAcknowledge, body)
		}
	}
}

func (f *fakeMGS) createData(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("sid")
	var in struct{ MessageSchemaVersion, RequestId, ClientId string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.MessageSchemaVersion != "1.0" || in.ClientId != "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	dead := f.terminated[sid]
	f.dataCreates[sid]++
	f.mu.Unlock()
	if dead {
		http.Error(w, "<BadRequestException><Message>Session is already terminated</Message></BadRequestException>", http.StatusBadRequest)
		return
	}
	writeToken(w, "CreateDataChannelOutput", "data-token-"+sid)
}

func (f *fakeMGS) dataSocket(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("sid")
	conn, err := f.upgrade(w, r)
	if err != nil {
		return
	}
	defer f.handlers.Done()
	defer conn.Close()
	kind, b, err := conn.ReadFrame()
	if err != nil || kind != transport.Text {
		return
	}
	var open wire.OpenDataChannelFrame
	if err := json.Unmarshal(b, &open); err != nil {
		return
	}
	s := f.session(sid)
	isAgent := open.IsAgent()
	if isAgent {
		if open.TokenValue != "data-token-"+sid || open.ClientID != "" {
			f.t.Errorf("bad agent OpenDataChannel for %s", sid)
			return
		}
	} else if open.TokenValue != "client-token-"+sid {
		return
	}
	s.mu.Lock()
	if isAgent {
		s.agent = conn
	} else {
		s.client = conn
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.agent == conn {
			s.agent = nil
		}
		if s.client == conn {
			s.client = nil
		}
		s.mu.Unlock()
	}()
	for {
		frame, err := conn.ReadMessage()
		if err != nil {
			return
		}
		mt, _, err := wire.DecodeHeader(frame)
		if err != nil {
			continue
		}
		s.mu.Lock()
		peer := s.client
		if !isAgent {
			peer = s.agent
		}
		s.mu.Unlock()
		switch {
		case isAgent && mt == wire.TypeAgentSessionState:
			m, err := wire.Decode(frame)
			if err != nil {
				continue
			}
			var st wire.AgentSessionState
			_ = wire.DecodeJSON(m.Payload, &st)
			s.states <- st.SessionState
			if st.SessionState == wire.SessionStateTerminating && peer != nil {
				// §9.8: tell the client, close it; the agent closes itself.
				_ = peer.WriteMessage(channelClosedFrame(sid))
				_ = peer.Close()
			}
		case isAgent && (mt == wire.TypeOutputStreamData || mt == wire.TypeAcknowledge),
			!isAgent && (mt == wire.TypeInputStreamData || mt == wire.TypeAcknowledge):
			if mt == wire.TypeOutputStreamData {
				if n := int64(len(frame) - wire.FrameHeaderSize); n > s.maxOutput.Load() {
					s.maxOutput.Store(n)
				}
			}
			if peer != nil {
				_ = peer.WriteMessage(frame) // no peer: drop, the sender resends
			}
		}
	}
}

func channelClosedFrame(sid string) []byte {
	body, _ := json.Marshal(wire.ChannelClosed{MessageID: uuid.NewString(), CreatedDate: "1700000000010", SessionID: sid, MessageType: wire.TypeChannelClosed, SchemaVersion: 1})
	m := wire.Message{MessageType: wire.TypeChannelClosed, SchemaVersion: 1, CreatedDate: wire.UnixMilli(time.Now()), Flags: wire.FlagsAck, MessageID: uuid.New(), Payload: body}
	b, _ := wire.Encode(&m)
	return b
}

// sendControl writes a message to the agent's control channel.
func (f *fakeMGS) sendControl(messageType string, body []byte) {
	if err := f.writeControl(messageType, body); err != nil {
		f.t.Errorf("%v", err)
	}
}

func (f *fakeMGS) writeControl(messageType string, body []byte) error {
	f.mu.Lock()
	conn := f.ctl
	f.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("no control channel for %s", messageType)
	}
	m := wire.Message{MessageType: messageType, SchemaVersion: 1, CreatedDate: wire.UnixMilli(time.Now()), MessageID: uuid.New(), Payload: body}
	b, err := wire.Encode(&m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", messageType, err)
	}
	if err := conn.WriteMessage(b); err != nil {
		return fmt.Errorf("writing %s: %w", messageType, err)
	}
	return nil
}

// startSession sends interactive_shell for a session document.
func (f *fakeMGS) startSession(sid string, doc wire.SessionDocument, runAsUser string) {
	task := wire.AgentTaskPayload{SessionID: sid, DocumentName: "SSM-SessionManagerRunShell", RunAsUser: runAsUser,
		SessionOwner: "arn:aws:iam::111122223333:user/test", Parameters: map[string]json.RawMessage{}, DocumentContent: doc}
	content, err := json.Marshal(task)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := json.Marshal(wire.InteractiveShell{Content: string(content), TaskID: sid, Topic: "aws.ssm.sendCommand", SchemaVersion: 1})
	f.sendControl(wire.TypeInteractiveShell, body)
}

// closeSession sends channel_closed on the control channel (TerminateSession).
func (f *fakeMGS) closeSession(sid string) {
	f.mu.Lock()
	f.terminated[sid] = true
	f.mu.Unlock()
	body, _ := json.Marshal(wire.ChannelClosed{MessageID: uuid.NewString(), CreatedDate: "1700000000010", SessionID: sid, MessageType: wire.TypeChannelClosed, SchemaVersion: 1})
	f.sendControl(wire.TypeChannelClosed, body)
}

func (f *fakeMGS) dataCreateCount(sid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dataCreates[sid]
}

// waitTaskComplete returns the next agent_task_complete.
func (f *fakeMGS) waitTaskComplete(t testing.TB, timeout time.Duration) taskComplete {
	t.Helper()
	select {
	case tc := <-f.taskCompletes:
		return tc
	case <-time.After(timeout):
		t.Fatalf("no agent_task_complete within %v", timeout)
		return taskComplete{}
	}
}

// waitState returns the next agent_session_state of a session.
func (s *fakeSession) waitState(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case st := <-s.states:
		return st
	case <-time.After(timeout):
		t.Fatalf("no agent_session_state within %v", timeout)
		return ""
	}
}

// connectClient opens the client side of a session through the relay.
func (f *fakeMGS) connectClient(t testing.TB, sid string, cfg datachannel.Config) *datachannel.Channel {
	t.Helper()
	url := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/v1/data-channel/" + sid + "?role=publish_subscribe"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := transport.Dial(ctx, url, transport.DialOptions{})
	if err != nil {
		t.Fatalf("dialing the relay: %v", err)
	}
	open, _ := json.Marshal(wire.OpenDataChannelInput{MessageSchemaVersion: "1.0", RequestID: uuid.NewString(),
		TokenValue: "client-token-" + sid, ClientID: uuid.NewString(), ClientVersion: cfg.ClientVersion})
	if err := conn.WriteText(open); err != nil {
		t.Fatal(err)
	}
	cfg.Role = datachannel.RoleClient
	cfg.SessionID = sid
	ch, err := datachannel.New(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// collector reads a channel's Output in the background.
type collector struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
	done chan struct{}
	err  error
}

func collect(ch *datachannel.Channel) *collector {
	c := &collector{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		b := make([]byte, 4096)
		for {
			n, err := ch.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			if err != nil {
				c.err = err
			}
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *collector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor waits until the output contains s and returns it.
func (c *collector) waitFor(t testing.TB, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if out := c.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-c.more:
		case <-c.done:
			if out := c.String(); strings.Contains(out, s) {
				return out
			}
			t.Fatalf("output ended without %q: %q (%v)", s, c.String(), c.err)
		case <-deadline:
			t.Fatalf("no %q in output within %v: %q", s, timeout, c.String())
		}
	}
}
