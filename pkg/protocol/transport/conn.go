package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxRetainedReadBuf bounds the read scratch buffer a Conn keeps between
// messages, so one large message does not pin memory for the connection's
// lifetime.
const maxRetainedReadBuf = 256 << 10

// initialReadBuf is the first size of the read scratch buffer: a protocol
// frame with a 1 KiB payload plus its 120-byte header fits.
const initialReadBuf = 4 << 10

// Conn is a websocket connection carrying whole messages.
//
// One goroutine may read (ReadMessage or ReadFrame) while any number of
// goroutines write; writes are serialised. Pings from the peer are answered
// with pongs while a read is in progress. Close may be called at any time,
// from any goroutine, any number of times.
type Conn struct {
	ws   *websocket.Conn
	opts ConnOptions

	// rbuf is the reader's scratch buffer; only the reading goroutine
	// touches it.
	rbuf []byte

	// wmu serialises message writes: gorilla allows one concurrent writer.
	wmu sync.Mutex

	closed     atomic.Bool
	peerClosed atomic.Bool   // a read saw the peer's close frame or EOF
	done       chan struct{} // closed by Close; stops the keepalive goroutine
	pingDone   chan struct{} // closed when the keepalive goroutine exits
	closeOnce  sync.Once
	closeErr   error
}

// newConn wraps an established gorilla connection and starts its keepalive.
func newConn(ws *websocket.Conn, opts ConnOptions) *Conn {
	opts = opts.withDefaults()
	c := &Conn{
		ws:       ws,
		opts:     opts,
		done:     make(chan struct{}),
		pingDone: make(chan struct{}),
	}
	ws.SetReadLimit(opts.MaxMessageSize)

	// gorilla's default ping handler answers with WriteControl, which takes
	// the same internal write lock as every data frame we send, so pongs
	// never interleave with a frame. It waits at most 1 s for that lock and
	// drops the pong rather than blocking the reader behind a stuck writer.
	if opts.Debug != nil {
		answer := ws.PingHandler()
		ws.SetPingHandler(func(appData string) error {
			c.debugf("ping received (%d bytes), answering", len(appData))
			return answer(appData)
		})
	}
	if opts.PongWait > 0 {
		_ = ws.SetReadDeadline(time.Now().Add(opts.PingInterval + opts.PongWait))
		ws.SetPongHandler(func(string) error {
			c.debugf("pong received, read deadline moved by %s", opts.PongWait)
			return ws.SetReadDeadline(time.Now().Add(opts.PongWait))
		})
	} else if opts.Debug != nil {
		ws.SetPongHandler(func(string) error {
			c.debugf("pong received")
			return nil
		})
	}
	if opts.PingInterval > 0 {
		go c.keepalive()
	} else {
		close(c.pingDone)
	}
	return c
}

// debugf forwards to the Debug hook, if any.
func (c *Conn) debugf(format string, args ...any) {
	if c.opts.Debug != nil {
		c.opts.Debug(format, args...)
	}
}

// keepalive sends a ping every PingInterval until Close.
func (c *Conn) keepalive() {
	defer close(c.pingDone)
	if !c.opts.DelayFirstPing {
		if !c.ping() {
			return
		}
	}
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if !c.ping() {
				return
			}
		}
	}
}

// ping sends one keepalive ping and reports whether pinging should go on.
func (c *Conn) ping() bool {
	err := c.ws.WriteControl(websocket.PingMessage, []byte(PingPayload), time.Now().Add(controlWait))
	if err == nil {
		c.debugf("keepalive ping sent")
		return true
	}
	if c.closed.Load() {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// A writer held the lock for longer than controlWait; try again
		// next tick rather than tear the connection down.
		c.debugf("keepalive ping skipped: %v", err)
		return true
	}
	c.debugf("keepalive ping failed, stopping keepalive: %v", err)
	return false
}

// ReadMessage returns the next BINARY message. TEXT messages are skipped
// without being copied (and reported to the Debug hook). The returned slice
// belongs to the caller.
//
// Errors: ErrClosed after a local Close; a *CloseError (matching io.EOF for a
// clean close) when the peer closed; ErrMessageTooLarge when the peer sent
// more than MaxMessageSize; a deadline error when PongWait expired.
func (c *Conn) ReadMessage() ([]byte, error) {
	_, b, err := c.read(true)
	return b, err
}

// ReadFrame returns the next TEXT or BINARY message with its kind. A server
// uses it to read the TEXT Open*Channel request that starts a channel.
// Errors are as for ReadMessage.
func (c *Conn) ReadFrame() (Kind, []byte, error) {
	return c.read(false)
}

// read returns the next data message, skipping TEXT ones if skipText.
func (c *Conn) read(skipText bool) (Kind, []byte, error) {
	for {
		if c.closed.Load() {
			return 0, nil, ErrClosed
		}
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return 0, nil, c.readError(err)
		}
		kind := Binary
		if mt == websocket.TextMessage {
			kind = Text
		}
		if skipText && kind == Text {
			// gorilla discards the unread rest on the next NextReader.
			c.debugf("skipping %s message", kind)
			continue
		}
		b, err := c.readAll(r)
		if err != nil {
			return 0, nil, c.readError(err)
		}
		return kind, b, nil
	}
}

// readAll reads one message into the scratch buffer and returns an exactly
// sized copy: one allocation per message instead of io.ReadAll's doubling.
// gorilla enforces MaxMessageSize before any payload byte is read, so the
// scratch buffer never grows past the limit.
func (c *Conn) readAll(r io.Reader) ([]byte, error) {
	buf := c.rbuf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, initialReadBuf)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]byte, len(buf))
	copy(out, buf)
	if cap(buf) <= maxRetainedReadBuf {
		c.rbuf = buf[:0]
	} else {
		c.rbuf = nil
	}
	return out, nil
}

// readError maps a gorilla read error to this package's errors.
func (c *Conn) readError(err error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		c.peerClosed.Store(true)
		return &CloseError{Code: ce.Code, Text: ce.Text}
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		return fmt.Errorf("reading websocket message: %w (limit %d bytes)", ErrMessageTooLarge, c.opts.MaxMessageSize)
	}
	var ne net.Error
	if c.opts.PongWait > 0 && errors.As(err, &ne) && ne.Timeout() {
		// gorilla hides the net error's identity; restore it so callers
		// can test for the keepalive deadline with errors.Is.
		return fmt.Errorf("reading websocket message: no pong within the keepalive deadline: %w", os.ErrDeadlineExceeded)
	}
	return fmt.Errorf("reading websocket message: %w", err)
}

// WriteMessage sends b as one BINARY message. It is safe for concurrent
// callers; b may be reused once WriteMessage returns.
func (c *Conn) WriteMessage(b []byte) error {
	return c.write(websocket.BinaryMessage, b)
}

// WriteText sends b as one TEXT message, such as an Open*Channel request.
// It is safe for concurrent callers.
func (c *Conn) WriteText(b []byte) error {
	return c.write(websocket.TextMessage, b)
}

// write sends one data message under the write lock.
func (c *Conn) write(messageType int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if c.opts.WriteTimeout > 0 {
		// Only ever set under wmu: gorilla reads it without a lock.
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	}
	if err := c.ws.WriteMessage(messageType, b); err != nil {
		if c.closed.Load() {
			return ErrClosed
		}
		if errors.Is(err, websocket.ErrCloseSent) || c.peerClosed.Load() {
			// The peer started the close handshake (gorilla answered it)
			// or dropped the connection.
			return fmt.Errorf("writing websocket message: peer closed the connection: %w", ErrClosed)
		}
		return fmt.Errorf("writing websocket message: %w", err)
	}
	return nil
}

// Close sends a close frame (best effort, at most about 1 s) and closes the
// network connection, which unblocks a pending read or write. It stops the
// keepalive goroutine before returning. Calls after the first return the
// first call's result.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.done)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlWait)); err != nil {
			c.debugf("close frame not sent: %v", err)
		}
		if err := c.ws.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = fmt.Errorf("closing websocket: %w", err)
		}
		<-c.pingDone
		c.debugf("websocket closed")
	})
	return c.closeErr
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }
