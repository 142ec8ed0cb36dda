package datachannel

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// Errors a Channel returns.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("data channel closed")
	// ErrResendTimeout means a message stayed unacknowledged for
	// Config.GiveUpAfter; the client should call TerminateSession.
	ErrResendTimeout = errors.New("data channel: peer stopped acknowledging messages")
	// ErrConnectionLost means the connection failed and could not be
	// re-established.
	ErrConnectionLost = errors.New("data channel connection lost")
	// ErrHandshake wraps handshake failures.
	ErrHandshake = errors.New("session handshake failed")
	// ErrWrongRole is returned when a method is called on the wrong role.
	ErrWrongRole = errors.New("operation not available in this role")
)

// ClosedError is the error of a channel ended by the service's
// channel_closed message. Read returns io.EOF once the buffered data is
// drained; Err returns this.
type ClosedError struct {
	SessionID string
	// Output is the service's reason; empty for a normal end.
	Output string
}

func (e *ClosedError) Error() string {
	if e.Output == "" {
		return "session " + e.SessionID + " closed"
	}
	return "session " + e.SessionID + " closed: " + e.Output
}

// SessionInfo is what the handshake established.
type SessionInfo struct {
	// SessionType as the agent named it (wire.SessionType*); a client
	// without handshake sees ssmdoc.SessionTypeStandardStream.
	SessionType string
	// Properties are the Port session's properties (raw JSON), or nil.
	Properties []byte
	// AgentVersion is the agent's version (empty without handshake).
	AgentVersion string
	// ClientVersion is the client's version (agent role).
	ClientVersion string
	// Handshake is false for a plain shell that skipped it (§5.6).
	Handshake bool
	// Encrypted is true when KMS encryption is on.
	Encrypted bool
	// CustomerMessage is the agent's message to print, if any.
	CustomerMessage string
	// HandshakeTime is the agent's HandshakeTimeToComplete.
	HandshakeTime time.Duration
}

// Channel is one end of a session's data channel. Its methods are safe for
// concurrent use: typically one goroutine reads and another writes.
type Channel struct {
	cfg  Config
	conn atomic.Pointer[connBox]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	doneCh    chan struct{}
	errMu     sync.Mutex
	err       error // why the channel ended

	paused atomic.Bool
	kick   chan struct{} // wakes the resend loop

	// All writes go through writeLoop so that the receive path never
	// blocks on the network: a receive loop stuck writing an ack while its
	// peer is stuck the same way would deadlock both ends.
	ctrlQ   chan []byte  // acknowledgements and other control messages, first
	pending atomic.Int64 // messages queued or being written
	wmu     sync.Mutex   // one writer at a time, so data can skip the queue

	idMu  sync.Mutex
	idRNG *mrand.ChaCha8 // message IDs: unique, not secret
	dataQ chan []byte    // stream messages and retransmissions

	cipher atomic.Pointer[encryption.Cipher]

	// Send side.
	sendMu  sync.Mutex // orders sequence assignment with transmission
	outMu   sync.Mutex
	outCond *sync.Cond
	out     outQueue
	nextSeq int64
	rtt     rttEstimator

	// Receive side.
	inMu     sync.Mutex
	inCond   *sync.Cond
	expected int64
	reorder  map[int64]*inEntry
	reorderN int // bytes in reorder
	chunks   [][]byte
	chunkOff int
	buffered int // bytes in chunks
	eof      bool

	// Handshake.
	readyCh   chan struct{}
	readyOnce sync.Once
	infoMu    sync.Mutex
	info      SessionInfo
	hsStarted bool                        // client: a HandshakeRequest arrived
	respCh    chan wire.HandshakeResponse // agent: the client's response
	chalCh    chan wire.EncChallenge      // agent: the client's challenge answer
}

type connBox struct{ c MessageConn }

type inEntry struct {
	msg       wire.Message
	acked     bool
	decrypted bool
	size      int
}

// New starts a Channel on conn. The caller then runs Handshake before
// reading or writing application data.
func New(conn MessageConn, cfg Config) (*Channel, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, fmt.Errorf("%w: nil connection", ErrInvalidConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Channel{
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		doneCh:  make(chan struct{}),
		kick:    make(chan struct{}, 1),
		ctrlQ:   make(chan []byte, ctrlQueueLen),
		dataQ:   make(chan []byte, dataQueueLen),
		reorder: make(map[int64]*inEntry),
		readyCh: make(chan struct{}),
		respCh:  make(chan wire.HandshakeResponse, 1),
		chalCh:  make(chan wire.EncChallenge, 1),
	}
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	c.idRNG = mrand.NewChaCha8(seed)
	c.outCond = sync.NewCond(&c.outMu)
	c.inCond = sync.NewCond(&c.inMu)
	c.rtt = newRTT(cfg.InitialRTO, cfg.MaxRTO)
	c.conn.Store(&connBox{conn})
	c.wg.Add(3)
	go c.readLoop()
	go c.resendLoop()
	go c.writeLoop()
	return c, nil
}

func (c *Channel) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(c.cfg.Role.String()+": "+format, args...)
	}
}

// Done is closed when the channel has ended.
func (c *Channel) Done() <-chan struct{} { return c.doneCh }

// Err returns why the channel ended: a *ClosedError for channel_closed,
// ErrClosed after Close, or the failure. It is nil while the channel runs.
func (c *Channel) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Close ends the channel and closes its connection. Messages already
// queued (a final acknowledgement, agent_session_state) get up to a second
// to go out first.
func (c *Channel) Close() error {
	deadline := time.Now().Add(time.Second)
	for !c.closed() && c.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.finish(ErrClosed)
	c.wg.Wait()
	return nil
}

// finish ends the channel once with err.
func (c *Channel) finish(err error) {
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		c.cancel()
		_ = c.conn.Load().c.Close()
		c.outMu.Lock()
		c.outCond.Broadcast()
		c.outMu.Unlock()
		c.inMu.Lock()
		c.eof = true
		c.inCond.Broadcast()
		c.inMu.Unlock()
		close(c.doneCh)
	})
}

func (c *Channel) closed() bool {
	select {
	case <-c.doneCh:
		return true
	default:
		return false
	}
}

// Write queue lengths. Control messages beyond ctrlQueueLen are dropped:
// an acknowledgement that is lost is recovered by the peer's retransmission.
const (
	ctrlQueueLen = 8192
	dataQueueLen = 64
)

// queueData queues a stream message for writeLoop, waiting for room.
func (c *Channel) queueData(frame []byte) {
	c.pending.Add(1)
	select {
	case c.dataQ <- frame:
	case <-c.doneCh:
		c.pending.Add(-1)
	}
}

// queueControl queues a control message without ever blocking.
func (c *Channel) queueControl(frame []byte) {
	c.pending.Add(1)
	select {
	case c.ctrlQ <- frame:
	default:
		c.pending.Add(-1)
		c.logf("control queue full, dropping a control message")
	}
}

// writeNow writes one message on the current connection.
func (c *Channel) writeNow(frame []byte) {
	c.wmu.Lock()
	err := c.conn.Load().c.WriteMessage(frame)
	c.wmu.Unlock()
	if err != nil && !c.closed() {
		c.logf("write failed: %v", err)
	}
}

// newID returns a random (version 4) message ID. IDs need to be unique,
// not unpredictable, so a per-channel ChaCha8 stream seeded from
// crypto/rand replaces a system call per message.
func (c *Channel) newID() uuid.UUID {
	var u uuid.UUID
	c.idMu.Lock()
	_, _ = c.idRNG.Read(u[:])
	c.idMu.Unlock()
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// writeLoop writes queued messages, control messages first. Write errors
// are not fatal here: the receive loop notices a dead connection, and
// unacked messages are retransmitted after a reconnect.
func (c *Channel) writeLoop() {
	defer c.wg.Done()
	for {
		var frame []byte
		select {
		case frame = <-c.ctrlQ:
		default:
			select {
			case frame = <-c.ctrlQ:
			case frame = <-c.dataQ:
			case <-c.doneCh:
				return
			}
		}
		c.writeNow(frame)
		c.pending.Add(-1)
	}
}

// readLoop receives messages until the channel ends.
func (c *Channel) readLoop() {
	defer c.wg.Done()
	for {
		frame, err := c.conn.Load().c.ReadMessage()
		if err != nil {
			if c.closed() {
				return
			}
			if !c.reconnect(err) {
				return
			}
			continue
		}
		c.handleFrame(frame)
		if c.closed() {
			return
		}
	}
}

// reconnect replaces a failed connection, or ends the channel.
func (c *Channel) reconnect(cause error) bool {
	if c.cfg.Reconnect == nil {
		if errors.Is(cause, io.EOF) {
			c.finish(fmt.Errorf("%w: peer closed the connection", ErrConnectionLost))
		} else {
			c.finish(fmt.Errorf("%w: %v", ErrConnectionLost, cause))
		}
		return false
	}
	c.logf("connection failed (%v), reconnecting", cause)
	delay := reconnectInitialDelay + time.Duration(mrand.Int64N(int64(reconnectInitialDelay)))
	var lastErr error
	for attempt := 0; attempt < reconnectAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(delay):
			case <-c.ctx.Done():
				return false
			}
			delay *= 2
			if delay > reconnectMaxDelay {
				delay = reconnectInitialDelay + time.Duration(mrand.Int64N(int64(reconnectInitialDelay)))
			}
		}
		conn, err := c.cfg.Reconnect(c.ctx)
		if err != nil {
			lastErr = err
			c.logf("reconnect attempt %d failed: %v", attempt+1, err)
			continue
		}
		old := c.conn.Swap(&connBox{conn})
		_ = old.c.Close()
		if c.closed() {
			_ = conn.Close()
			return false
		}
		c.paused.Store(false)
		c.kickResend()
		return true
	}
	c.finish(fmt.Errorf("%w: %v", ErrConnectionLost, lastErr))
	return false
}

// handleFrame dispatches one received message.
func (c *Channel) handleFrame(frame []byte) {
	m, err := wire.DecodeUnverified(frame)
	if err == nil && !c.authenticatedByCipher(&m) {
		err = m.VerifyDigest()
	}
	if err != nil {
		// Malformed or unknown messages are dropped, as upstream does; a
		// stream message will be retransmitted.
		c.logf("dropping frame: %v", err)
		return
	}
	switch m.MessageType {
	case wire.TypeAcknowledge:
		var ack wire.Acknowledge
		if err := wire.DecodeJSON(m.Payload, &ack); err != nil {
			c.logf("dropping acknowledge: %v", err)
			return
		}
		c.paused.Store(false)
		c.handleAck(ack.AcknowledgedMessageSequenceNumber)
	case c.incomingType():
		c.paused.Store(false)
		c.receiveStream(m)
	case wire.TypeChannelClosed:
		var cc wire.ChannelClosed
		_ = wire.DecodeJSON(m.Payload, &cc)
		if cc.SessionID == "" {
			cc.SessionID = c.cfg.SessionID
		}
		c.logf("channel closed by the service")
		c.finish(&ClosedError{SessionID: cc.SessionID, Output: cc.Output})
	case wire.TypePausePublication:
		c.paused.Store(true)
	case wire.TypeStartPublication:
		c.paused.Store(false)
		c.kickResend()
	default:
		// agent_session_state and the rest are for the service.
	}
}

// authenticatedByCipher reports whether m's payload will be opened with
// AES-GCM, whose tag authenticates it end to end: the SHA-256 digest check
// is then redundant. A payload that fails to open ends the session.
func (c *Channel) authenticatedByCipher(m *wire.Message) bool {
	return m.MessageType == c.incomingType() && c.decrypts(m.PayloadType) &&
		c.cipher.Load() != nil && c.isReady()
}

func (c *Channel) incomingType() string {
	if c.cfg.Role == RoleClient {
		return wire.TypeOutputStreamData
	}
	return wire.TypeInputStreamData
}

func (c *Channel) outgoingType() string {
	if c.cfg.Role == RoleClient {
		return wire.TypeInputStreamData
	}
	return wire.TypeOutputStreamData
}

// sendControl sends a non-stream message (acknowledge, agent_session_state).
func (c *Channel) sendControl(messageType string, body []byte) {
	m := wire.Message{
		MessageType:   messageType,
		SchemaVersion: wire.SchemaVersion,
		CreatedDate:   uint64(c.cfg.now().UnixMilli()),
		Flags:         wire.FlagsAck,
		MessageID:     c.newID(),
		PayloadType:   wire.PayloadNone,
		Payload:       body,
	}
	frame, err := wire.Encode(&m)
	if err != nil {
		c.logf("encoding %s: %v", messageType, err)
		return
	}
	c.queueControl(frame)
}

// sendAck acknowledges a stream message (§3.4.1).
func (c *Channel) sendAck(m *wire.Message) {
	body := appendAck(make([]byte, 0, 200), m.MessageType, m.MessageID, m.SequenceNumber)
	c.sendControl(wire.TypeAcknowledge, body)
}

// SendSessionState sends agent_session_state (agent role, §3.4.9).
func (c *Channel) SendSessionState(state string) error {
	if c.cfg.Role != RoleAgent {
		return ErrWrongRole
	}
	if c.closed() {
		return c.closedErr()
	}
	body, err := wire.EncodeJSON(wire.AgentSessionState{SchemaVersion: 1, SessionState: state, SessionID: c.cfg.SessionID})
	if err != nil {
		return err
	}
	c.sendControl(wire.TypeAgentSessionState, body)
	return nil
}

func (c *Channel) closedErr() error {
	if err := c.Err(); err != nil {
		return err
	}
	return ErrClosed
}

func (c *Channel) kickResend() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
