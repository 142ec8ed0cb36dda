// Package transport carries whole protocol messages between the data channel
// and the network.
//
// Conn is a websocket (RFC 6455) connection, dialled with Dial or accepted
// with Upgrade. This is what the Session Manager client, the SSM Agent and the
// ssmmessages service speak (SESSION-PROTOCOL.md §1.2–§1.4, §9.3, §9.6). The
// package transporttest has two more connections of the same shape
// (ReadMessage, WriteMessage, Close) for tests: Framed over a byte stream and
// an in-memory Pipe.
//
// Every implementation allows one reader goroutine and any number of
// concurrent writers, returns ErrClosed after a local Close, and io.EOF (or an
// error that matches it with errors.Is) after the peer has closed cleanly.
// Nothing in this package logs or formats message payloads, request headers or
// URL queries, so tokens carried in them never reach errors or logs.
package transport

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors. Match them with errors.Is: they are usually wrapped.
var (
	// ErrClosed is returned by any method of a connection that was closed
	// locally, including a ReadMessage that was pending when Close ran.
	ErrClosed = errors.New("transport: use of closed connection")

	// ErrInsecureURL is returned by Dial for a ws:// or http:// URL whose host
	// is not a loopback address. Nothing is dialled.
	ErrInsecureURL = errors.New("insecure websocket url: plain ws:// is only allowed to loopback addresses (127.0.0.0/8, ::1, localhost); use wss://")

	// ErrMessageTooLarge is returned when a peer sends, or a caller tries to
	// send on a length-prefixed connection, a message larger than the configured limit.
	// No buffer larger than the limit is ever allocated.
	ErrMessageTooLarge = errors.New("message exceeds the maximum message size")
)

// Kind is the type of a websocket data frame, as returned by Conn.ReadFrame.
// The values are the RFC 6455 opcodes.
type Kind uint8

const (
	// Text is a websocket TEXT message (opcode 1). The Open*Channel requests
	// that start every data and control channel are TEXT frames (§1.3, §9.3).
	Text Kind = 1
	// Binary is a websocket BINARY message (opcode 2). Every protocol frame
	// (§2) is a BINARY message.
	Binary Kind = 2
)

// String returns "text" or "binary".
func (k Kind) String() string {
	switch k {
	case Text:
		return "text"
	case Binary:
		return "binary"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Defaults applied to zero-valued ConnOptions and DialOptions fields.
const (
	// DefaultMaxMessageSize bounds a received message. Upstream does not
	// limit message sizes (§10.1), but protocol messages are about 1 KiB
	// (§10.2) and handshake JSON a few KiB, so 8 MiB is generous.
	DefaultMaxMessageSize = 8 << 20

	// DefaultBufferSize is the websocket write buffer size: up to this many
	// bytes of frames are written with one system call.
	DefaultBufferSize = 64 << 10

	// DefaultReadBufferSize is the buffer frames are read through. It is
	// small on purpose: the rest of a message larger than it is read from
	// the socket straight into the message's buffer, instead of through
	// the buffer with a copy (bufio reads directly into a destination at
	// least as large as its buffer).
	DefaultReadBufferSize = 4 << 10

	// DefaultHandshakeTimeout is the client's websocket upgrade timeout (§1.2, §10.1).
	DefaultHandshakeTimeout = 45 * time.Second

	// DefaultPingInterval is the client's keepalive ping interval (§1.4).
	DefaultPingInterval = 5 * time.Minute

	// AgentPingInterval is the SSM Agent's keepalive ping interval (§1.4).
	AgentPingInterval = 54 * time.Second

	// AgentPongWait is how long the SSM Agent waits for a pong before it
	// gives up on the connection (§1.4).
	AgentPongWait = 60 * time.Second

	// PingPayload is the application data of every keepalive ping (§1.4).
	PingPayload = "keepalive"
)

// controlWait bounds how long a control frame (ping, close) may wait for the
// connection's write lock and the network. It matches gorilla's own pong
// deadline.
const controlWait = time.Second

// ConnOptions tune a websocket Conn. The zero value is the Session Manager
// client's behaviour (§1.4): a ping right after open and then every 5 min,
// no read deadline, an 8 MiB message limit, a 4 KiB read buffer and a
// 64 KiB write buffer.
type ConnOptions struct {
	// MaxMessageSize is the largest message accepted from the peer. A larger
	// message fails the read with ErrMessageTooLarge and closes the
	// connection with status 1009. Zero or negative means
	// DefaultMaxMessageSize.
	MaxMessageSize int64

	// ReadBufferSize sizes the buffer gorilla reads through. WriteBufferSize
	// sizes the buffer frames are joined (and a client's masked) into
	// before one write; a server on plain TCP writes its frames straight
	// from the caller's buffers with writev and needs none. Zero means
	// DefaultBufferSize.
	ReadBufferSize, WriteBufferSize int

	// PingInterval is the keepalive ping period. Zero means
	// DefaultPingInterval; negative disables pings (and PongWait).
	PingInterval time.Duration

	// DelayFirstPing sends the first ping after PingInterval instead of right
	// after open. The client pings at once, the agent waits (§1.4).
	DelayFirstPing bool

	// PongWait, when positive, enforces liveness the way the agent does: the
	// read deadline starts at open + PingInterval + PongWait and moves to
	// now + PongWait whenever a pong arrives. Data frames do not move it.
	// A read that hits the deadline fails with an error matching
	// os.ErrDeadlineExceeded, and the connection is then unusable. Zero means
	// no read deadline (the client's behaviour). Pongs are only seen while a
	// ReadMessage or ReadFrame call is in progress.
	PongWait time.Duration

	// WriteTimeout, when positive, bounds each message write. A write that
	// times out leaves the connection unusable. Zero means no write deadline.
	WriteTimeout time.Duration

	// Debug, if set, receives one line per connection event (frames skipped,
	// pings, pongs, close). It never receives payloads, headers or URLs with
	// their query.
	Debug func(format string, args ...any)
}

// AgentConnOptions returns the SSM Agent's keepalive (§1.4): a ping every
// 54 s, the first one after 54 s, and a read deadline of 60 s after each pong
// (114 s after open).
func AgentConnOptions() ConnOptions {
	return ConnOptions{
		PingInterval:   AgentPingInterval,
		DelayFirstPing: true,
		PongWait:       AgentPongWait,
	}
}

// withDefaults returns o with every zero field replaced by its default.
func (o ConnOptions) withDefaults() ConnOptions {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.WriteBufferSize <= 0 {
		o.WriteBufferSize = DefaultBufferSize
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingInterval < 0 {
		o.PongWait = 0
	}
	return o
}

// CloseError reports that the peer closed the websocket with a close frame,
// or that the connection dropped without one (Code 1006).
//
// errors.Is(err, io.EOF) holds for a clean close (codes 1000, 1001, 1005);
// errors.Is(err, io.ErrUnexpectedEOF) holds for any other code, and
// errors.Is(err, ErrMessageTooLarge) holds for code 1009.
type CloseError struct {
	// Code is the RFC 6455 status code.
	Code int
	// Text is the reason the peer gave, if any.
	Text string
}

// Error implements error.
func (e *CloseError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("websocket closed by peer (code %d)", e.Code)
	}
	return fmt.Sprintf("websocket closed by peer (code %d): %s", e.Code, e.Text)
}

// Is reports whether e matches io.EOF, io.ErrUnexpectedEOF or
// ErrMessageTooLarge as described on CloseError.
func (e *CloseError) Is(target error) bool {
	switch target {
	case io.EOF:
		return e.clean()
	case io.ErrUnexpectedEOF:
		return !e.clean()
	case ErrMessageTooLarge:
		return e.Code == 1009
	}
	return false
}

// clean reports whether the close code means an orderly shutdown.
func (e *CloseError) clean() bool {
	switch e.Code {
	case 1000, 1001, 1005: // normal closure, going away, no status
		return true
	}
	return false
}
