package transport_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
)

// messageConn is the interface the data channel consumes; every transport
// must satisfy it.
type messageConn interface {
	ReadMessage() ([]byte, error)
	WriteMessage(b []byte) error
	Close() error
}

var (
	_ messageConn = (*transport.Conn)(nil)
)

// readResult is what a background read produced.
type readResult struct {
	kind transport.Kind
	b    []byte
	err  error
}

// readAsync runs ReadMessage in a goroutine and returns its result channel.
func readAsync(c messageConn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		b, err := c.ReadMessage()
		ch <- readResult{transport.Binary, b, err}
	}()
	return ch
}

// waitRead waits for a background read, failing after d.
func waitRead(t *testing.T, ch <-chan readResult, d time.Duration) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("read did not return within %s", d)
		return readResult{}
	}
}

func TestConnBinaryAndTextFrames(t *testing.T) {
	t.Parallel()
	client, server := transporttest.WebsocketPair(t)

	open := []byte(`{"MessageSchemaVersion":"1.0"}`)
	frame := []byte{0, 1, 2, 3, 0xff}
	if err := client.WriteText(open); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	if err := client.WriteMessage(frame); err != nil {
		t.Fatalf("WriteMessage: %v", err)
	}

	tests := []struct {
		kind transport.Kind
		want []byte
	}{
		{transport.Text, open},
		{transport.Binary, frame},
	}
	for _, tt := range tests {
		kind, got, err := server.ReadFrame()
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if kind != tt.kind || !bytes.Equal(got, tt.want) {
			t.Fatalf("ReadFrame = %v %q, want %v %q", kind, got, tt.kind, tt.want)
		}
	}

	// And the other way round, with an empty message.
	if err := server.WriteMessage(nil); err != nil {
		t.Fatalf("server WriteMessage: %v", err)
	}
	got, err := client.ReadMessage()
	if err != nil || len(got) != 0 {
		t.Fatalf("client ReadMessage = %q, %v; want empty message", got, err)
	}
}

func TestConnReadMessageSkipsText(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var lines []string
	debug := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	client, server := transporttest.WebsocketPairWith(t,
		transport.DialOptions{ConnOptions: transport.ConnOptions{Debug: debug}},
		transport.ServerOptions{})

	for _, m := range []string{`{"TokenValue":"SECRET-TOKEN"}`, "second text"} {
		if err := server.WriteText([]byte(m)); err != nil {
			t.Fatalf("WriteText: %v", err)
		}
	}
	if err := server.WriteMessage([]byte("binary SECRET-PAYLOAD")); err != nil {
		t.Fatalf("WriteMessage: %v", err)
	}
	got, err := client.ReadMessage()
	if err != nil || string(got) != "binary SECRET-PAYLOAD" {
		t.Fatalf("ReadMessage = %q, %v; want the binary message", got, err)
	}

	mu.Lock()
	defer mu.Unlock()
	skipped := 0
	for _, l := range lines {
		if strings.Contains(l, "SECRET") {
			t.Errorf("debug line leaks a payload: %q", l)
		}
		if strings.Contains(l, "skipping text") {
			skipped++
		}
	}
	if skipped != 2 {
		t.Errorf("debug reported %d skipped text messages, want 2 (lines: %q)", skipped, lines)
	}
}

func TestConnConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 8, 1000
	if testing.Short() {
		t.Skip("long data test")
	}
	client, server := transporttest.WebsocketPair(t)

	// Message: writer id (1) | seq (4) | crc32 of body (4) | body.
	msg := func(w, seq int) []byte {
		body := bytes.Repeat([]byte{byte(w), byte(seq)}, 50+(seq%300))
		b := make([]byte, 9, 9+len(body))
		b[0] = byte(w)
		binary.BigEndian.PutUint32(b[1:], uint32(seq))
		binary.BigEndian.PutUint32(b[5:], crc32.ChecksumIEEE(body))
		return append(b, body...)
	}

	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for seq := range perWriter {
				if err := client.WriteMessage(msg(w, seq)); err != nil {
					errc <- fmt.Errorf("writer %d seq %d: %w", w, seq, err)
					return
				}
			}
		})
	}

	next := make([]int, writers)
	for i := range writers * perWriter {
		b, err := server.ReadMessage()
		if err != nil {
			t.Fatalf("ReadMessage %d: %v", i, err)
		}
		if len(b) < 9 || int(b[0]) >= writers {
			t.Fatalf("message %d: malformed header %x", i, b[:min(len(b), 9)])
		}
		w, seq := int(b[0]), int(binary.BigEndian.Uint32(b[1:]))
		if seq != next[w] {
			t.Fatalf("writer %d: got seq %d, want %d", w, seq, next[w])
		}
		next[w]++
		if !bytes.Equal(b, msg(w, seq)) || crc32.ChecksumIEEE(b[9:]) != binary.BigEndian.Uint32(b[5:]) {
			t.Fatalf("writer %d seq %d: message corrupted", w, seq)
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestConnMaxMessageSize(t *testing.T) {
	t.Parallel()
	client, server := transporttest.WebsocketPairWith(t,
		transport.DialOptions{},
		transport.ServerOptions{ConnOptions: transport.ConnOptions{MaxMessageSize: 1024}})

	if err := client.WriteMessage(make([]byte, 1024)); err != nil {
		t.Fatalf("WriteMessage at the limit: %v", err)
	}
	if b, err := server.ReadMessage(); err != nil || len(b) != 1024 {
		t.Fatalf("ReadMessage at the limit = %d bytes, %v", len(b), err)
	}

	if err := client.WriteMessage(make([]byte, 1025)); err != nil {
		t.Fatalf("WriteMessage over the limit: %v", err)
	}
	_, err := server.ReadMessage()
	if !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("server ReadMessage over the limit: err = %v, want ErrMessageTooLarge", err)
	}
	// The server closed with 1009; the client sees that as a CloseError.
	_, err = client.ReadMessage()
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != 1009 || !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("client ReadMessage after 1009: err = %v, want CloseError 1009", err)
	}
	if errors.Is(err, io.EOF) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("close 1009 must match io.ErrUnexpectedEOF, not io.EOF: %v", err)
	}
}

func TestConnCloseIdempotentAndUnblocksRead(t *testing.T) {
	t.Parallel()
	client, server := transporttest.WebsocketPair(t)

	pending := readAsync(client)
	time.Sleep(20 * time.Millisecond) // let the read block
	start := time.Now()
	for i := range 3 {
		if err := client.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	r := waitRead(t, pending, 2*time.Second)
	if !errors.Is(r.err, transport.ErrClosed) {
		t.Fatalf("pending ReadMessage after Close: err = %v, want ErrClosed", r.err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %s", d)
	}
	if _, err := client.ReadMessage(); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("ReadMessage after Close: err = %v, want ErrClosed", err)
	}
	if err := client.WriteMessage([]byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("WriteMessage after Close: err = %v, want ErrClosed", err)
	}

	// The peer saw a clean close.
	_, err := server.ReadMessage()
	var ce *transport.CloseError
	if !errors.Is(err, io.EOF) || !errors.As(err, &ce) || ce.Code != 1000 {
		t.Fatalf("peer ReadMessage after Close: err = %v, want CloseError 1000 matching io.EOF", err)
	}
	// Its writes fail once it has answered the close.
	if err := server.WriteMessage([]byte("late")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("peer WriteMessage after close handshake: err = %v, want ErrClosed", err)
	}
}
