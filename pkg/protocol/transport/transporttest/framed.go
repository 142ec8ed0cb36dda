package transporttest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
)

// framedHeaderLen is the size of the big-endian uint32 length prefix that
// precedes every Framed message.
const framedHeaderLen = 4

// framedCoalesce is the largest message whose header and payload are copied
// into one buffer and written with one Write; larger ones take two writes
// rather than a large copy.
const framedCoalesce = 32 << 10

// framedReadBuf is the Framed reader's buffer size.
const framedReadBuf = 32 << 10

// Framed carries messages over a byte stream (net.Pipe, TCP, a pipe) as a
// 4-byte big-endian length followed by that many bytes.
//
// One goroutine may read while any number of goroutines write.
type Framed struct {
	rwc io.ReadWriteCloser
	max int

	// Reader state, owned by the reading goroutine.
	br   *bufio.Reader
	hdr  [framedHeaderLen]byte
	rerr error // sticky: after a bad length the stream is out of sync

	wmu  sync.Mutex
	wbuf []byte
	werr error // sticky: a failed write may have sent half a message

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewFramed returns a Framed over rwc accepting messages up to
// transport.DefaultMaxMessageSize.
func NewFramed(rwc io.ReadWriteCloser) *Framed {
	return NewFramedLimit(rwc, transport.DefaultMaxMessageSize)
}

// NewFramedLimit returns a Framed over rwc accepting messages up to
// maxMessageSize bytes (at most 4 GiB - 1; zero or negative means
// transport.DefaultMaxMessageSize).
func NewFramedLimit(rwc io.ReadWriteCloser, maxMessageSize int) *Framed {
	if maxMessageSize <= 0 {
		maxMessageSize = transport.DefaultMaxMessageSize
	}
	if uint64(maxMessageSize) > math.MaxUint32 {
		maxMessageSize = math.MaxUint32
	}
	return &Framed{
		rwc: rwc,
		max: maxMessageSize,
		br:  bufio.NewReaderSize(rwc, framedReadBuf),
	}
}

// ReadMessage returns the next message. It returns io.EOF when the stream
// ended cleanly between messages, transport.ErrClosed after a local Close, and an error
// matching transport.ErrMessageTooLarge (without allocating) when the length prefix
// exceeds the limit; after that the stream is out of sync and every later
// read fails the same way.
func (f *Framed) ReadMessage() ([]byte, error) {
	if f.closed.Load() {
		return nil, transport.ErrClosed
	}
	if f.rerr != nil {
		return nil, f.rerr
	}
	if _, err := io.ReadFull(f.br, f.hdr[:]); err != nil {
		return nil, f.readFailed(err)
	}
	n := binary.BigEndian.Uint32(f.hdr[:])
	if uint64(n) > uint64(f.max) {
		f.rerr = fmt.Errorf("reading framed message: length %d exceeds limit %d: %w", n, f.max, transport.ErrMessageTooLarge)
		return nil, f.rerr
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(f.br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, f.readFailed(err)
	}
	return b, nil
}

// readFailed records and maps a read error.
func (f *Framed) readFailed(err error) error {
	if f.closed.Load() {
		return transport.ErrClosed
	}
	if err == io.EOF {
		f.rerr = io.EOF
	} else {
		f.rerr = fmt.Errorf("reading framed message: %w", err)
	}
	return f.rerr
}

// WriteMessage sends b as one message. It is safe for concurrent callers. A
// message over the limit fails with transport.ErrMessageTooLarge and nothing is sent.
func (f *Framed) WriteMessage(b []byte) error {
	if len(b) > f.max {
		return fmt.Errorf("writing framed message: length %d exceeds limit %d: %w", len(b), f.max, transport.ErrMessageTooLarge)
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.closed.Load() {
		return transport.ErrClosed
	}
	if f.werr != nil {
		return f.werr
	}
	var hdr [framedHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	var err error
	if len(b) <= framedCoalesce {
		f.wbuf = append(append(f.wbuf[:0], hdr[:]...), b...)
		_, err = f.rwc.Write(f.wbuf)
	} else if _, err = f.rwc.Write(hdr[:]); err == nil {
		_, err = f.rwc.Write(b)
	}
	if err != nil {
		if f.closed.Load() {
			return transport.ErrClosed
		}
		f.werr = fmt.Errorf("writing framed message: %w", err)
		return f.werr
	}
	return nil
}

// Close closes the underlying stream, which unblocks a pending read or
// write. Calls after the first return the first call's result.
func (f *Framed) Close() error {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		if err := f.rwc.Close(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			f.closeErr = fmt.Errorf("closing framed stream: %w", err)
		}
	})
	return f.closeErr
}
