package transporttest

import (
	"fmt"
	"io"
	"sync"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
)

// pipeBuffer is how many messages each direction of a Pipe holds before
// WriteMessage blocks.
const pipeBuffer = 128

// PipeConn is one end of an in-memory message pipe made by Pipe.
//
// Both ends allow one reader and any number of concurrent writers. Closing
// either end closes the pipe: the closing end then fails every call with
// transport.ErrClosed, and the other end reads the messages already queued, then
// io.EOF, while its writes fail with io.ErrClosedPipe.
type PipeConn struct {
	recv <-chan []byte
	send chan<- []byte

	closed    chan struct{} // this end was closed
	closeOnce sync.Once
	shared    *pipeShared
}

// pipeShared is the state both ends see.
type pipeShared struct {
	done chan struct{} // either end was closed
	once sync.Once
}

// Pipe returns two connected in-memory message connections. What a writes,
// b reads, and the other way round. Messages are copied, never shared.
func Pipe() (a, b *PipeConn) {
	ab := make(chan []byte, pipeBuffer)
	ba := make(chan []byte, pipeBuffer)
	sh := &pipeShared{done: make(chan struct{})}
	a = &PipeConn{recv: ba, send: ab, closed: make(chan struct{}), shared: sh}
	b = &PipeConn{recv: ab, send: ba, closed: make(chan struct{}), shared: sh}
	return a, b
}

// ReadMessage returns the next message written by the other end.
func (p *PipeConn) ReadMessage() ([]byte, error) {
	select {
	case <-p.closed:
		return nil, transport.ErrClosed
	default:
	}
	select {
	case m := <-p.recv:
		return m, nil
	case <-p.shared.done:
		select {
		case <-p.closed:
			return nil, transport.ErrClosed
		default:
		}
		// The peer closed: deliver what it wrote before closing.
		select {
		case m := <-p.recv:
			return m, nil
		default:
			return nil, io.EOF
		}
	}
}

// WriteMessage queues a copy of b for the other end. It blocks while the
// other end's queue is full, until it reads or either end closes.
func (p *PipeConn) WriteMessage(b []byte) error {
	select {
	case <-p.closed:
		return transport.ErrClosed
	default:
	}
	select {
	case <-p.shared.done:
		return fmt.Errorf("writing to pipe: %w", io.ErrClosedPipe)
	default:
	}
	m := make([]byte, len(b))
	copy(m, b)
	select {
	case p.send <- m:
		return nil
	case <-p.shared.done:
		// done also fires when this end closed; report which.
		select {
		case <-p.closed:
			return transport.ErrClosed
		default:
			return fmt.Errorf("writing to pipe: %w", io.ErrClosedPipe)
		}
	}
}

// Close closes this end and the pipe. It never fails and may be called
// more than once.
func (p *PipeConn) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.shared.once.Do(func() { close(p.shared.done) })
	})
	return nil
}
