package datachannel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// peer drives the far end of a connection by hand, frame by frame.
type peer struct {
	t    *testing.T
	conn MessageConn
	msgs chan wire.Message
}

func newPeer(t *testing.T, conn MessageConn) *peer {
	p := &peer{t: t, conn: conn, msgs: make(chan wire.Message, 10000)}
	go func() {
		for {
			b, err := conn.ReadMessage()
			if err != nil {
				close(p.msgs)
				return
			}
			m, err := wire.Decode(b)
			if err != nil {
				t.Errorf("peer got a bad frame: %v", err)
				continue
			}
			p.msgs <- m
		}
	}()
	return p
}

func (p *peer) send(messageType string, seq int64, pt wire.PayloadType, payload []byte) wire.Message {
	p.t.Helper()
	m := wire.Message{MessageType: messageType, SchemaVersion: 1, CreatedDate: uint64(time.Now().UnixMilli()),
		SequenceNumber: seq, MessageID: uuid.New(), PayloadType: pt, Payload: payload}
	b, err := wire.Encode(&m)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.conn.WriteMessage(b); err != nil {
		p.t.Fatal(err)
	}
	return m
}

func (p *peer) sendRaw(m wire.Message) {
	p.t.Helper()
	b, err := wire.Encode(&m)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.conn.WriteMessage(b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) ack(m wire.Message) {
	body := appendAck(nil, m.MessageType, m.MessageID, m.SequenceNumber)
	p.send(wire.TypeAcknowledge, 0, wire.PayloadNone, body)
}

// next returns the next message, or fails after timeout.
func (p *peer) next(timeout time.Duration) (wire.Message, bool) {
	select {
	case m, ok := <-p.msgs:
		return m, ok
	case <-time.After(timeout):
		return wire.Message{}, false
	}
}

func (p *peer) expect(messageType string) wire.Message {
	p.t.Helper()
	for {
		m, ok := p.next(5 * time.Second)
		if !ok {
			p.t.Fatalf("no %s message arrived", messageType)
		}
		if m.MessageType == messageType {
			return m
		}
	}
}

func ackedSeq(t *testing.T, m wire.Message) int64 {
	t.Helper()
	var a wire.Acknowledge
	if err := wire.DecodeJSON(m.Payload, &a); err != nil {
		t.Fatal(err)
	}
	return a.AcknowledgedMessageSequenceNumber
}

func newClientWithPeer(t *testing.T, mutate func(*Config)) (*Channel, *peer) {
	a, b := transporttest.Pipe()
	cfg := Config{Role: RoleClient, SessionID: "s-1", TargetID: "i-1"}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, newPeer(t, b)
}

// TestReceiveOrderingAndDuplicates covers §4.2: in-order delivery, gaps
// held and acked at once, and duplicates re-acknowledged (§11.15).
func TestReceiveOrderingAndDuplicates(t *testing.T) {
	c, p := newClientWithPeer(t, nil)
	m0 := p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("zero "))
	if a := p.expect(wire.TypeAcknowledge); ackedSeq(t, a) != 0 {
		t.Fatalf("acked %d", ackedSeq(t, a))
	}
	// The first output without handshake makes it a plain shell (§5.6).
	info, err := c.Handshake(context.Background())
	if err != nil || info.SessionType != ssmdoc.SessionTypeStandardStream || info.Handshake {
		t.Fatalf("no-handshake fallback: %+v %v", info, err)
	}
	// A duplicate of something delivered is re-acknowledged.
	p.sendRaw(m0)
	if a := p.expect(wire.TypeAcknowledge); ackedSeq(t, a) != 0 {
		t.Fatal("duplicate not re-acked")
	}
	// A gap: seq 2 is acked at once but held.
	p.send(wire.TypeOutputStreamData, 2, wire.PayloadOutput, []byte("two"))
	if a := p.expect(wire.TypeAcknowledge); ackedSeq(t, a) != 2 {
		t.Fatal("gap message not acked")
	}
	p.send(wire.TypeOutputStreamData, 1, wire.PayloadOutput, []byte("one "))
	if a := p.expect(wire.TypeAcknowledge); ackedSeq(t, a) != 1 {
		t.Fatal("seq 1 not acked")
	}
	buf := make([]byte, 12)
	if _, err := readFull(c, buf); err != nil || string(buf) != "zero one two" {
		t.Fatalf("read %q %v", buf, err)
	}
	// Acks carry sequence 0 and flags 3 (§11.5).
	p.send(wire.TypeOutputStreamData, 3, wire.PayloadOutput, []byte("x"))
	a := p.expect(wire.TypeAcknowledge)
	if a.SequenceNumber != 0 || a.Flags != wire.FlagsAck || a.PayloadType != wire.PayloadNone {
		t.Fatalf("ack header %+v", a)
	}
}

// TestResendRefreshesSendTime: an unacknowledged message is retransmitted
// with identical bytes once per timeout, not on every timer tick (§11.16),
// and the timeout doubles after each retransmission, as TCP's does, so a
// slow peer does not get a storm of copies. The clock is synctest's, so
// the schedule is exact.
func TestResendRefreshesSendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p := newClientWithPeer(t, func(cfg *Config) {
			cfg.ResendInterval = 5 * time.Millisecond
			cfg.InitialRTO = 100 * time.Millisecond
		})
		p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("$ ")) // plain shell: ready
		p.expect(wire.TypeAcknowledge)
		if _, err := c.Write([]byte("ls\r")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		first := p.expect(wire.TypeInputStreamData)
		var at []time.Duration
		deadline := time.After(2 * time.Second)
	loop:
		for {
			select {
			case m := <-p.msgs:
				if m.MessageType != wire.TypeInputStreamData {
					continue
				}
				if m.MessageID != first.MessageID || m.CreatedDate != first.CreatedDate || !bytes.Equal(m.Payload, first.Payload) {
					t.Fatal("a retransmission differs from the original")
				}
				at = append(at, time.Since(start))
			case <-deadline:
				break loop
			}
		}
		// Timer ticks every 5 ms; a copy goes once the timeout (100 ms,
		// then 200, 400, 800) has been exceeded. The upstream bug would
		// resend on every tick (about 380 copies in 2 s).
		want := []time.Duration{105, 310, 715, 1520}
		if len(at) != len(want) {
			t.Fatalf("retransmissions at %v, want at %v ms", at, want)
		}
		for i := range want {
			if at[i] != want[i]*time.Millisecond {
				t.Fatalf("retransmissions at %v, want at %v ms", at, want)
			}
		}
		p.ack(first)
		synctest.Wait()
		if s := c.Stats(); s.Unacked != 0 || s.Resent != 4 {
			t.Fatalf("after the ack: %+v", s)
		}
	})
}

func TestRTOEstimator(t *testing.T) {
	r := newRTT(200*time.Millisecond, time.Second)
	r.sample(100 * time.Millisecond) // equal to the initial SRTT
	if r.rto != 110*time.Millisecond {
		t.Fatalf("rto %v, want 110ms (srtt 100ms + G)", r.rto)
	}
	for i := 0; i < 100; i++ {
		r.sample(5 * time.Second)
	}
	if r.rto != time.Second {
		t.Fatalf("rto %v not capped at 1s", r.rto)
	}
}

func TestGiveUpAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p := newClientWithPeer(t, func(cfg *Config) {
			cfg.ResendInterval = 5 * time.Millisecond
			cfg.GiveUpAfter = 200 * time.Millisecond
		})
		p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("$ "))
		start := time.Now()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		<-c.Done()
		// Given up on the first tick past the limit.
		if el := time.Since(start); el != 205*time.Millisecond {
			t.Fatalf("gave up after %v, want 205ms", el)
		}
		if !errors.Is(c.Err(), ErrResendTimeout) {
			t.Fatalf("err %v", c.Err())
		}
		if _, err := c.Write([]byte("y")); !errors.Is(err, ErrResendTimeout) {
			t.Fatalf("write after give-up: %v", err)
		}
	})
}

func TestChannelClosed(t *testing.T) {
	c, p := newClientWithPeer(t, nil)
	p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("last words"))
	body, _ := wire.EncodeJSON(wire.ChannelClosed{SessionID: "s-1", MessageType: wire.TypeChannelClosed, SchemaVersion: 1, Output: "idle timeout"})
	p.expect(wire.TypeAcknowledge)
	p.send(wire.TypeChannelClosed, 0, wire.PayloadNone, body)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q %v", got, err)
	}
	var ce *ClosedError
	if !errors.As(c.Err(), &ce) || ce.Output != "idle timeout" || ce.SessionID != "s-1" {
		t.Fatalf("err %v", c.Err())
	}
}

// TestBackPressure: a reader that stops reading blocks the writer instead
// of growing memory, and everything arrives once it reads again.
func TestBackPressure(t *testing.T) {
	for _, kms := range []bool{false, true} {
		t.Run(fmt.Sprintf("kms=%v", kms), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testBackPressure(t, kms) })
		})
	}
}

func testBackPressure(t *testing.T, kms bool) {
	small := func(cfg *Config) {
		cfg.MaxPayloadSize = 1024
		cfg.SendWindow = 16
		cfg.SendWindowBytes = 64 << 10
		cfg.ReceiveBuffer = 8 << 10
		cfg.ReorderBufferBytes = 32 << 10
		cfg.ResendInterval = 5 * time.Millisecond
	}
	client, agent := newPair(t, pairOptions{link: linkPipe, kms: kms, client: small, agent: small})
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); off += 4096 {
			if _, err := agent.Write(data[off : off+4096]); err != nil {
				done <- err
				return
			}
			written.Add(4096)
		}
		done <- nil
	}()
	// Let the retransmission timer run for a while: the writer must stay
	// blocked however long the reader does not read.
	time.Sleep(300 * time.Millisecond)
	synctest.Wait()
	stalled := written.Load()
	if stalled >= int64(len(data)) {
		t.Fatal("writer was not held back by a reader that does not read")
	}
	// Past ReceiveBuffer messages are still taken, with their
	// acknowledgements held back until the reader makes room, so the
	// sender's window stops it without retransmitting; ReceiveBuffer plus
	// a send window is the hard bound.
	s := client.Stats()
	if s.Buffered > 8<<10+64<<10 {
		t.Fatalf("receive buffer over its bound: %d bytes", s.Buffered)
	}
	if s.Duplicates > 8 {
		t.Fatalf("%d copies arrived while the reader paused: the writer should just wait", s.Duplicates)
	}
	got := make([]byte, len(data))
	if _, err := readFull(client, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after back-pressure: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("writer stalled at %d of %d bytes while the reader paused", stalled, len(data))
}

// TestFullWindowPastReceiveBuffer: a sender whose byte window is larger
// than the receiver's ReceiveBuffer, facing a reader that has not read yet,
// gets every message of its window taken (most acknowledged late) rather
// than the ones past twice ReceiveBuffer dropped and, with every message
// behind them, retransmitted: 4–8 % of a 1 GiB upload to the emulated agent
// was sent twice that way.
func TestFullWindowPastReceiveBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := func(cfg *Config) {
			cfg.MaxPayloadSize = 1024
			cfg.SendWindow = 1024
			cfg.SendWindowBytes = 64 << 10
			cfg.ReceiveBuffer = 8 << 10
			cfg.ResendInterval = 5 * time.Millisecond
		}
		client, agent := newPair(t, pairOptions{link: linkPipe, client: cfg, agent: cfg})
		data := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
		done := make(chan error, 1)
		go func() {
			_, err := agent.Write(data)
			done <- err
		}()
		// Without advancing the clock: the sender has filled its window.
		synctest.Wait()
		if b := client.Stats().Buffered; b < 64<<10 {
			t.Fatalf("the receiver holds %d bytes: it stopped taking the window before 64 KiB", b)
		}
		got := make([]byte, len(data))
		if _, err := readFull(client, got); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s, r := agent.Stats(), client.Stats(); s.Resent != 0 || r.Duplicates != 0 {
			t.Fatalf("%d messages resent, %d duplicates received: a full window was dropped", s.Resent, r.Duplicates)
		}
	})
}

func TestControlPackets(t *testing.T) {
	for _, kms := range []bool{false, true} {
		var mu sync.Mutex
		var got []Packet
		sizes := make(chan wire.SizeData, 4)
		notReadyOnce := atomic.Bool{}
		client, agent := newPair(t, pairOptions{link: linkPipe, kms: kms, sessionType: ssmdoc.SessionTypeNonInteractiveCommands,
			client: func(cfg *Config) {
				cfg.OnControl = func(p Packet) error {
					mu.Lock()
					got = append(got, Packet{Type: p.Type, Data: append([]byte(nil), p.Data...)})
					mu.Unlock()
					return nil
				}
			},
			agent: func(cfg *Config) {
				cfg.ResendInterval = 5 * time.Millisecond
				cfg.OnControl = func(p Packet) error {
					if p.Type == wire.PayloadSize {
						if !notReadyOnce.Swap(true) {
							return ErrNotReady // e.g. the pty does not exist yet
						}
						var s wire.SizeData
						if err := json.Unmarshal(p.Data, &s); err != nil {
							return err
						}
						sizes <- s
					}
					return nil
				}
			}})
		if err := client.SendSize(132, 43); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-sizes:
			if s.Cols != 132 || s.Rows != 43 {
				t.Fatalf("size %+v", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("size never delivered after not-ready")
		}
		if _, err := agent.WriteStderr([]byte("oops")); err != nil {
			t.Fatal(err)
		}
		if err := agent.SendExitCode(3); err != nil {
			t.Fatal(err)
		}
		if err := agent.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if len(got) != 2 || got[0].Type != wire.PayloadStdErr || string(got[0].Data) != "oops" ||
			got[1].Type != wire.PayloadExitCode || string(got[1].Data) != "EXIT_CODE: 3" {
			t.Fatalf("kms=%v control packets %+v", kms, got)
		}
		mu.Unlock()
		if err := client.SendFlag(wire.FlagTerminateSession); err != nil {
			t.Fatal(err)
		}
		if err := agent.SendSize(1, 1); !errors.Is(err, ErrWrongRole) {
			t.Fatalf("agent SendSize: %v", err)
		}
		if _, err := client.WriteStderr(nil); !errors.Is(err, ErrWrongRole) {
			t.Fatalf("client WriteStderr: %v", err)
		}
	}
}

// TestKMSPayloadsAreEncrypted looks at the frames on the wire.
func TestKMSPayloadsAreEncrypted(t *testing.T) {
	a, b := transporttest.Pipe()
	tapA := &tap{MessageConn: a}
	tapB := &tap{MessageConn: b}
	kms := testutil.NewFakeKMS()
	client, _ := New(tapA, Config{Role: RoleClient, SessionID: "s", TargetID: "i-1", KeyService: kms})
	agent, _ := New(tapB, Config{Role: RoleAgent, SessionID: "s", TargetID: "i-1", KeyService: kms,
		Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream, KMSKeyID: "k"}})
	defer client.Close()
	defer agent.Close()
	go agent.Handshake(context.Background())
	if _, err := client.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	secret := []byte("the password is hunter2")
	go agent.Write(secret)
	buf := make([]byte, len(secret))
	if _, err := readFull(client, buf); err != nil || !bytes.Equal(buf, secret) {
		t.Fatal("decryption failed")
	}
	client.Write(secret)
	readFull(agent, buf)
	for _, f := range append(tapA.frames(), tapB.frames()...) {
		if bytes.Contains(f, []byte("hunter2")) {
			t.Fatal("plaintext on the wire")
		}
	}
}

type tap struct {
	MessageConn
	mu  sync.Mutex
	out [][]byte
}

func (t *tap) WriteMessage(b []byte) error {
	t.mu.Lock()
	t.out = append(t.out, append([]byte(nil), b...))
	t.mu.Unlock()
	return t.MessageConn.WriteMessage(b)
}

func (t *tap) frames() [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out
}

func TestHandshakeFailures(t *testing.T) {
	t.Run("client without KMS", func(t *testing.T) {
		a, b := transporttest.Pipe()
		client, _ := New(a, Config{Role: RoleClient, SessionID: "s", TargetID: "i"})
		agent, _ := New(b, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", KeyService: testutil.NewFakeKMS(),
			Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream, KMSKeyID: "k"}})
		defer client.Close()
		defer agent.Close()
		go client.Handshake(context.Background())
		_, err := agent.Handshake(context.Background())
		if err == nil || !strings.Contains(err.Error(), "KMSEncryption failed on client with status 2") {
			t.Fatalf("agent handshake: %v", err)
		}
	})
	t.Run("handshake response timeout", func(t *testing.T) {
		_, b := transporttest.Pipe()
		agent, _ := New(b, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", HandshakeTimeout: 50 * time.Millisecond,
			Agent: AgentSession{SessionType: ssmdoc.SessionTypePort}})
		defer agent.Close()
		if _, err := agent.Handshake(context.Background()); !errors.Is(err, ErrHandshake) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("unknown session type", func(t *testing.T) {
		c, p := newClientWithPeer(t, nil)
		params, _ := json.Marshal(wire.SessionTypeRequest{SessionType: "Bogus"})
		req, _ := json.Marshal(wire.HandshakeRequest{AgentVersion: "3.3.1142.0",
			RequestedClientActions: []wire.RequestedAction{{ActionType: wire.ActionSessionType, ActionParameters: params},
				{ActionType: "Telepathy", ActionParameters: json.RawMessage(`{}`)}}})
		p.send(wire.TypeOutputStreamData, 0, wire.PayloadHandshakeRequest, req)
		p.expect(wire.TypeAcknowledge) // acked before processing (§11.24)
		resp := p.expect(wire.TypeInputStreamData)
		var hr wire.HandshakeResponse
		if err := json.Unmarshal(resp.Payload, &hr); err != nil {
			t.Fatal(err)
		}
		if hr.ProcessedClientActions[0].ActionStatus != wire.ActionFailed ||
			!strings.Contains(hr.ProcessedClientActions[0].Error, "Unknown session type Bogus") ||
			hr.ProcessedClientActions[1].ActionStatus != wire.ActionUnsupported || len(hr.Errors) != 2 ||
			hr.ClientVersion != DefaultClientVersion {
			t.Fatalf("response %+v", hr)
		}
		_ = c
	})
	t.Run("config", func(t *testing.T) {
		a, _ := transporttest.Pipe()
		for _, cfg := range []Config{{}, {Role: RoleAgent}, {Role: RoleClient, MaxPayloadSize: -1}, {Role: RoleClient, SendWindow: -3}} {
			if _, err := New(a, cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%+v: %v", cfg, err)
			}
		}
		if _, err := New(nil, Config{Role: RoleClient}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatal("nil conn accepted")
		}
	})
}

// TestAgentDropsDataBeforeHandshake (§4.8): client stream data that is not
// a handshake reply is acked and dropped until the handshake completes.
func TestAgentDropsDataBeforeHandshake(t *testing.T) {
	a, b := transporttest.Pipe()
	agent, _ := New(b, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", Agent: AgentSession{SessionType: ssmdoc.SessionTypePort}})
	defer agent.Close()
	p := newPeer(t, a)
	go agent.Handshake(context.Background())
	req := p.expect(wire.TypeOutputStreamData)
	if req.PayloadType != wire.PayloadHandshakeRequest || req.SequenceNumber != 0 || req.Flags != wire.FlagSYN {
		t.Fatalf("request header %+v", req)
	}
	p.ack(req)
	p.send(wire.TypeInputStreamData, 0, wire.PayloadOutput, []byte("too early"))
	if ackedSeq(t, p.expect(wire.TypeAcknowledge)) != 0 {
		t.Fatal("early data not acked")
	}
	resp, _ := json.Marshal(wire.HandshakeResponse{ClientVersion: "1.2.677.0", ProcessedClientActions: []wire.ProcessedAction{{ActionType: wire.ActionSessionType, ActionStatus: wire.ActionSuccess}}})
	p.send(wire.TypeInputStreamData, 1, wire.PayloadHandshakeResponse, resp)
	complete := p.expect(wire.TypeOutputStreamData)
	if complete.PayloadType != wire.PayloadHandshakeComplete {
		t.Fatalf("got %v", complete.PayloadType)
	}
	var hc wire.HandshakeComplete
	if err := json.Unmarshal(complete.Payload, &hc); err != nil || hc.HandshakeTimeToComplete <= 0 {
		t.Fatalf("complete %+v %v", hc, err)
	}
	p.send(wire.TypeInputStreamData, 2, wire.PayloadOutput, []byte("data"))
	buf := make([]byte, 4)
	if _, err := readFull(agent, buf); err != nil || string(buf) != "data" {
		t.Fatalf("read %q %v (the early data must have been dropped)", buf, err)
	}
}

// TestPausePublication: a paused agent buffers but does not transmit, for
// as long as the pause lasts.
func TestPausePublication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := transporttest.Pipe()
		agent, _ := New(b, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream}})
		defer agent.Close()
		p := newPeer(t, a)
		agent.Handshake(context.Background())
		p.send(wire.TypePausePublication, 0, wire.PayloadNone, []byte("{}"))
		synctest.Wait() // the pause has been handled
		if _, err := agent.Write([]byte("held")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // timers run; nothing may go out
		synctest.Wait()
		select {
		case m := <-p.msgs:
			t.Fatalf("paused agent transmitted %s", m.MessageType)
		default:
		}
		p.send(wire.TypeStartPublication, 0, wire.PayloadNone, []byte("{}"))
		m := p.expect(wire.TypeOutputStreamData)
		if string(m.Payload) != "held" {
			t.Fatalf("payload %q", m.Payload)
		}
	})
}

// TestReconnect: the connection drops; the Reconnect hook supplies a new
// one and the session carries on with nothing lost.
func TestReconnect(t *testing.T) {
	ca, aa := transporttest.Pipe()
	var mu sync.Mutex
	agentSide := aa
	newAgentConn := make(chan MessageConn, 4)
	reconnects := 0
	client, err := New(ca, Config{Role: RoleClient, SessionID: "s", TargetID: "i", ResendInterval: 5 * time.Millisecond,
		Reconnect: func(ctx context.Context) (MessageConn, error) {
			mu.Lock()
			defer mu.Unlock()
			reconnects++
			c, a := transporttest.Pipe()
			select {
			case newAgentConn <- a:
			default:
			}
			return c, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// The agent side: a Channel whose connection we swap by hand, the way
	// the service relays both ends after a reconnect.
	relay := &swappable{}
	relay.set(agentSide)
	agent, _ := New(relay, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", ResendInterval: 5 * time.Millisecond,
		Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream}})
	defer agent.Close()
	agent.Handshake(context.Background())
	agent.Write([]byte("a"))
	client.Handshake(context.Background())
	buf := make([]byte, 1)
	readFull(client, buf)

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case c := <-newAgentConn:
				relay.set(c)
			case <-stop:
				return
			}
		}
	}()
	_ = aa.Close() // the service dropped the client's socket
	if err := transfer(t, agent, client, 1<<20, 10000); err != nil {
		t.Fatal(err)
	}
	if err := transfer(t, client, agent, 1<<20, 10000); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if reconnects == 0 {
		t.Fatal("no reconnect happened")
	}
	mu.Unlock()
}

// swappable is a MessageConn whose underlying connection can change; reads
// move to the new connection when the old one fails.
type swappable struct {
	mu   sync.Mutex
	cond *sync.Cond
	cur  MessageConn
	gen  int
	done bool
}

func (s *swappable) set(c MessageConn) {
	s.mu.Lock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	s.cur = c
	s.gen++
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *swappable) get() (MessageConn, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.gen
}

func (s *swappable) ReadMessage() ([]byte, error) {
	for {
		c, gen := s.get()
		b, err := c.ReadMessage()
		if err == nil {
			return b, nil
		}
		s.mu.Lock()
		for s.gen == gen && !s.done {
			s.cond.Wait()
		}
		done := s.done
		s.mu.Unlock()
		if done {
			return nil, err
		}
	}
}

func (s *swappable) WriteMessage(b []byte) error {
	c, _ := s.get()
	_ = c.WriteMessage(b) // lost while disconnected: the resend timer recovers
	return nil
}

func (s *swappable) Close() error {
	s.mu.Lock()
	s.done = true
	if s.cond != nil {
		s.cond.Broadcast()
	}
	c := s.cur
	s.mu.Unlock()
	return c.Close()
}

// TestCloseSendsQueuedControl: a control message queued just before Close
// still goes out (the agent's Terminating before it closes).
func TestCloseSendsQueuedControl(t *testing.T) {
	for i := 0; i < 20; i++ {
		a, b := transporttest.Pipe()
		agent, _ := New(b, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream}})
		p := newPeer(t, a)
		agent.Handshake(context.Background())
		if err := agent.SendSessionState(wire.SessionStateTerminating); err != nil {
			t.Fatal(err)
		}
		agent.Close()
		m := p.expect(wire.TypeAgentSessionState)
		var st wire.AgentSessionState
		if err := json.Unmarshal(m.Payload, &st); err != nil || st.SessionState != wire.SessionStateTerminating {
			t.Fatalf("state %+v %v", st, err)
		}
	}
}

// TestNotReadyOutOfOrderIsRetried: a message that arrived out of order (so
// it was acked when stored) and then met a handler that was not ready is
// retried by the channel itself: no retransmission will come.
func TestNotReadyOutOfOrderIsRetried(t *testing.T) {
	var calls atomic.Int32
	delivered := make(chan struct{})
	c, p := newClientWithPeer(t, func(cfg *Config) {
		cfg.ResendInterval = 5 * time.Millisecond
		cfg.OnControl = func(pk Packet) error {
			if calls.Add(1) < 3 {
				return ErrNotReady
			}
			close(delivered)
			return nil
		}
	})
	_ = c
	p.send(wire.TypeOutputStreamData, 1, wire.PayloadExitCode, []byte("EXIT_CODE: 0")) // out of order: acked, held
	p.expect(wire.TypeAcknowledge)
	p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("x"))
	select {
	case <-delivered:
	case <-time.After(5 * time.Second):
		t.Fatalf("held message never retried (%d handler calls)", calls.Load())
	}
}

// TestInputWaitsForHandshakeSettle: input written as soon as the agent's
// HandshakeComplete has arrived goes out HandshakeSettle later, not at
// once: the official agent throws away input that arrives before it has
// marked its own handshake complete, which it does only after sending
// HandshakeComplete. Later input goes at once; acknowledgements never wait.
func TestInputWaitsForHandshakeSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p := newClientWithPeer(t, nil)
		params, _ := json.Marshal(wire.SessionTypeRequest{SessionType: ssmdoc.SessionTypeStandardStream})
		req, _ := json.Marshal(wire.HandshakeRequest{AgentVersion: "3.3.1142.0",
			RequestedClientActions: []wire.RequestedAction{{ActionType: wire.ActionSessionType, ActionParameters: params}}})
		p.send(wire.TypeOutputStreamData, 0, wire.PayloadHandshakeRequest, req)
		p.expect(wire.TypeAcknowledge)
		p.ack(p.expect(wire.TypeInputStreamData)) // the HandshakeResponse
		hc, _ := json.Marshal(wire.HandshakeComplete{HandshakeTimeToComplete: time.Millisecond})
		p.send(wire.TypeOutputStreamData, 1, wire.PayloadHandshakeComplete, hc)
		if _, err := c.Handshake(context.Background()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if ack := p.expect(wire.TypeAcknowledge); ackedSeq(t, ack) != 1 || time.Since(start) != 0 {
			t.Fatalf("HandshakeComplete acknowledged %v after it arrived, want at once", time.Since(start))
		}
		go func() { _, _ = c.Write([]byte("first")) }()
		m := p.expect(wire.TypeInputStreamData)
		if d := time.Since(start); d != DefaultHandshakeSettle || string(m.Payload) != "first" {
			t.Fatalf("first input %q went %v after HandshakeComplete, want %v", m.Payload, d, DefaultHandshakeSettle)
		}
		p.ack(m)
		start = time.Now()
		if _, err := c.Write([]byte("second")); err != nil {
			t.Fatal(err)
		}
		if m := p.expect(wire.TypeInputStreamData); time.Since(start) != 0 || string(m.Payload) != "second" {
			t.Fatalf("later input %q waited %v", m.Payload, time.Since(start))
		}
	})
}
