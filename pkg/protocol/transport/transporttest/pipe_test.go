package transporttest_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
)

func TestPipeRoundTripCopies(t *testing.T) {
	t.Parallel()
	a, b := transporttest.Pipe()
	defer a.Close()
	msg := []byte("hello")
	if err := a.WriteMessage(msg); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'J' // the caller may reuse its buffer
	got, err := b.ReadMessage()
	if err != nil || string(got) != "hello" {
		t.Fatalf("ReadMessage = %q, %v; want hello", got, err)
	}
	if err := b.WriteMessage(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := a.ReadMessage(); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty message = %q (nil %v), %v", got, got == nil, err)
	}
}

func TestPipeConcurrentWriters(t *testing.T) {
	t.Parallel()
	a, b := transporttest.Pipe()
	defer a.Close()
	testConcurrentWriters(t, a, b, 8, 1000)
}

func TestPipeClosePropagates(t *testing.T) {
	t.Parallel()
	a, b := transporttest.Pipe()
	for _, m := range []string{"one", "two"} {
		if err := a.WriteMessage([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Queued messages still arrive, then EOF.
	for _, want := range []string{"one", "two"} {
		if got, err := b.ReadMessage(); err != nil || string(got) != want {
			t.Fatalf("ReadMessage = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := b.ReadMessage(); err != io.EOF {
		t.Fatalf("ReadMessage after drain: err = %v, want io.EOF", err)
	}
	if err := b.WriteMessage([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("WriteMessage to a closed peer: err = %v, want io.ErrClosedPipe", err)
	}
	if _, err := a.ReadMessage(); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("ReadMessage on the closed end: err = %v, want ErrClosed", err)
	}
	if err := a.WriteMessage([]byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("WriteMessage on the closed end: err = %v, want ErrClosed", err)
	}
}

func TestPipeCloseUnblocks(t *testing.T) {
	t.Parallel()
	a, b := transporttest.Pipe()
	pending := readAsync(a)
	// Fill b's queue so its next write blocks.
	blocked := make(chan error, 1)
	go func() {
		for {
			if err := b.WriteMessage([]byte("fill")); err != nil {
				blocked <- err
				return
			}
		}
	}()
	// a's pending read takes one message; then close a.
	if r := waitRead(t, pending, time.Second); r.err != nil {
		t.Fatalf("ReadMessage: %v", r.err)
	}
	pending = nil
	time.Sleep(10 * time.Millisecond)
	a.Close()
	select {
	case err := <-blocked:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("blocked WriteMessage: err = %v, want io.ErrClosedPipe", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock a blocked writer")
	}

	c, d := transporttest.Pipe()
	defer d.Close()
	pending = readAsync(c)
	time.Sleep(10 * time.Millisecond)
	c.Close()
	if r := waitRead(t, pending, 2*time.Second); !errors.Is(r.err, transport.ErrClosed) {
		t.Errorf("pending ReadMessage after Close: err = %v, want ErrClosed", r.err)
	}
}
