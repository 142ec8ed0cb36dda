package datachannel

import (
	"errors"
	"fmt"
	"io"

	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// processResult is what handling one in-order stream message came to.
type processResult int

const (
	processed     processResult = iota // consumed: ack and move on
	processedLate                      // taken, but acknowledged only when Read makes room
	notReady                           // leave unacked; the sender retransmits (§4.8)
)

// receiveStream handles an incoming stream message (§4.2). frame is the
// buffer m points into: it is kept while m waits to be read, and handed to
// recycle (when set) once nothing refers to it.
func (c *Channel) receiveStream(m wire.Message, frame []byte, recycle func([]byte)) {
	c.received.Add(1)
	c.inMu.Lock()
	defer c.inMu.Unlock()
	drop := func() {
		if recycle != nil {
			recycle(frame)
		}
	}
	s, e := m.SequenceNumber, c.expected
	switch {
	case s < e:
		// A duplicate of something delivered: re-acknowledge it, or a lost
		// ack makes the peer retransmit forever (§11.15) — unless its
		// acknowledgement is held back until Read makes room.
		c.duplicates.Add(1)
		if len(c.lateAcks) == 0 || s < c.lateAcks[0].seq {
			c.sendAck(&m)
		}
		drop()
		return
	case s > e:
		if old, ok := c.reorder[s]; ok {
			c.duplicates.Add(1)
			if old.acked {
				c.sendAck(&m)
			}
			drop()
			return
		}
		if _, blocked := c.reorder[e]; blocked {
			// The next message is here but cannot be taken yet: taking and
			// acknowledging later ones would let the sender think it lost
			// the next one, and keep sending. They come again.
			drop()
			return
		}
		if len(c.reorder) >= c.cfg.ReorderBuffer || c.reorderN+len(m.Payload) > c.cfg.ReorderBufferBytes {
			drop() // full: drop without ack; it will be retransmitted
			return
		}
		c.reorder[s] = c.newInEntry(inEntry{msg: m, acked: true, size: len(m.Payload), frame: frame, recycle: recycle})
		c.reorderN += len(m.Payload)
		c.sendAck(&m)
		return
	}
	if _, ok := c.reorder[s]; ok {
		// Held because its handler was not ready: the retransmission is
		// the cue to try again (§4.8).
		c.duplicates.Add(1)
		drop()
		c.drainLocked()
		return
	}
	c.reorder[s] = c.newInEntry(inEntry{msg: m, size: len(m.Payload), frame: frame, recycle: recycle})
	c.reorderN += len(m.Payload)
	c.drainLocked()
}

// newInEntry returns a held message's entry, reusing one of those freed
// (one per stream message received; inMu is held).
func (c *Channel) newInEntry(e inEntry) *inEntry {
	if n := len(c.inFree); n > 0 {
		p := c.inFree[n-1]
		c.inFree = c.inFree[:n-1]
		*p = e
		return p
	}
	return &e
}

// freeInEntry keeps a delivered message's entry for newInEntry (inMu is
// held). Nothing refers to it any more.
func (c *Channel) freeInEntry(e *inEntry) {
	if len(c.inFree) < maxInFree {
		*e = inEntry{}
		c.inFree = append(c.inFree, e)
	}
}

// maxInFree bounds the free entries kept.
const maxInFree = 64

// drainLocked delivers held messages in order while the receiver is ready.
func (c *Channel) drainLocked() {
	for {
		ent, ok := c.reorder[c.expected]
		if !ok {
			return
		}
		// The client acks handshake messages before handling them (§11.24).
		early := c.cfg.Role == RoleClient && isHandshakeType(ent.msg.PayloadType)
		if early && !ent.acked {
			ent.acked = true
			c.sendAck(&ent.msg)
		}
		if err := c.decryptOnce(ent); err != nil {
			delete(c.reorder, c.expected)
			c.reorderN -= ent.size
			c.inMu.Unlock()
			c.finish(err)
			c.inMu.Lock()
			return
		}
		res, err := c.process(ent)
		if err != nil {
			// A processing failure the sender cannot fix by resending (bad
			// handshake, decryption failure): end the session rather than
			// stall on a sequence number that never comes again.
			delete(c.reorder, c.expected)
			c.reorderN -= ent.size
			c.inMu.Unlock()
			c.finish(err)
			c.inMu.Lock()
			return
		}
		if res == notReady {
			return
		}
		delete(c.reorder, c.expected)
		c.reorderN -= ent.size
		if !ent.acked {
			ent.acked = true
			if res == processedLate {
				c.lateAcks = append(c.lateAcks, lateAck{ent.msg.MessageType, ent.msg.MessageID, ent.msg.SequenceNumber})
			} else {
				c.sendAck(&ent.msg)
			}
		}
		if !ent.kept && ent.recycle != nil {
			ent.recycle(ent.frame)
		}
		c.freeInEntry(ent)
		c.expected++
	}
}

func isHandshakeType(pt wire.PayloadType) bool {
	return pt == wire.PayloadHandshakeRequest || pt == wire.PayloadHandshakeComplete || pt == wire.PayloadEncChallengeRequest
}

// decrypts reports whether this role decrypts incoming payloads of type pt
// (§3.2): the agent only Output, the client Output, StdErr and ExitCode.
func (c *Channel) decrypts(pt wire.PayloadType) bool {
	switch pt {
	case wire.PayloadOutput:
		return true
	case wire.PayloadStdErr, wire.PayloadExitCode:
		return c.cfg.Role == RoleClient
	}
	return false
}

// decryptOnce decrypts a held message's payload in place, once: a message
// whose handler was not ready is processed again later.
func (c *Channel) decryptOnce(ent *inEntry) error {
	if ent.decrypted || !c.decrypts(ent.msg.PayloadType) {
		return nil
	}
	if c.cfg.Role == RoleAgent && !c.isReady() {
		return nil // dropped before the handshake anyway
	}
	ci := c.cipher.Load()
	if ci == nil {
		return nil
	}
	payload := ent.msg.Payload
	// The frame buffer is ours, and GCM allows the output to reuse the
	// ciphertext's storage exactly.
	plain, err := ci.Open(payload[encryption.NonceSize:encryption.NonceSize], payload)
	if err != nil {
		return fmt.Errorf("%w: decrypting payload: %w", ErrHandshake, err)
	}
	ent.msg.Payload = plain
	ent.decrypted = true
	return nil
}

// process handles one in-order stream message. It runs with inMu held.
// Output payloads are kept (ent.kept) until Read has taken them.
func (c *Channel) process(ent *inEntry) (processResult, error) {
	m := &ent.msg
	pt := m.PayloadType
	payload := m.Payload

	if c.cfg.Role == RoleAgent && !c.isReady() {
		// Until the handshake is done the agent takes only handshake
		// replies; anything else is acked and dropped (§4.8).
		switch pt {
		case wire.PayloadHandshakeResponse:
			return c.agentTakeResponse(payload)
		case wire.PayloadEncChallengeResponse:
			return c.agentTakeChallenge(payload)
		}
		return processed, nil
	}

	switch pt {
	case wire.PayloadOutput:
		if c.cfg.Role == RoleClient && !c.isReady() {
			c.clientNoHandshake()
		}
		if len(payload) == 0 {
			return processed, nil
		}
		// Past ReceiveBuffer the message is still taken, but its
		// acknowledgement waits until Read makes room: the sender's window
		// then fills and holds it back, with no retransmission. Past
		// ReceiveBuffer plus a window as large as this end's own (what a
		// peer configured alike can have in flight) the message is left
		// unacknowledged and comes again (§4.8); so is every one behind
		// it, which is why the bound is not lower.
		res := processed
		if c.buffered > 0 && c.buffered+len(payload) > c.cfg.ReceiveBuffer {
			if c.buffered+len(payload) > c.receiveLimit() {
				return notReady, nil
			}
			res = processedLate
		}
		c.chunks = append(c.chunks, chunk{data: payload, frame: ent.frame, recycle: ent.recycle})
		ent.kept = true
		c.buffered += len(payload)
		c.inCond.Broadcast()
		return res, nil
	case wire.PayloadHandshakeRequest:
		if c.cfg.Role != RoleClient {
			return processed, nil
		}
		return processed, c.clientHandleRequest(payload)
	case wire.PayloadEncChallengeRequest:
		if c.cfg.Role != RoleClient {
			return processed, nil
		}
		return processed, c.clientHandleChallenge(payload)
	case wire.PayloadHandshakeComplete:
		if c.cfg.Role != RoleClient {
			return processed, nil
		}
		return processed, c.clientHandleComplete(payload)
	case wire.PayloadHandshakeResponse, wire.PayloadEncChallengeResponse:
		return processed, nil // late duplicates after the handshake
	case wire.PayloadSize, wire.PayloadFlag, wire.PayloadStdErr, wire.PayloadExitCode:
		if c.cfg.OnControl == nil {
			return processed, nil
		}
		if err := c.cfg.OnControl(Packet{Type: pt, Data: payload}); err != nil {
			if errors.Is(err, ErrNotReady) {
				return notReady, nil
			}
			c.logf("control handler: %v", err)
		}
		return processed, nil
	}
	return processed, nil // unknown payload types are ignored
}

// receiveLimit is the most Output bytes held for Read: ReceiveBuffer, plus
// the late-acknowledged messages a sender with a window like this end's
// own can have sent past it.
func (c *Channel) receiveLimit() int { return c.cfg.ReceiveBuffer + c.cfg.SendWindowBytes }

// Read reads application Output bytes in order. It returns io.EOF once the
// channel has ended and everything received was read.
func (c *Channel) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.inMu.Lock()
	defer c.inMu.Unlock()
	for c.buffered == 0 {
		if c.eof {
			if err := c.Err(); err != nil {
				var ce *ClosedError
				if errors.As(err, &ce) || errors.Is(err, ErrClosed) {
					return 0, io.EOF
				}
				return 0, err
			}
			return 0, io.EOF
		}
		c.inCond.Wait()
	}
	n := 0
	for n < len(p) && len(c.chunks) > 0 {
		head := c.chunks[0].data[c.chunkOff:]
		k := copy(p[n:], head)
		n += k
		c.chunkOff += k
		if c.chunkOff == len(c.chunks[0].data) {
			if ch := c.chunks[0]; ch.recycle != nil {
				ch.recycle(ch.frame)
			}
			c.chunks[0] = chunk{}
			c.chunks = c.chunks[1:]
			c.chunkOff = 0
		}
	}
	c.buffered -= n
	if len(c.chunks) == 0 {
		c.chunks = nil
	}
	// Room was made: acknowledge what was taken beyond the buffer's size.
	if len(c.lateAcks) > 0 && c.buffered <= c.cfg.ReceiveBuffer {
		for _, a := range c.lateAcks {
			c.sendAckFor(a.messageType, a.id, a.seq)
		}
		c.lateAcks = c.lateAcks[:0]
	}

	// Room was made: deliver what waited for it.
	if _, waiting := c.reorder[c.expected]; waiting && !c.closed() {
		c.drainLocked()
	}
	return n, nil
}
