package transporttest_test

import (
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
)

// messageConn is the interface the data channel consumes; both test
// transports must satisfy it.
type messageConn interface {
	ReadMessage() ([]byte, error)
	WriteMessage(b []byte) error
	Close() error
}

var (
	_ messageConn = (*transporttest.Framed)(nil)
	_ messageConn = (*transporttest.PipeConn)(nil)
)

// readResult is what a background read produced.
type readResult struct {
	b   []byte
	err error
}

// readAsync runs ReadMessage in a goroutine and returns its result channel.
func readAsync(c messageConn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		b, err := c.ReadMessage()
		ch <- readResult{b, err}
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
