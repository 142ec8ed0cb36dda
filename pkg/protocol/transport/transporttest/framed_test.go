package transporttest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
)

// framedPipe returns two Framed ends over net.Pipe.
func framedPipe(t testing.TB, maxA, maxB int) (a, b *transporttest.Framed) {
	t.Helper()
	ca, cb := net.Pipe()
	a, b = transporttest.NewFramedLimit(ca, maxA), transporttest.NewFramedLimit(cb, maxB)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestFramedRoundTrip(t *testing.T) {
	t.Parallel()
	a, b := framedPipe(t, 0, 0)
	sizes := []int{0, 1, 1024, 32 << 10, 32<<10 + 1, 200 << 10}
	go func() {
		for _, n := range sizes {
			if err := a.WriteMessage(bytes.Repeat([]byte{byte(n)}, n)); err != nil {
				t.Errorf("WriteMessage(%d bytes): %v", n, err)
				return
			}
		}
		a.Close()
	}()
	for _, n := range sizes {
		got, err := b.ReadMessage()
		if err != nil {
			t.Fatalf("ReadMessage(%d bytes): %v", n, err)
		}
		if !bytes.Equal(got, bytes.Repeat([]byte{byte(n)}, n)) {
			t.Fatalf("message of %d bytes corrupted (got %d bytes)", n, len(got))
		}
	}
	if _, err := b.ReadMessage(); err != io.EOF {
		t.Fatalf("ReadMessage after peer Close: err = %v, want io.EOF", err)
	}
}

func TestFramedOverTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := transporttest.NewFramed(cc)
	b := transporttest.NewFramed(<-accepted)
	defer a.Close()
	defer b.Close()
	testConcurrentWriters(t, a, b, 8, 500)
}

func TestFramedConcurrentWritersOverPipe(t *testing.T) {
	t.Parallel()
	a, b := framedPipe(t, 0, 0)
	testConcurrentWriters(t, a, b, 8, 500)
}

// testConcurrentWriters has `writers` goroutines write n numbered messages
// each to w and checks that r receives every one intact and in per-writer
// order.
func testConcurrentWriters(t *testing.T, w, r messageConn, writers, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for id := range writers {
		wg.Go(func() {
			for seq := range n {
				m := make([]byte, 8+seq%97)
				binary.BigEndian.PutUint32(m, uint32(id))
				binary.BigEndian.PutUint32(m[4:], uint32(seq))
				for i := 8; i < len(m); i++ {
					m[i] = byte(id + seq + i)
				}
				if err := w.WriteMessage(m); err != nil {
					t.Errorf("writer %d: %v", id, err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	for range writers * n {
		m, err := r.ReadMessage()
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		id, seq := int(binary.BigEndian.Uint32(m)), int(binary.BigEndian.Uint32(m[4:]))
		if id >= writers || seq != next[id] || len(m) != 8+seq%97 {
			t.Fatalf("got writer %d seq %d len %d, want seq %d", id, seq, len(m), next[min(id, writers-1)])
		}
		for i := 8; i < len(m); i++ {
			if m[i] != byte(id+seq+i) {
				t.Fatalf("writer %d seq %d: byte %d corrupted", id, seq, i)
			}
		}
		next[id]++
	}
	wg.Wait()
}

func TestFramedMaxSize(t *testing.T) {
	t.Parallel()
	t.Run("write over the limit sends nothing", func(t *testing.T) {
		a, b := framedPipe(t, 16, 16)
		err := a.WriteMessage(make([]byte, 17))
		if !errors.Is(err, transport.ErrMessageTooLarge) {
			t.Fatalf("WriteMessage(17 bytes, limit 16): err = %v, want ErrMessageTooLarge", err)
		}
		// The stream is still usable.
		go func() { _ = a.WriteMessage([]byte("ok")) }()
		if m, err := b.ReadMessage(); err != nil || string(m) != "ok" {
			t.Fatalf("ReadMessage after refused write = %q, %v", m, err)
		}
	})
	t.Run("read over the limit", func(t *testing.T) {
		a, b := framedPipe(t, 1<<20, 16)
		go func() { _ = a.WriteMessage(make([]byte, 17)) }()
		_, err := b.ReadMessage()
		if !errors.Is(err, transport.ErrMessageTooLarge) {
			t.Fatalf("ReadMessage(17 bytes, limit 16): err = %v, want ErrMessageTooLarge", err)
		}
		// Out of sync from here on: the error sticks.
		if _, err2 := b.ReadMessage(); !errors.Is(err2, transport.ErrMessageTooLarge) {
			t.Fatalf("second ReadMessage: err = %v, want the same error", err2)
		}
	})
}

// rwc adapts a reader to io.ReadWriteCloser.
type rwc struct{ io.Reader }

func (rwc) Write(p []byte) (int, error) { return len(p), nil }
func (rwc) Close() error                { return nil }

func TestFramedGarbageLength(t *testing.T) {
	// Not parallel: TotalAlloc counts every goroutine's allocations.
	// A 4 GiB length prefix followed by a few bytes must fail without
	// allocating anything like 4 GiB.
	input := append([]byte{0xff, 0xff, 0xff, 0xff}, "garbage"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f := transporttest.NewFramed(rwc{bytes.NewReader(input)})
	_, err := f.ReadMessage()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Fatalf("ReadMessage: err = %v, want ErrMessageTooLarge", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("allocated %d bytes for a rejected length", d)
	}
}

func TestFramedTruncated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty stream", nil, io.EOF},
		{"partial header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"partial body", []byte{0, 0, 0, 5, 'a', 'b'}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		f := transporttest.NewFramed(rwc{bytes.NewReader(tt.input)})
		if _, err := f.ReadMessage(); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestFramedCloseIdempotentAndUnblocksRead(t *testing.T) {
	t.Parallel()
	a, b := framedPipe(t, 0, 0)
	pending := readAsync(a)
	time.Sleep(10 * time.Millisecond)
	for range 3 {
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if r := waitRead(t, pending, 2*time.Second); !errors.Is(r.err, transport.ErrClosed) {
		t.Fatalf("pending ReadMessage after Close: err = %v, want ErrClosed", r.err)
	}
	if err := a.WriteMessage([]byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("WriteMessage after Close: err = %v, want ErrClosed", err)
	}
	if _, err := b.ReadMessage(); err != io.EOF {
		t.Errorf("peer ReadMessage: err = %v, want io.EOF", err)
	}
	if err := b.WriteMessage([]byte("x")); err == nil || errors.Is(err, transport.ErrClosed) {
		t.Errorf("peer WriteMessage: err = %v, want a write error", err)
	}
}

// FuzzFramedRead checks that any byte stream decodes without panicking and
// that what decodes re-encodes to the same bytes.
func FuzzFramedRead(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := transporttest.NewFramedLimit(rwc{bytes.NewReader(data)}, 1<<10)
		var out bytes.Buffer
		for {
			m, err := fr.ReadMessage()
			if err != nil {
				break
			}
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], uint32(len(m)))
			out.Write(hdr[:])
			out.Write(m)
		}
		if !bytes.HasPrefix(data, out.Bytes()) {
			t.Fatalf("re-encoded %x is not a prefix of the input %x", out.Bytes(), data)
		}
	})
}

func ExampleNewFramed() {
	ca, cb := net.Pipe()
	a, b := transporttest.NewFramed(ca), transporttest.NewFramed(cb)
	defer a.Close()
	defer b.Close()
	go func() { _ = a.WriteMessage([]byte("hello")) }()
	m, _ := b.ReadMessage()
	fmt.Println(string(m))
	// Output: hello
}
