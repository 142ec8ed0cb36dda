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
	ctrlQ chan []byte // acknowledgements and other control messages, first
	// ctrlFree holds control frames written and free for the next
	// acknowledgement: one is sent per stream message received, and
	// allocating each made a GiB download 10–14 MB of garbage.
	ctrlFree chan []byte
	pending  atomic.Int64 // messages queued or being written
	wmu      sync.Mutex   // one writer at a time, so data can skip the queue
	batch    [][]byte     // writeLoop's batch (under wmu)
	held     []*outEntry  // the entries of the batch's frames (under wmu)
	ctrlOut  [][]byte     // the batch's control frames, recycled once written (under wmu)

	idMu  sync.Mutex
	idRNG *mrand.ChaCha8 // message IDs: unique, not secret
	dataQ chan queued    // stream messages and retransmissions

	cipher atomic.Pointer[encryption.Cipher]

	// maxPayloadSize is the largest payload sent per message: the
	// configured MaxPayloadSize, or FallbackPayloadSize once the service
	// refused a large message.
	maxPayloadSize atomic.Int64

	// Send side.
	sendMu  sync.Mutex // orders sequence assignment with transmission
	outMu   sync.Mutex
	outCond *sync.Cond
	out     outQueue
	nextSeq int64
	rtt     rttEstimator
	resent  int64  // retransmissions, for Stats
	gen     uint64 // connections so far: which one a message went out on
	// recoverBefore and recoverAt: messages sent before recoverBefore and
	// still unacknowledged at recoverAt are retransmitted (see handleAck).
	recoverBefore, recoverAt time.Time
	fb                       fallback // the service's message size limit (fallback.go)

	// Receive side.
	received   atomic.Int64 // stream messages, for Stats
	duplicates atomic.Int64
	inMu       sync.Mutex
	inCond     *sync.Cond
	expected   int64
	reorder    map[int64]*inEntry
	reorderN   int // bytes in reorder
	chunks     []chunk
	chunkOff   int
	lateAcks   []lateAck  // owed for messages taken beyond ReceiveBuffer, in order
	inFree     []*inEntry // delivered entries, reused for the next messages
	buffered   int        // bytes in chunks
	eof        bool

	// Handshake.
	readyCh   chan struct{}
	readyOnce sync.Once
	// inputAfter (UnixNano, 0 when none) holds input back after the
	// agent's HandshakeComplete (Config.HandshakeSettle).
	inputAfter atomic.Int64
	infoMu     sync.Mutex
	info       SessionInfo
	hsStarted  bool                        // client: a HandshakeRequest arrived
	respCh     chan wire.HandshakeResponse // agent: the client's response
	chalCh     chan wire.EncChallenge      // agent: the client's challenge answer
}

// connBox is the current connection and its generation: a stream message
// is written only on the connection it was meant for, so a copy decided
// before a reconnection never reaches the next connection behind the
// channel's back (the fallback's ordering depends on it).
type connBox struct {
	c   MessageConn
	gen uint64
}

// queued is a message waiting for writeLoop; e, when set, is the stream
// message's entry, released once written, and gen the connection it is
// meant for.
type queued struct {
	frame []byte
	e     *outEntry
	gen   uint64
}

type inEntry struct {
	msg       wire.Message
	acked     bool
	decrypted bool
	size      int
	frame     []byte // the received buffer msg points into
	recycle   func([]byte)
	kept      bool // the payload went to the read buffer, which recycles it
}

// lateAck is an acknowledgement owed until Read makes room.
type lateAck struct {
	messageType string
	id          uuid.UUID
	seq         int64
}

// chunk is received Output waiting for Read, and the buffer it lives in.
type chunk struct {
	data    []byte
	frame   []byte
	recycle func([]byte) // hands frame back once data is read; may be nil
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
		cfg:      cfg,
		ctx:      ctx,
		cancel:   cancel,
		doneCh:   make(chan struct{}),
		kick:     make(chan struct{}, 1),
		ctrlQ:    make(chan []byte, ctrlQueueLen),
		ctrlFree: make(chan []byte, ctrlFreeLen),
		dataQ:    make(chan queued, dataQueueLen),
		reorder:  make(map[int64]*inEntry),
		readyCh:  make(chan struct{}),
		respCh:   make(chan wire.HandshakeResponse, 1),
		chalCh:   make(chan wire.EncChallenge, 1),
	}
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	c.idRNG = mrand.NewChaCha8(seed)
	c.outCond = sync.NewCond(&c.outMu)
	c.inCond = sync.NewCond(&c.inMu)
	c.rtt = newRTT(cfg.InitialRTO, cfg.MaxRTO)
	c.maxPayloadSize.Store(int64(cfg.MaxPayloadSize))
	c.conn.Store(&connBox{c: conn})
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

// maxPayload is the largest payload a stream message may carry now.
func (c *Channel) maxPayload() int { return int(c.maxPayloadSize.Load()) }

// MaxPayload is the largest payload a stream message carries now. Callers
// that frame their own data (smux) size their frames to it, so that one of
// their writes is one message.
func (c *Channel) MaxPayload() int { return c.maxPayload() }

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

// queueData queues a stream message for writeLoop, waiting for room. The
// entry e holds a reference for the queue that writeLoop releases.
func (c *Channel) queueData(frame []byte, e *outEntry, gen uint64) {
	c.pending.Add(1)
	select {
	case c.dataQ <- queued{frame, e, gen}:
	case <-c.doneCh:
		c.pending.Add(-1)
		e.release()
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

// batchWriter is implemented by connections that send several messages in
// one go (transport.Conn: one system call).
type batchWriter interface {
	WriteMessages(bs [][]byte) error
}

// recycler is implemented by connections whose received buffers may be
// handed back once consumed (transport.Conn).
type recycler interface {
	Recycle(b []byte)
}

// writeNow writes one stream message on the current connection, unless
// that is no longer connection gen.
func (c *Channel) writeNow(frame []byte, gen uint64) {
	c.wmu.Lock()
	var err error
	if box := c.conn.Load(); box.gen == gen {
		err = box.c.WriteMessage(frame)
	}
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

// Batch bounds of writeLoop: a burst of acknowledgements leaves in one
// write, but the batch never grows so large that it delays a message the
// caller is waiting to write directly.
const (
	maxBatch      = 64
	maxBatchBytes = 256 << 10
)

// writeLoop writes queued messages, control messages first, as many at a
// time as are waiting. Write errors are not fatal here: the receive loop
// notices a dead connection, and unacked messages are retransmitted after
// a reconnect.
func (c *Channel) writeLoop() {
	defer c.wg.Done()
	for {
		var first queued
		select {
		case first.frame = <-c.ctrlQ:
		default:
			select {
			case first.frame = <-c.ctrlQ:
			case first = <-c.dataQ:
			case <-c.doneCh:
				return
			}
		}
		c.wmu.Lock()
		box := c.conn.Load()
		c.batch, c.held, c.ctrlOut = c.batch[:0], c.held[:0], c.ctrlOut[:0]
		size, n := 0, 0
		for q, ok := first, true; ok; {
			n++
			// A stream message meant for a connection since replaced is
			// dropped: the new one gets all unacknowledged messages anyway.
			if q.e == nil || q.gen == box.gen {
				c.batch = append(c.batch, q.frame)
				size += len(q.frame)
			}
			if q.e == nil {
				c.ctrlOut = append(c.ctrlOut, q.frame)
			}
			c.held = append(c.held, q.e)
			if len(c.held) == maxBatch || size >= maxBatchBytes {
				break
			}
			var next queued
			select {
			case next.frame = <-c.ctrlQ:
			default:
				select {
				case next.frame = <-c.ctrlQ:
				case next = <-c.dataQ:
				default:
					ok = false
				}
			}
			q = next
		}
		conn := box.c
		var err error
		if bw, ok := conn.(batchWriter); ok && len(c.batch) > 1 {
			err = bw.WriteMessages(c.batch)
		} else {
			for _, f := range c.batch {
				if err = conn.WriteMessage(f); err != nil {
					break
				}
			}
		}
		for i, e := range c.held {
			e.release()
			c.held[i] = nil
		}
		clear(c.batch)
		// Connections do not keep what they were given to write.
		for i, f := range c.ctrlOut {
			c.recycleControl(f)
			c.ctrlOut[i] = nil
		}
		c.wmu.Unlock()
		if err != nil && !c.closed() {
			c.logf("write failed: %v", err)
		}
		c.pending.Add(-int64(n))
	}
}

// readLoop receives messages until the channel ends.
func (c *Channel) readLoop() {
	defer c.wg.Done()
	var (
		recycleConn MessageConn
		recycle     func([]byte)
	)
	for {
		conn := c.conn.Load().c
		frame, err := conn.ReadMessage()
		if err != nil {
			if c.closed() {
				return
			}
			if !c.reconnect(err) {
				return
			}
			continue
		}
		if conn != recycleConn {
			// Once per connection: a method value is an allocation.
			recycleConn, recycle = conn, nil
			if r, ok := conn.(recycler); ok {
				recycle = r.Recycle
			}
		}
		c.handleFrame(frame, recycle)
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
			c.finish(fmt.Errorf("%w: %w", ErrConnectionLost, cause))
		}
		return false
	}
	if isTooBig(cause) {
		if err := c.onMessageTooBig(); err != nil {
			c.finish(err)
			return false
		}
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
		c.outMu.Lock()
		c.gen++
		old := c.conn.Swap(&connBox{c: conn, gen: c.gen})
		c.outMu.Unlock()
		_ = old.c.Close()
		// finish cancels ctx before it closes the current connection: if
		// it is not cancelled now, finish will close conn; if it is,
		// finish may have closed the old one, so close conn here.
		if c.ctx.Err() != nil {
			_ = conn.Close()
			return false
		}
		c.paused.Store(false)
		c.resendAll()
		return true
	}
	c.finish(fmt.Errorf("%w: %w", ErrConnectionLost, lastErr))
	return false
}

// handleFrame dispatches one received message. recycle, when set, takes
// the frame back once nothing refers to it any more.
func (c *Channel) handleFrame(frame []byte, recycle func([]byte)) {
	m, err := wire.DecodeUnverified(frame)
	if err == nil && c.checksDigest(&m) {
		err = m.VerifyDigest()
	}
	if err != nil {
		// Malformed or unknown messages are dropped, as upstream does; a
		// stream message will be retransmitted.
		c.logf("dropping frame: %v", err)
		if recycle != nil {
			recycle(frame)
		}
		return
	}
	if m.MessageType == c.incomingType() {
		c.paused.Store(false)
		c.receiveStream(m, frame, recycle) // keeps the frame, or recycles it
		return
	}
	if recycle != nil {
		// Nothing below keeps the frame: bodies are decoded at once.
		defer recycle(frame)
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
		// The peer is (back) on the service: whatever went out while it
		// was away may have been dropped, so everything unacknowledged
		// goes again now rather than when its timer runs out.
		c.paused.Store(false)
		c.resendAll()
	default:
		// agent_session_state and the rest are for the service.
	}
}

// checksDigest reports whether m's SHA-256 payload digest is checked:
// only with Config.CheckDigests, and never on payloads opened with AES-GCM,
// whose tag authenticates them end to end.
func (c *Channel) checksDigest(m *wire.Message) bool {
	return c.cfg.CheckDigests && !c.authenticatedByCipher(m)
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
	frame := append(c.controlBuffer(), make([]byte, wire.FrameHeaderSize)...)
	c.queueControlFrame(messageType, append(frame, body...))
}

// sendAck acknowledges a stream message (§3.4.1).
func (c *Channel) sendAck(m *wire.Message) {
	c.sendAckFor(m.MessageType, m.MessageID, m.SequenceNumber)
}

func (c *Channel) sendAckFor(messageType string, id uuid.UUID, seq int64) {
	frame := append(c.controlBuffer(), make([]byte, wire.FrameHeaderSize)...)
	c.queueControlFrame(wire.TypeAcknowledge, appendAck(frame, messageType, id, seq))
}

// queueControlFrame writes the header of a control message whose body is
// frame[wire.FrameHeaderSize:] and queues it.
func (c *Channel) queueControlFrame(messageType string, frame []byte) {
	m := wire.Message{
		MessageType:   messageType,
		SchemaVersion: wire.SchemaVersion,
		CreatedDate:   uint64(c.cfg.now().UnixMilli()),
		Flags:         wire.FlagsAck,
		MessageID:     c.newID(),
		PayloadType:   wire.PayloadNone,
		Payload:       frame[wire.FrameHeaderSize:],
	}
	if err := wire.PutHeader(frame, &m); err != nil {
		c.logf("encoding %s: %v", messageType, err)
		return
	}
	c.queueControl(frame)
}

// Control frame buffers: an acknowledgement's frame is about 300 bytes.
const (
	controlFrameCap = 512
	ctrlFreeLen     = 256
)

// controlBuffer returns an empty buffer for a control frame, a recycled
// one when there is one.
func (c *Channel) controlBuffer() []byte {
	select {
	case b := <-c.ctrlFree:
		return b[:0]
	default:
		return make([]byte, 0, controlFrameCap)
	}
}

// recycleControl keeps a written control frame for controlBuffer.
func (c *Channel) recycleControl(b []byte) {
	if cap(b) != controlFrameCap {
		return
	}
	select {
	case c.ctrlFree <- b:
	default:
	}
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
