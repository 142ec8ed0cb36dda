package mgs

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// env is one service behind a loopback HTTP server.
type env struct {
	t   testing.TB
	svc *Service
	srv *httptest.Server
	cc  *reader // control channel of i-1, opened by pair
}

// newEnv starts a Service with opts (BaseURL is filled in).
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{t: t}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.svc.ServeHTTP(w, r) })
	e.srv = httptest.NewServer(h)
	opts.BaseURL = e.srv.URL
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	svc, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.svc = svc
	t.Cleanup(func() {
		_ = svc.Close()
		e.srv.Close()
	})
	return e
}

// post makes a REST call and returns status and body.
func (e *env) post(path, body string) (int, string) {
	e.t.Helper()
	resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// createToken calls a Create*Channel endpoint and returns the token.
func (e *env) createToken(path string) string {
	e.t.Helper()
	code, body := e.post(path, `{"MessageSchemaVersion":"1.0","RequestId":"`+uuid.NewString()+`","ClientId":""}`)
	if code != http.StatusCreated {
		e.t.Fatalf("POST %s: HTTP %d %s", path, code, body)
	}
	var out struct {
		MessageSchemaVersion string
		TokenValue           string
	}
	if err := xml.Unmarshal([]byte(body), &out); err != nil {
		e.t.Fatalf("POST %s: body %q: %v", path, body, err)
	}
	if out.MessageSchemaVersion != "1.0" || out.TokenValue == "" {
		e.t.Fatalf("POST %s: body %q", path, body)
	}
	return out.TokenValue
}

// dial opens a websocket to path (relative to the server) or to a full URL.
func (e *env) dial(target string) *transport.Conn {
	e.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = "ws" + strings.TrimPrefix(e.srv.URL, "http") + target
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, target, transport.DialOptions{ConnOptions: transport.ConnOptions{PingInterval: -1}})
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialPinging dials a full URL with a websocket ping every interval.
func (e *env) dialPinging(target string, interval time.Duration) *transport.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, target, transport.DialOptions{ConnOptions: transport.ConnOptions{PingInterval: interval}})
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// agentControl opens a control channel for instanceID like the agent does.
func (e *env) agentControl(instanceID string) *transport.Conn {
	e.t.Helper()
	tok := e.createToken("/v1/control-channel/" + instanceID)
	c := e.dial("/v1/control-channel/" + instanceID + "?role=subscribe&stream=input")
	writeJSONText(e.t, c, map[string]any{
		"Cookie": nil, "MessageSchemaVersion": "1.0", "RequestId": uuid.NewString(),
		"TokenValue": tok, "AgentVersion": "3.3.987.0", "PlatformType": "linux",
	})
	waitFor(e.t, "control channel online", func() bool {
		info, ok := e.svc.Instance(instanceID)
		return ok && info.PingStatus == PingStatusOnline && info.AgentVersion == "3.3.987.0"
	})
	return c
}

// agentData opens the agent's data channel for sessionID.
func (e *env) agentData(sessionID, instanceID string) *transport.Conn {
	e.t.Helper()
	tok := e.createToken("/v1/data-channel/" + sessionID)
	c := e.dial("/v1/data-channel/" + sessionID + "?role=publish_subscribe")
	writeJSONText(e.t, c, wire.AgentOpenDataChannelInput{
		MessageSchemaVersion: "1.0", RequestID: uuid.NewString(), TokenValue: tok,
		ClientInstanceID: instanceID, ClientID: "",
	})
	return c
}

// clientData opens the client's data channel with token.
func (e *env) clientData(streamURL, token string) *transport.Conn {
	e.t.Helper()
	c := e.dial(streamURL)
	writeJSONText(e.t, c, wire.OpenDataChannelInput{
		MessageSchemaVersion: "1.0", RequestID: uuid.NewString(), TokenValue: token,
		ClientID: uuid.NewString(), ClientVersion: "1.2.650.0",
	})
	return c
}

// start starts a session on target with a shell document.
func (e *env) start(target string, mod func(*SessionSpec)) (id, streamURL, token string) {
	e.t.Helper()
	spec := SessionSpec{
		SessionID:    NewSessionID("alice"),
		Target:       target,
		Owner:        "arn:aws:sts::123456789012:assumed-role/dev/alice",
		DocumentName: "SSM-SessionManagerRunShell",
		Document:     wire.SessionDocument{SchemaVersion: "1.0", SessionType: ssmdoc.SessionTypeStandardStream},
	}
	if mod != nil {
		mod(&spec)
	}
	u, tok, err := e.svc.StartSession(context.Background(), spec)
	if err != nil {
		e.t.Fatalf("StartSession: %v", err)
	}
	return spec.SessionID, u, tok
}

// session returns the SessionInfo of id.
func (e *env) session(id string) SessionInfo {
	for _, s := range e.svc.Sessions() {
		if s.SessionID == id {
			return s
		}
	}
	e.t.Fatalf("session %s not listed", id)
	return SessionInfo{}
}

func writeJSONText(t testing.TB, c *transport.Conn, v any) {
	t.Helper()
	b, err := wire.EncodeJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteText(b); err != nil {
		t.Fatalf("writing open frame: %v", err)
	}
}

// frame builds a binary frame.
func frame(t testing.TB, mt string, seq int64, pt wire.PayloadType, payload []byte) []byte {
	t.Helper()
	m := wire.Message{MessageType: mt, SchemaVersion: 1, CreatedDate: 1700000000000, SequenceNumber: seq,
		MessageID: uuid.New(), PayloadType: pt, Payload: payload}
	b, err := wire.Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type readResult struct {
	b   []byte
	err error
}

// reader reads a Conn in the background so tests can wait with timeouts.
type reader struct {
	ch chan readResult
}

func newReader(c *transport.Conn) *reader {
	r := &reader{ch: make(chan readResult, 1024)}
	go func() {
		for {
			b, err := c.ReadMessage()
			r.ch <- readResult{b, err}
			if err != nil {
				close(r.ch)
				return
			}
		}
	}()
	return r
}

// next returns the next message or fails after d.
func (r *reader) next(t testing.TB, d time.Duration) []byte {
	t.Helper()
	select {
	case res, ok := <-r.ch:
		if !ok || res.err != nil {
			t.Fatalf("read: %v", res.err)
		}
		return res.b
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
	}
	return nil
}

// nextOfType skips messages until one of type mt arrives.
func (r *reader) nextOfType(t testing.TB, mt string, d time.Duration) wire.Message {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b := r.next(t, time.Until(deadline))
		m, err := wire.Decode(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if m.MessageType == mt {
			return m
		}
	}
}

// quiet asserts that nothing arrives within d (other than types in allow).
func (r *reader) quiet(t testing.TB, d time.Duration, allow ...string) {
	t.Helper()
	timer := time.After(d)
	for {
		select {
		case res, ok := <-r.ch:
			if !ok || res.err != nil {
				return
			}
			mt, _, _ := wire.DecodeHeader(res.b)
			okType := false
			for _, a := range allow {
				okType = okType || a == mt
			}
			if !okType {
				t.Fatalf("unexpected %s message", mt)
			}
		case <-timer:
			return
		}
	}
}

// closed waits until the connection ends.
func (r *reader) closed(t testing.TB, d time.Duration) {
	t.Helper()
	timer := time.After(d)
	for {
		select {
		case res, ok := <-r.ch:
			if !ok || res.err != nil {
				return
			}
		case <-timer:
			t.Fatalf("connection still open after %s", d)
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGoroutines fails if the goroutine count does not return to base.
func checkGoroutines(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d before, %d after\n%s", base, n, bytes.TrimSpace(buf))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeClock drives the service's session timers (Options.Now and
// Options.AfterFunc): time moves only when the test calls Advance, and the
// timers that fall due run then, in the test's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	at     time.Time
	f      func()
	active bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1700000000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f, active: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	return was
}

// Advance moves the clock by d in steps, running every timer that falls
// due, in deadline order (a timer re-armed by its own function runs again
// if it falls due within d).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if t.active && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.active = false
		c.mu.Unlock()
		next.f()
	}
}

// clockOptions are Options whose session timers run on c.
func clockOptions(c *fakeClock) Options {
	return Options{Now: c.Now, AfterFunc: c.AfterFunc}
}

// agentGone reports whether session id has no agent socket now.
func (e *env) agentGone(id string) bool {
	e.svc.mu.Lock()
	defer e.svc.mu.Unlock()
	ss := e.svc.sessions[id]
	return ss != nil && ss.agent == nil
}

// heldForClient is how many agent frames session id holds for its client.
func (e *env) heldForClient(id string) int {
	e.svc.mu.Lock()
	defer e.svc.mu.Unlock()
	if ss := e.svc.sessions[id]; ss != nil {
		return len(ss.toClient)
	}
	return 0
}
