package portmux_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/xtaci/smux"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/portmux"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// sent is one Output message written: its sequence number and size.
type sent struct {
	seq int64
	n   int
}

// countingConn reports the Output messages written through it,
// retransmissions included.
type countingConn struct {
	*transporttest.PipeConn
	sizes chan sent
}

func (c countingConn) WriteMessage(b []byte) error {
	if m, err := wire.Decode(b); err == nil && m.MessageType == wire.TypeInputStreamData && m.PayloadType == wire.PayloadOutput {
		c.sizes <- sent{m.SequenceNumber, len(m.Payload)}
	}
	return c.PipeConn.WriteMessage(b)
}

// pair returns a client and an agent data channel of a Port session with
// the given maximum payload, handshake done.
func pair(t *testing.T, maxPayload int) (client, agent *datachannel.Channel, sizes chan sent) {
	t.Helper()
	a, b := transporttest.Pipe()
	sizes = make(chan sent, 1<<16)
	props := []byte(`{"portNumber":"80","type":"LocalPortForwarding"}`)
	client, err := datachannel.New(countingConn{a, sizes}, datachannel.Config{Role: datachannel.RoleClient, SessionID: "s", TargetID: "i", MaxPayloadSize: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	agent, err = datachannel.New(b, datachannel.Config{Role: datachannel.RoleAgent, SessionID: "s", TargetID: "i", MaxPayloadSize: maxPayload,
		Agent: datachannel.AgentSession{SessionType: ssmdoc.SessionTypePort, Properties: props}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); agent.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := agent.Handshake(ctx); errc <- err }()
	if _, err := client.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return client, agent, sizes
}

// TestOneFrameOneMessage: through Config and Stream, each full smux frame
// is exactly one data channel message of the maximum payload, and bytes
// arrive intact through Copy on one end and CopyOut on the other.
func TestOneFrameOneMessage(t *testing.T) {
	t.Parallel()
	const maxPayload = 4096
	client, agent, sizes := pair(t, maxPayload)
	if got := portmux.Config(client, true).MaxFrameSize; got != maxPayload-portmux.HeaderSize {
		t.Fatalf("MaxFrameSize %d, want %d", got, maxPayload-portmux.HeaderSize)
	}
	cm, err := smux.Client(portmux.Stream{Ch: client}, portmux.Config(client, true))
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	am, err := smux.Server(portmux.Stream{Ch: agent}, portmux.Config(agent, true))
	if err != nil {
		t.Fatal(err)
	}
	defer am.Close()

	data := make([]byte, 64*(maxPayload-portmux.HeaderSize))
	_, _ = rand.Read(data)
	got := make(chan []byte, 1)
	go func() {
		st, err := am.AcceptStream()
		if err != nil {
			got <- nil
			return
		}
		var buf bytes.Buffer
		if _, err := portmux.CopyOut(&buf, st); err != nil {
			t.Errorf("CopyOut: %v", err)
		}
		got <- buf.Bytes()
	}()
	st, err := cm.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := portmux.Copy(st, bytes.NewReader(data), portmux.FrameSize(client)); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Fatalf("received %d bytes, want the %d sent", len(b), len(data))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream data never arrived")
	}
	// A retransmission (a slow, loaded machine) is the same message again.
	bySeq := map[int64]int{}
	for len(sizes) > 0 {
		m := <-sizes
		if m.n > maxPayload {
			t.Fatalf("a %d-byte message exceeds the %d maximum", m.n, maxPayload)
		}
		bySeq[m.seq] = m.n
	}
	full, other := 0, 0
	for _, n := range bySeq {
		if n == maxPayload {
			full++
		} else {
			other++
		}
	}
	// 64 data frames, each one full message; the stream's SYN and FIN
	// frames are the only small ones.
	if full != 64 || other > 2 {
		t.Fatalf("%d full messages and %d others, want 64 full and at most 2 small", full, other)
	}
}

// TestCopyHidesReaderFrom: Copy uses its own frame-sized buffer even when
// the destination could read from the source by itself.
func TestCopyHidesReaderFrom(t *testing.T) {
	t.Parallel()
	var w chunkRecorder
	n, err := portmux.Copy(&w, io.LimitReader(zeros{}, 100000), 1000)
	if err != nil || n != 100000 {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	for _, s := range w.sizes {
		if s > 8*1000 {
			t.Fatalf("a %d-byte write exceeds the %d-byte buffer", s, 8*1000)
		}
	}
	if w.sizes[0] != 8*1000 {
		t.Fatalf("first write %d bytes, want a full buffer of 8 frames", w.sizes[0])
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type chunkRecorder struct{ sizes []int }

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	return len(p), nil
}

// ReadFrom would make io.Copy skip the buffer.
func (c *chunkRecorder) ReadFrom(r io.Reader) (int64, error) {
	panic("ReadFrom must not be used")
}
