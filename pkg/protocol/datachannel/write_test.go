package datachannel

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// TestWriteBuffersGathersAndSplits: WriteBuffers sends the concatenation
// of its parts, in messages filled up to the maximum payload regardless of
// where the parts begin and end.
func TestWriteBuffersGathersAndSplits(t *testing.T) {
	c, p := newClientWithPeer(t, func(cfg *Config) { cfg.MaxPayloadSize = 10 })
	p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("$ ")) // plain shell: ready
	p.expect(wire.TypeAcknowledge)
	parts := [][]byte{[]byte("abc"), []byte("defghijklmnopqr"), nil, []byte("stuv")}
	n, err := c.WriteBuffers(parts)
	if err != nil || n != 22 {
		t.Fatalf("WriteBuffers = %d, %v; want 22", n, err)
	}
	var got [][]byte
	for len(got) < 3 {
		m := p.expect(wire.TypeInputStreamData)
		got = append(got, m.Payload)
		p.ack(m)
	}
	want := [][]byte{[]byte("abcdefghij"), []byte("klmnopqrst"), []byte("uv")}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
	if string(parts[1]) != "defghijklmnopqr" || len(parts) != 4 {
		t.Fatal("WriteBuffers changed its argument")
	}
}

// TestStatsCounters: Stats counts messages sent and received, the
// retransmissions sent and the duplicates received.
func TestStatsCounters(t *testing.T) {
	c, p := newClientWithPeer(t, func(cfg *Config) {
		cfg.ResendInterval = 5 * time.Millisecond
		cfg.InitialRTO = 20 * time.Millisecond
	})
	m := p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("$ "))
	p.expect(wire.TypeAcknowledge)
	p.sendRaw(m) // a duplicate
	p.expect(wire.TypeAcknowledge)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	first := p.expect(wire.TypeInputStreamData)
	again := p.expect(wire.TypeInputStreamData) // not acked: retransmitted
	if again.MessageID != first.MessageID {
		t.Fatal("second message is not a retransmission")
	}
	p.ack(first)
	s := c.Stats()
	if s.Sent != 1 || s.Resent < 1 || s.Received != 2 || s.Duplicates != 1 {
		t.Fatalf("stats %+v: want 1 sent, ≥ 1 resent, 2 received, 1 duplicate", s)
	}
	if got := s.String(); got == "" || !bytes.Contains([]byte(got), []byte("1 duplicates")) {
		t.Fatalf("String() = %q", got)
	}
}

// dropConn drops the messages written to it while drop is set, as a
// service does while the other side's connection is away.
type dropConn struct {
	MessageConn
	drop atomic.Bool
}

func (d *dropConn) WriteMessage(b []byte) error {
	if d.drop.Load() {
		return nil
	}
	return d.MessageConn.WriteMessage(b)
}

// TestRecoveryAfterLostWindow: when a whole window of messages is lost,
// the first retransmission that gets through brings the rest with it a
// round trip later, instead of one message per timeout.
func TestRecoveryAfterLostWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := transporttest.Pipe()
		link := &dropConn{MessageConn: a}
		client, err := New(link, Config{Role: RoleClient, SessionID: "s", TargetID: "i"})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		agent, _ := New(b, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream}})
		defer agent.Close()
		go func() { agent.Handshake(context.Background()); agent.Write([]byte("$ ")) }()
		if _, err := client.Handshake(context.Background()); err != nil {
			t.Fatal(err)
		}
		link.drop.Store(true)
		const n = 300
		for i := range n {
			if _, err := client.Write(bytes.Repeat([]byte{byte(i)}, 1000)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		start := time.Now()
		link.drop.Store(false)
		got := make([]byte, n*1000)
		if _, err := readFull(agent, got); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if got[i*1000] != byte(i) {
				t.Fatalf("message %d out of place", i)
			}
		}
		// One timeout (200 ms at first), then a round trip (100 ms before
		// any sample) for the rest; one per 100 ms tick would take 30 s.
		if el := time.Since(start); el > time.Second {
			t.Fatalf("recovered in %v", el)
		}
		if s := client.Stats(); s.Resent > n+10 {
			t.Fatalf("%d retransmissions for %d lost messages", s.Resent, n)
		}
	})
}

// TestStartPublicationResendsAtOnce: start_publication means the peer is
// (back) on the service, so what went out before may have been dropped:
// it goes again at once, not when its timer runs out.
func TestStartPublicationResendsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := transporttest.Pipe()
		link := &dropConn{MessageConn: b}
		agent, _ := New(link, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream}})
		defer agent.Close()
		p := newPeer(t, a)
		agent.Handshake(context.Background())
		link.drop.Store(true)
		if _, err := agent.Write([]byte("early")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		link.drop.Store(false)
		start := time.Now()
		p.send(wire.TypeStartPublication, 0, wire.PayloadNone, []byte("{}"))
		m := p.expect(wire.TypeOutputStreamData)
		if string(m.Payload) != "early" || time.Since(start) != 0 {
			t.Fatalf("got %q after %v", m.Payload, time.Since(start))
		}
	})
}

// TestCheckDigests: with CheckDigests a payload that does not match its
// digest is dropped (and comes again); without, it is taken as it is.
func TestCheckDigests(t *testing.T) {
	for _, check := range []bool{false, true} {
		c, p := newClientWithPeer(t, func(cfg *Config) { cfg.CheckDigests = check })
		m := wire.Message{MessageType: wire.TypeOutputStreamData, SchemaVersion: 1, CreatedDate: 1,
			SequenceNumber: 0, PayloadType: wire.PayloadOutput, Payload: []byte("good")}
		b, err := wire.Encode(&m)
		if err != nil {
			t.Fatal(err)
		}
		copy(b[len(b)-4:], "evil") // the digest still says "good"
		if err := p.conn.WriteMessage(b); err != nil {
			t.Fatal(err)
		}
		if check {
			if a, ok := p.next(100 * time.Millisecond); ok && a.MessageType == wire.TypeAcknowledge {
				t.Fatal("a message with a wrong digest was acknowledged")
			}
			continue
		}
		p.expect(wire.TypeAcknowledge)
		buf := make([]byte, 4)
		if _, err := readFull(c, buf); err != nil || string(buf) != "evil" {
			t.Fatalf("read %q, %v", buf, err)
		}
	}
}

// TestAckFramesAreReused: once written, an acknowledgement's frame is
// kept for the next one instead of being left to the collector (one ack
// per stream message received made a GiB download 10–14 MB of garbage),
// and every acknowledgement built in a reused buffer is still right.
func TestAckFramesAreReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p := newClientWithPeer(t, nil)
		p.send(wire.TypeOutputStreamData, 0, wire.PayloadOutput, []byte("$ ")) // plain shell: ready
		p.expect(wire.TypeAcknowledge)
		for seq := int64(1); seq <= 50; seq++ {
			sent := p.send(wire.TypeOutputStreamData, seq, wire.PayloadOutput, []byte("more output"))
			m := p.expect(wire.TypeAcknowledge)
			var ack wire.Acknowledge
			if err := wire.DecodeJSON(m.Payload, &ack); err != nil {
				t.Fatal(err)
			}
			if ack.AcknowledgedMessageSequenceNumber != seq || ack.AcknowledgedMessageID != sent.MessageID.String() {
				t.Fatalf("ack %d: %+v, want sequence %d and ID %s", seq, ack, seq, sent.MessageID)
			}
		}
		synctest.Wait() // the writer recycles a frame after writing it
		if n := len(c.ctrlFree); n == 0 || n > 2 {
			t.Fatalf("%d free control frames after 51 acknowledgements one at a time, want 1 or 2 reused", n)
		}
	})
}
