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

	"github.com/ssmkit/ssmkit/internal/bufpool"
)

// Conn is a websocket connection carrying whole messages.
//
// One goroutine may read (ReadMessage or ReadFrame) while any number of
// goroutines write; writes are serialised. Pings from the peer are answered
// with pongs while a read is in progress. Close may be called at any time,
// from any goroutine, any number of times.
//
// gorilla/websocket parses what arrives; Conn writes its frames itself
// (frame.go), so that several messages can leave in one system call
// (WriteMessages) and a server's messages go out without being copied.
// Every frame — data, pings, pongs, close — goes through the same write
// lock, so frames never interleave.
type Conn struct {
	ws   *websocket.Conn
	opts ConnOptions

	// w writes frames; wlock (a one-slot channel, so that control frames
	// can give up waiting) guards it.
	w     *frameWriter
	wlock chan struct{}

	closed     atomic.Bool
	peerClosed atomic.Bool   // a read saw the peer's close frame or EOF
	done       chan struct{} // closed by Close; stops the keepalive goroutine
	pingDone   chan struct{} // closed when the keepalive goroutine exits
	closeOnce  sync.Once
	closeErr   error
}

// newConn wraps an established gorilla connection and starts its keepalive.
func newConn(ws *websocket.Conn, opts ConnOptions, isServer bool) *Conn {
	opts = opts.withDefaults()
	c := &Conn{
		ws:       ws,
		opts:     opts,
		w:        newFrameWriter(ws.UnderlyingConn(), isServer, opts.WriteBufferSize),
		wlock:    make(chan struct{}, 1),
		done:     make(chan struct{}),
		pingDone: make(chan struct{}),
	}
	// The size limit is enforced while reading (readAll), so that the
	// 1009 close frame goes out through this Conn's write lock: gorilla
	// would write its own without it.
	ws.SetReadLimit(0)

	// Pongs and the reply to a close frame go through the write lock like
	// every other frame. A pong waits at most controlWait for the lock and
	// is dropped rather than block the reader behind a stuck writer.
	ws.SetPingHandler(func(appData string) error {
		c.debugf("ping received (%d bytes), answering", len(appData))
		if err := c.writeControl(opPong, []byte(appData)); err != nil && !errors.Is(err, errLockWait) {
			c.debugf("pong not sent: %v", err)
		}
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		c.peerClosed.Store(true)
		_ = c.writeControl(opClose, websocket.FormatCloseMessage(code, ""))
		return nil
	})
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
	err := c.writeControl(opPing, []byte(PingPayload))
	if err == nil {
		c.debugf("keepalive ping sent")
		return true
	}
	if c.closed.Load() {
		return false
	}
	if isTimeout(err) || errors.Is(err, errLockWait) {
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
// belongs to the caller, who may hand it back with Recycle once done with
// it.
//
// Errors: ErrClosed after a local Close; a *CloseError (matching io.EOF for a
// clean close) when the peer closed; ErrMessageTooLarge when the peer sent
// more than MaxMessageSize; a deadline error when PongWait expired.
func (c *Conn) ReadMessage() ([]byte, error) {
	_, b, err := c.read(true)
	return b, err
}

// Recycle hands back a buffer ReadMessage or ReadFrame returned, for a
// later message. The caller must not use b afterwards.
func (c *Conn) Recycle(b []byte) { bufpool.Put(b) }

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

// readAll reads one message. A large message stays in the pooled buffer it
// was read into (see Recycle); a small one is copied into a buffer of its
// own size. A message over MaxMessageSize closes the connection with 1009,
// as RFC 6455 asks, before more than the limit is read.
func (c *Conn) readAll(r io.Reader) ([]byte, error) {
	buf := bufpool.Get()
	limit := c.opts.MaxMessageSize
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				bufpool.Put(buf)
				_ = c.writeControl(opClose, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""))
				return nil, fmt.Errorf("reading websocket message: %w (limit %d bytes)", ErrMessageTooLarge, limit)
			}
			grown := make([]byte, len(buf), 2*cap(buf))
			copy(grown, buf)
			bufpool.Put(buf)
			buf = grown
		}
		// Read at most one byte past the limit: enough to know it was
		// exceeded.
		room := buf[len(buf):cap(buf)]
		if over := int64(len(buf)+len(room)) - (limit + 1); over > 0 {
			room = room[:int64(len(room))-over]
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			bufpool.Put(buf)
			_ = c.writeControl(opClose, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""))
			return nil, fmt.Errorf("reading websocket message: %w (limit %d bytes)", ErrMessageTooLarge, limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			bufpool.Put(buf)
			return nil, err
		}
	}
	if len(buf) < bufpool.Small {
		out := make([]byte, len(buf))
		copy(out, buf)
		bufpool.Put(buf)
		return out, nil
	}
	return buf, nil
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
	return c.writeData(opBinary, b, nil)
}

// WriteMessages sends each of bs as one BINARY message, in order, in as
// few system calls as it can. It is safe for concurrent callers; the
// buffers may be reused once it returns.
func (c *Conn) WriteMessages(bs [][]byte) error {
	if len(bs) == 0 {
		return nil
	}
	return c.writeData(opBinary, nil, bs)
}

// WriteText sends b as one TEXT message, such as an Open*Channel request.
// It is safe for concurrent callers.
func (c *Conn) WriteText(b []byte) error {
	return c.writeData(opText, b, nil)
}

// writeData sends one message (b) or several (bs) under the write lock.
func (c *Conn) writeData(op byte, b []byte, bs [][]byte) error {
	c.wlock <- struct{}{}
	defer func() { <-c.wlock }()
	if c.closed.Load() {
		return ErrClosed
	}
	if c.opts.WriteTimeout > 0 {
		_ = c.w.conn.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	}
	var err error
	if bs == nil {
		err = c.w.write(op, b)
	} else {
		err = c.w.writeMany(op, bs)
	}
	if err != nil {
		if c.closed.Load() {
			return ErrClosed
		}
		if errors.Is(err, errCloseSent) || c.peerClosed.Load() {
			// The peer started the close handshake (it was answered) or
			// dropped the connection.
			return fmt.Errorf("writing websocket message: peer closed the connection: %w", ErrClosed)
		}
		return fmt.Errorf("writing websocket message: %w", err)
	}
	return nil
}

// errLockWait means a control frame gave up waiting for the write lock.
var errLockWait = errors.New("websocket write lock busy")

// writeControl sends a control frame (ping, pong, close), waiting at most
// controlWait for the write lock and the network.
func (c *Conn) writeControl(op byte, data []byte) error {
	t := time.NewTimer(controlWait)
	defer t.Stop()
	select {
	case c.wlock <- struct{}{}:
	case <-t.C:
		return errLockWait
	}
	defer func() { <-c.wlock }()
	_ = c.w.conn.SetWriteDeadline(time.Now().Add(controlWait))
	err := c.w.write(op, data)
	// Data writes set their own deadline, or none.
	_ = c.w.conn.SetWriteDeadline(time.Time{})
	return err
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
		if err := c.writeControl(opClose, msg); err != nil {
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
