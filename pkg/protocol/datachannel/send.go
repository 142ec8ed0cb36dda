package datachannel

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/internal/bufpool"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// outEntry is one sent stream message kept until it is acknowledged.
type outEntry struct {
	seq       int64
	frame     []byte
	firstSent time.Time
	lastSent  time.Time // zero while waiting to be (re)transmitted: paused, or its connection replaced
	sent      bool      // transmitted at least once
	gen       uint64    // the connection it was last transmitted on (Channel.gen)
	acked     bool
	resends   int
	pt        wire.PayloadType
	enc       bool // the payload is sealed with the channel's cipher

	// refs counts who holds frame: the send queue until the ack, and each
	// write in progress. A pooled frame goes back to the pool when the
	// last one lets go; the atomic also orders a write's last read of the
	// frame before its reuse.
	refs   atomic.Int32
	pooled bool
}

// hold adds a reference for a write about to happen.
func (e *outEntry) hold() {
	if e != nil {
		e.refs.Add(1)
	}
}

// release drops a reference; the last one recycles a pooled frame.
func (e *outEntry) release() {
	if e != nil && e.refs.Add(-1) == 0 && e.pooled {
		bufpool.Put(e.frame)
	}
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

// head is the oldest unacknowledged message, or nil.
func (q *outQueue) head() *outEntry {
	if len(q.entries) == 0 {
		return nil
	}
	return q.entries[0] // ack drops the acknowledged prefix
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

// timeout is how long after its last transmission a message that has
// been retransmitted resends times is retransmitted again: the timeout,
// doubled for each retransmission (RFC 6298 §5.5), up to the ceiling. The
// doubling is per message, so that a message the receiver holds back (its
// read buffer is full: §4.8) gets few copies however many acknowledgements
// of later messages refresh the estimate meanwhile.
func (r *rttEstimator) timeout(resends int) time.Duration {
	if resends > 16 {
		return r.max
	}
	return min(r.rto<<resends, r.max)
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
	return c.sendStreamFrom(pt, [][]byte{payload}, len(payload), false)
}

// sendStreamFrom is sendStream for a payload gathered from parts (n bytes
// in all); fromReceiver queues the message instead of writing it, for
// replies sent by the receive path (handshake answers).
func (c *Channel) sendStreamFrom(pt wire.PayloadType, parts [][]byte, n int, fromReceiver bool) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()

	frame, payload, pooled, enc := c.payloadFrame(pt, parts, n)
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
	now := c.cfg.now()
	e, err := c.stamp(frame, payload, pt, seq, now, pooled, enc)
	if err != nil {
		c.outMu.Unlock()
		return err
	}
	c.nextSeq++
	// While paused, or while a message the service may refuse as too big
	// is being tried alone, the message waits for resendLoop.
	send := !c.paused.Load() && c.firstDoubtful() < 0
	gen := c.gen
	if send {
		e.lastSent, e.sent, e.gen = now, true, gen
		e.hold() // the write's
	}
	c.out.push(e)
	c.outMu.Unlock()

	if send && fromReceiver {
		c.queueData(frame, e, gen)
	} else if send {
		// Stream data is written by the caller's goroutine: only the
		// receive path must never block on the network.
		c.writeNow(frame, gen)
		e.release()
	}
	return nil
}

// payloadFrame builds the buffer of a frame with an n-byte payload
// gathered from parts, sealed in place when this role encrypts pt; stamp
// writes the header in front of it.
func (c *Channel) payloadFrame(pt wire.PayloadType, parts [][]byte, n int) (frame, payload []byte, pooled, enc bool) {
	var ci *encryption.Cipher
	if c.encrypts(pt) {
		ci = c.cipher.Load()
	}
	size := n
	if ci != nil {
		size += encryption.Overhead
	}
	// Large frames come from the pool and go back to it once acknowledged
	// and written: moving a gigabyte then allocates almost nothing.
	pooled = wire.FrameHeaderSize+size <= bufpool.Size && n >= bufpool.Small
	if pooled {
		frame = bufpool.Get()[:wire.FrameHeaderSize+size]
	} else {
		frame = make([]byte, wire.FrameHeaderSize+size)
	}
	body := frame[wire.FrameHeaderSize:]
	if ci != nil {
		// GCM seals in place when the plaintext sits exactly where the
		// ciphertext goes: right after the nonce.
		body = body[encryption.NonceSize:]
	}
	off := 0
	for _, p := range parts {
		off += copy(body[off:], p)
	}
	payload = body[:n]
	if ci != nil {
		payload = ci.Seal(frame[wire.FrameHeaderSize:wire.FrameHeaderSize], payload)
	}
	return frame, payload, pooled, ci != nil
}

// stamp writes the header of a frame payloadFrame built, numbered seq, and
// returns its queue entry (not yet queued or transmitted). outMu is held.
func (c *Channel) stamp(frame, payload []byte, pt wire.PayloadType, seq int64, now time.Time, pooled, enc bool) (*outEntry, error) {
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
		return nil, fmt.Errorf("encoding stream message: %w", err)
	}
	e := &outEntry{seq: seq, frame: frame, firstSent: now, pooled: pooled, pt: pt, enc: enc}
	e.refs.Store(1) // the queue's
	return e, nil
}

// handleAck removes an acknowledged message and updates the RTT (§4.3).
// Messages transmitted before it and still unacknowledged were lost, or
// their acknowledgements were (a connection keeps order): they are
// retransmitted at once rather than one per timeout — after the peer's
// connection dropped, say, when the service discarded a whole window.
func (c *Channel) handleAck(seq int64) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	e := c.out.ack(seq)
	if e == nil {
		return
	}
	now := c.cfg.now()
	// Karn's rule: the ack of a retransmitted message may be for any of
	// its copies, so it says nothing about the round trip.
	if e.resends == 0 && !e.lastSent.IsZero() {
		c.rtt.sample(now.Sub(e.lastSent))
	}
	c.fb.goodFrame = max(c.fb.goodFrame, len(e.frame))
	switch {
	case c.fb.on:
		c.kickResend() // what waited behind a doubtful message may go
	case e.lastSent.IsZero():
	case e.resends == 0:
		c.retransmitBefore(e.lastSent, now)
	default:
		// The acknowledgement may be for an earlier copy, held back by a
		// receiver whose reader was slow (the others it holds back then
		// come right after): look again a round trip from now.
		if e.lastSent.After(c.recoverBefore) {
			c.recoverBefore = e.lastSent
		}
		if c.recoverAt.IsZero() {
			c.recoverAt = now.Add(time.Duration(c.rtt.srtt))
			time.AfterFunc(time.Duration(c.rtt.srtt), c.kickResend)
		}
	}
	e.release() // the queue's reference
	c.outCond.Broadcast()
}

// maxFastRetransmit bounds the retransmissions one ack triggers.
const maxFastRetransmit = 64

// retransmitBefore retransmits the unacknowledged messages last sent
// before sentAt and more than a round trip ago (a younger copy may still
// be on its way). It never blocks: it runs on the receive path, and what
// does not fit in the write queue is left to the timer. outMu is held.
func (c *Channel) retransmitBefore(sentAt, now time.Time) {
	if c.paused.Load() {
		return
	}
	n := 0
	for _, x := range c.out.entries {
		if n == maxFastRetransmit {
			return
		}
		if x.resends == 0 && !x.lastSent.IsZero() && !x.lastSent.Before(sentAt) {
			// First transmissions go in sequence order: this one and
			// every later one left after sentAt.
			return
		}
		// The first copy goes after a round trip; later ones back off.
		wait := time.Duration(c.rtt.srtt)
		if x.resends > 0 {
			wait = c.rtt.timeout(x.resends)
		}
		if x.acked || x.lastSent.IsZero() || !x.lastSent.Before(sentAt) || now.Sub(x.lastSent) < wait {
			continue
		}
		x.hold()
		c.pending.Add(1)
		select {
		case c.dataQ <- queued{x.frame, x, c.gen}:
		default:
			c.pending.Add(-1)
			x.release()
			return
		}
		c.markResent(x, now)
		n++
	}
}

// markResent records a retransmission of e. outMu is held.
func (c *Channel) markResent(e *outEntry, now time.Time) {
	if e.sent {
		e.resends++
		c.resent++
	}
	e.sent, e.lastSent, e.gen = true, now, c.gen
}

// resendAll marks every unacknowledged message for transmission, for a
// new connection: what was in flight on the old one may be lost.
func (c *Channel) resendAll() {
	c.outMu.Lock()
	for _, e := range c.out.entries {
		if !e.acked {
			e.lastSent = time.Time{}
		}
	}
	c.outMu.Unlock()
	c.kickResend()
}

// resendLoop sends what waits for transmission (paused, or its connection
// replaced) and retransmits the oldest message once its timer has run out,
// checking every ResendInterval (§4.4). Unlike upstream it refreshes the
// send time on every resend, backs each message's timer off after each of
// its retransmissions as TCP does (so a slow peer does not get a storm of
// copies), retransmits the other missing messages as acknowledgements
// reveal them (handleAck), and gives up by wall clock rather than by count.
func (c *Channel) resendLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.ResendInterval)
	defer t.Stop()
	var batch []queued
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
		if !c.recoverAt.IsZero() && !now.Before(c.recoverAt) {
			c.retransmitBefore(c.recoverBefore, now)
			c.recoverAt, c.recoverBefore = time.Time{}, time.Time{}
		}
		head := c.out.head()
		if head != nil && c.cfg.GiveUpAfter > 0 && now.Sub(head.firstSent) > c.cfg.GiveUpAfter {
			c.outMu.Unlock()
			c.finish(ErrResendTimeout)
			return
		}
		// In order; a message the service may refuse as too big goes
		// only as the oldest one, alone, and what follows it waits
		// (fallback.go).
		d := c.firstDoubtful()
		for i, e := range c.out.entries {
			if d >= 0 && (i > d || i == d && i != 0) {
				break
			}
			if !e.acked && e.lastSent.IsZero() {
				c.markResent(e, now)
				e.hold()
				batch = append(batch, queued{e.frame, e, c.gen})
			}
		}
		if head != nil && !head.lastSent.IsZero() && now.Sub(head.lastSent) > c.rtt.timeout(head.resends) {
			c.markResent(head, now)
			head.hold()
			batch = append(batch, queued{head.frame, head, c.gen})
		}
		c.outMu.Unlock()
		for i, q := range batch {
			if c.closed() {
				for _, q := range batch[i:] {
					q.e.release()
				}
				return
			}
			c.queueData(q.frame, q.e, q.gen)
			batch[i] = queued{}
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

// waitReady blocks until the handshake is done (or skipped), and for the
// client until HandshakeSettle has passed since the agent's
// HandshakeComplete.
func (c *Channel) waitReady() error {
	select {
	case <-c.readyCh:
	case <-c.doneCh:
		return c.closedErr()
	}
	after := c.inputAfter.Load()
	if after == 0 {
		return nil
	}
	wait := time.Unix(0, after).Sub(c.cfg.now())
	if wait <= 0 {
		c.inputAfter.CompareAndSwap(after, 0)
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
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
	return c.writeParts(pt, [][]byte{p})
}

// WriteBuffers sends the concatenation of v as Output messages, like
// Write. It lets smux hand over a frame header and its data without
// copying them together first: they are gathered straight into the
// message.
func (c *Channel) WriteBuffers(v [][]byte) (int, error) {
	return c.writeParts(wire.PayloadOutput, v)
}

// writeParts sends the concatenation of v as messages of at most the
// current maximum payload size. sendStreamFrom copies the bytes into the
// frame it keeps, so v may be reused when writeParts returns.
func (c *Channel) writeParts(pt wire.PayloadType, v [][]byte) (int, error) {
	if err := c.waitReady(); err != nil {
		return 0, err
	}
	written := 0
	i, off := 0, 0 // next byte: v[i][off]
	var gather [4][]byte
	for {
		parts, n, limit := gather[:0], 0, c.maxPayload()
		for i < len(v) && n < limit {
			b := v[i][off:]
			take := min(len(b), limit-n)
			if take > 0 {
				parts = append(parts, b[:take])
				n += take
			}
			if take == len(b) {
				i, off = i+1, 0
			} else {
				off += take
			}
		}
		if n == 0 {
			return written, nil
		}
		if err := c.sendStreamFrom(pt, parts, n, false); err != nil {
			return written, err
		}
		written += n
	}
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

	// Totals over the channel's life.
	Sent       int64 // stream messages sent (first transmissions)
	Resent     int64 // retransmissions of stream messages
	Received   int64 // stream messages received, duplicates included
	Duplicates int64 // stream messages received more than once

	// Fallback is set once the service refused a message as too big;
	// Split counts the messages then sent again in smaller pieces.
	Fallback bool
	Split    int
}

// String is the one-line summary sessions log when they close.
func (s Stats) String() string {
	line := fmt.Sprintf("sent %d messages (%d resent), received %d (%d duplicates)", s.Sent, s.Resent, s.Received, s.Duplicates)
	if s.Fallback {
		line += fmt.Sprintf("; fell back to %d-byte messages (%d split)", FallbackPayloadSize, s.Split)
	}
	return line
}

// Stats returns a snapshot of the channel's counters.
func (c *Channel) Stats() Stats {
	var s Stats
	c.outMu.Lock()
	s.Unacked, s.UnackedBytes, s.RTO = c.out.unacked, c.out.bytes, c.rtt.rto
	for _, e := range c.out.entries {
		s.Retransmitted += e.resends
	}
	s.Sent, s.Resent = c.nextSeq, c.resent
	s.Fallback, s.Split = c.fb.on, c.fb.splits
	c.outMu.Unlock()
	s.Received, s.Duplicates = c.received.Load(), c.duplicates.Load()
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
