package datachannel

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// outEntry is one sent stream message kept until it is acknowledged.
type outEntry struct {
	seq       int64
	frame     []byte
	firstSent time.Time
	lastSent  time.Time // zero while not yet transmitted (paused)
	acked     bool
	resends   int
}

// outQueue holds unacknowledged stream messages in sequence order. Sequence
// numbers are contiguous, so an ack finds its entry by subtraction.
type outQueue struct {
	entries []*outEntry // entries[0] has sequence number base
	base    int64
	unacked int
	bytes   int
}

func (q *outQueue) push(e *outEntry) {
	if len(q.entries) == 0 {
		q.base = e.seq
	}
	q.entries = append(q.entries, e)
	q.unacked++
	q.bytes += len(e.frame)
}

// ack marks seq acknowledged and returns its entry, or nil if unknown.
func (q *outQueue) ack(seq int64) *outEntry {
	i := seq - q.base
	if i < 0 || i >= int64(len(q.entries)) {
		return nil
	}
	e := q.entries[i]
	if e.acked {
		return nil
	}
	e.acked = true
	q.unacked--
	q.bytes -= len(e.frame)
	// Drop the acknowledged prefix.
	n := 0
	for n < len(q.entries) && q.entries[n].acked {
		q.entries[n] = nil
		n++
	}
	if n > 0 {
		q.entries = q.entries[n:]
		q.base += int64(n)
		if len(q.entries) == 0 {
			q.entries = q.entries[:0:0]
		}
	}
	return e
}

// rttEstimator is the RFC 6298-style estimator of §4.5.
type rttEstimator struct {
	srtt, rttvar float64 // nanoseconds
	rto          time.Duration
	max          time.Duration
}

func newRTT(initialRTO, maxRTO time.Duration) rttEstimator {
	return rttEstimator{srtt: float64(initialSRTT), rto: initialRTO, max: maxRTO}
}

func (r *rttEstimator) sample(d time.Duration) {
	const alpha, beta = 1.0 / 8, 1.0 / 4
	x := float64(d)
	diff := r.srtt - x
	if diff < 0 {
		diff = -diff
	}
	r.rttvar = (1-beta)*r.rttvar + beta*diff
	r.srtt = (1-alpha)*r.srtt + alpha*x
	v := 4 * r.rttvar
	if v < float64(clockGranularity) {
		v = float64(clockGranularity)
	}
	rto := time.Duration(r.srtt + v)
	if rto > r.max {
		rto = r.max
	}
	r.rto = rto
}

// encrypts reports whether this role encrypts outgoing payloads of type pt
// (§3.2): the client only Output, the agent Output, StdErr and ExitCode.
func (c *Channel) encrypts(pt wire.PayloadType) bool {
	switch pt {
	case wire.PayloadOutput:
		return true
	case wire.PayloadStdErr, wire.PayloadExitCode:
		return c.cfg.Role == RoleAgent
	}
	return false
}

// sendStream numbers, encrypts, encodes and sends one stream message, after
// waiting for room in the send window.
func (c *Channel) sendStream(pt wire.PayloadType, payload []byte) error {
	return c.sendStreamFrom(pt, payload, false)
}

// sendStreamFrom is sendStream; fromReceiver queues the message instead of
// writing it, for replies sent by the receive path (handshake answers).
func (c *Channel) sendStreamFrom(pt wire.PayloadType, payload []byte, fromReceiver bool) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()

	// The frame is built in one buffer: the payload (sealed straight into
	// place when encrypted) and then the header in front of it.
	var ci *encryption.Cipher
	if c.encrypts(pt) {
		ci = c.cipher.Load()
	}
	size := len(payload)
	if ci != nil {
		size += encryption.Overhead
	}
	frame := make([]byte, wire.FrameHeaderSize+size)
	if ci != nil {
		payload = ci.Seal(frame[wire.FrameHeaderSize:wire.FrameHeaderSize], payload)
	} else {
		copy(frame[wire.FrameHeaderSize:], payload)
		payload = frame[wire.FrameHeaderSize:]
	}
	frameLen := len(frame)

	c.outMu.Lock()
	for !c.closed() && c.out.unacked > 0 &&
		(c.out.unacked >= c.cfg.SendWindow || c.out.bytes+frameLen > c.cfg.SendWindowBytes) {
		c.outCond.Wait()
	}
	if c.closed() {
		c.outMu.Unlock()
		return c.closedErr()
	}
	seq := c.nextSeq
	c.nextSeq++
	now := c.cfg.now()
	m := wire.Message{
		MessageType:    c.outgoingType(),
		SchemaVersion:  wire.SchemaVersion,
		CreatedDate:    uint64(now.UnixMilli()),
		SequenceNumber: seq,
		MessageID:      c.newID(),
		PayloadType:    pt,
		Payload:        payload,
	}
	if c.cfg.Role == RoleAgent && seq == 0 {
		m.Flags = wire.FlagSYN
	}
	if err := wire.PutHeader(frame, &m); err != nil {
		c.outMu.Unlock()
		return fmt.Errorf("encoding stream message: %w", err)
	}
	e := &outEntry{seq: seq, frame: frame, firstSent: now}
	paused := c.paused.Load()
	if !paused {
		e.lastSent = now
	}
	c.out.push(e)
	c.outMu.Unlock()

	if !paused && fromReceiver {
		c.queueData(frame)
	} else if !paused {
		// Stream data is written by the caller's goroutine: only the
		// receive path must never block on the network.
		c.writeNow(frame)
	}
	return nil
}

// handleAck removes an acknowledged message and updates the RTT (§4.3).
func (c *Channel) handleAck(seq int64) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	e := c.out.ack(seq)
	if e == nil {
		return
	}
	if !e.lastSent.IsZero() {
		c.rtt.sample(c.cfg.now().Sub(e.lastSent))
	}
	c.outCond.Broadcast()
}

// resendLoop retransmits overdue messages every ResendInterval (§4.4).
// Unlike upstream it refreshes the send time on every resend, retransmits
// every overdue message rather than only the oldest, and gives up by wall
// clock rather than by count.
func (c *Channel) resendLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.ResendInterval)
	defer t.Stop()
	var batch [][]byte
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		c.retryHeld()
		if c.paused.Load() {
			continue
		}
		now := c.cfg.now()
		batch = batch[:0]
		c.outMu.Lock()
		rto := c.rtt.rto
		for _, e := range c.out.entries {
			if e.acked {
				continue
			}
			if c.cfg.GiveUpAfter > 0 && now.Sub(e.firstSent) > c.cfg.GiveUpAfter {
				c.outMu.Unlock()
				c.finish(ErrResendTimeout)
				return
			}
			if e.lastSent.IsZero() || now.Sub(e.lastSent) > rto {
				if !e.lastSent.IsZero() {
					e.resends++
				}
				e.lastSent = now
				batch = append(batch, e.frame)
			}
		}
		c.outMu.Unlock()
		for _, f := range batch {
			if c.closed() {
				return
			}
			c.queueData(f)
		}
		if len(batch) > 0 {
			c.logf("retransmitted %d messages (rto %v)", len(batch), rto)
		}
	}
}

// retryHeld retries delivery of the next in-order message when it is held
// because its handler was not ready. Messages that arrived out of order
// were acknowledged when stored, so no retransmission will prompt a retry.
func (c *Channel) retryHeld() {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if _, held := c.reorder[c.expected]; held && !c.closed() {
		c.drainLocked()
	}
}

// waitReady blocks until the handshake is done (or skipped).
func (c *Channel) waitReady() error {
	select {
	case <-c.readyCh:
		return nil
	case <-c.doneCh:
		return c.closedErr()
	}
}

// Write sends p as Output messages of at most MaxPayloadSize bytes. It
// blocks while the send window is full, and until the handshake is done.
func (c *Channel) Write(p []byte) (int, error) {
	return c.writeChunks(wire.PayloadOutput, p)
}

// WriteStderr sends p as StdErr messages (agent role).
func (c *Channel) WriteStderr(p []byte) (int, error) {
	if c.cfg.Role != RoleAgent {
		return 0, ErrWrongRole
	}
	return c.writeChunks(wire.PayloadStdErr, p)
}

func (c *Channel) writeChunks(pt wire.PayloadType, p []byte) (int, error) {
	if err := c.waitReady(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > c.cfg.MaxPayloadSize {
			chunk = chunk[:c.cfg.MaxPayloadSize]
		}
		// sendStream copies the payload into the frame it keeps.
		if err := c.sendStream(pt, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// SendExitCode sends the ExitCode message (agent role, §3.4.5).
func (c *Channel) SendExitCode(code int) error {
	if c.cfg.Role != RoleAgent {
		return ErrWrongRole
	}
	if err := c.waitReady(); err != nil {
		return err
	}
	return c.sendStream(wire.PayloadExitCode, wire.EncodeExitCode(code))
}

// SendSize sends the terminal size (client role, §3.4.3).
func (c *Channel) SendSize(cols, rows uint32) error {
	if c.cfg.Role != RoleClient {
		return ErrWrongRole
	}
	if err := c.waitReady(); err != nil {
		return err
	}
	body, err := wire.EncodeJSON(wire.SizeData{Cols: cols, Rows: rows})
	if err != nil {
		return err
	}
	return c.sendStream(wire.PayloadSize, body)
}

// SendFlag sends a Flag message (§3.4.4).
func (c *Channel) SendFlag(f wire.Flag) error {
	if err := c.waitReady(); err != nil {
		return err
	}
	return c.sendStream(wire.PayloadFlag, wire.EncodeFlag(f))
}

// Flush waits until every sent message is acknowledged, ctx ends or the
// channel ends.
func (c *Channel) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.outMu.Lock()
		c.outCond.Broadcast()
		c.outMu.Unlock()
	})
	defer stop()
	c.outMu.Lock()
	defer c.outMu.Unlock()
	for c.out.unacked > 0 {
		if c.closed() {
			return c.closedErr()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.outCond.Wait()
	}
	return nil
}

// Stats are counters for diagnostics and benchmarks.
type Stats struct {
	Unacked       int
	UnackedBytes  int
	RTO           time.Duration
	Buffered      int // bytes waiting for Read
	ReorderHeld   int // out-of-order messages held
	Retransmitted int // resends of messages still unacked
}

// Stats returns a snapshot of the channel's counters.
func (c *Channel) Stats() Stats {
	var s Stats
	c.outMu.Lock()
	s.Unacked, s.UnackedBytes, s.RTO = c.out.unacked, c.out.bytes, c.rtt.rto
	for _, e := range c.out.entries {
		s.Retransmitted += e.resends
	}
	c.outMu.Unlock()
	c.inMu.Lock()
	s.Buffered, s.ReorderHeld = c.buffered, len(c.reorder)
	c.inMu.Unlock()
	return s
}

// appendAck appends the acknowledge body exactly as encoding/json writes
// wire.Acknowledge; message types and UUIDs need no escaping.
func appendAck(dst []byte, messageType string, id uuid.UUID, seq int64) []byte {
	dst = append(dst, `{"AcknowledgedMessageType":"`...)
	dst = append(dst, messageType...)
	dst = append(dst, `","AcknowledgedMessageId":"`...)
	var idBuf [36]byte
	encodeUUID(idBuf[:], id)
	dst = append(dst, idBuf[:]...)
	dst = append(dst, `","AcknowledgedMessageSequenceNumber":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, `,"IsSequentialMessage":true}`...)
}

func encodeUUID(dst []byte, u uuid.UUID) {
	const hexdigits = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j] = hexdigits[b>>4]
		dst[j+1] = hexdigits[b&0x0f]
		j += 2
	}
}
