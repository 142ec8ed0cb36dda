package datachannel

import (
	"errors"
	"fmt"

	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// FallbackPayloadSize is the payload size a channel falls back to for the
// rest of its life once the service refused a message as too big: the
// size both upstream ends send (§10.2), which the service always takes.
const FallbackPayloadSize = 1024

// ErrUnsplittable means the service refused a message as too big, but a
// message sent after it was already delivered, so it cannot be sent again
// in smaller pieces without corrupting the stream.
var ErrUnsplittable = errors.New("data channel: the service refused a message as too big, and it cannot be split any more")

// fallback follows the service's message size limit, which is not
// documented (§10.2): ssmkit sends up to MaxPayloadSize bytes per message,
// and a service that refuses a message closes the websocket with status
// 1009 (message too big).
//
// Messages carry sequence numbers, so a refused message cannot simply be
// cut in two: if the agent already had it (only its acknowledgement was
// lost with the connection), the pieces would be taken for something
// else. The service takes the frames of a connection in order and closes
// it at the first one over its limit, so nothing sent after a refused
// frame on that connection reached the agent. After the first refusal the
// channel therefore
//
//   - sends at most FallbackPayloadSize bytes in each new message;
//   - resends unacknowledged messages no longer than the longest one ever
//     acknowledged (the service takes those) as they are;
//   - sends the first longer one ("doubtful") only once everything before
//     it is acknowledged, alone, and holds back everything after it;
//   - if that one is acknowledged, it fits, and the next doubtful one goes;
//   - if the service refuses it too (1009 again), neither it nor anything
//     after it reached the agent: they are numbered again from its
//     sequence number, split into messages of FallbackPayloadSize bytes.
//
// Nothing is lost or delivered twice, at the price of a reconnection per
// refusal.
type fallback struct {
	on        bool
	goodFrame int // the longest frame acknowledged in this session
	splits    int // messages split after a refusal, for Stats
}

// fallbackFrame is the longest frame a fallback message makes.
const fallbackFrame = wire.FrameHeaderSize + FallbackPayloadSize + encryption.Overhead

// isTooBig reports whether err is the service closing the websocket with
// 1009 (message too big) — not this side refusing what the peer sent.
func isTooBig(err error) bool {
	var ce *transport.CloseError
	return errors.As(err, &ce) && ce.Code == 1009
}

// doubtful reports whether the service may refuse e as too big. outMu is
// held.
func (c *Channel) doubtful(e *outEntry) bool {
	return c.fb.on && !e.acked && len(e.frame) > c.fb.goodFrame && len(e.frame) > fallbackFrame
}

// firstDoubtful returns the index in the send queue of the first doubtful
// message, or -1. outMu is held.
func (c *Channel) firstDoubtful() int {
	if !c.fb.on {
		return -1
	}
	for i, e := range c.out.entries {
		if c.doubtful(e) {
			return i
		}
	}
	return -1
}

// onMessageTooBig handles the service closing the connection with 1009.
func (c *Channel) onMessageTooBig() error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if !c.fb.on {
		c.fb.on = true
		if c.maxPayload() > FallbackPayloadSize {
			c.maxPayloadSize.Store(FallbackPayloadSize)
		}
		c.logf("the service refused a message as too big (websocket close 1009): at most %d bytes per message from now on", FallbackPayloadSize)
		return nil
	}
	head := c.out.head()
	if head == nil || !c.doubtful(head) || head.lastSent.IsZero() || head.gen != c.gen {
		return nil // not refused for a message we were trying
	}
	return c.splitFrom(head)
}

// splitFrom numbers every queued message again from head, which the
// service refused, in messages of at most FallbackPayloadSize bytes. outMu
// is held; head is the oldest unacknowledged message.
func (c *Channel) splitFrom(head *outEntry) error {
	type piece struct {
		pt   wire.PayloadType
		data []byte
	}
	old := c.out.entries
	pieces := make([]piece, 0, len(old))
	for _, e := range old {
		if e.acked {
			return fmt.Errorf("%w: message %d was delivered after refused message %d", ErrUnsplittable, e.seq, head.seq)
		}
		payload := e.frame[wire.FrameHeaderSize:]
		if e.enc {
			plain, err := c.cipher.Load().Unseal(nil, payload)
			if err != nil {
				return fmt.Errorf("%w: message %d: %w", ErrUnsplittable, e.seq, err)
			}
			payload = plain
		} else {
			payload = append([]byte(nil), payload...)
		}
		pieces = append(pieces, piece{e.pt, payload})
	}
	for _, e := range old {
		c.out.unacked--
		c.out.bytes -= len(e.frame)
		e.release() // the queue's reference
	}
	clear(old)
	c.out.entries = old[:0]
	seq, now, n := head.seq, c.cfg.now(), 0
	for _, p := range pieces {
		for data := p.data; len(data) > 0; {
			k := min(len(data), FallbackPayloadSize)
			frame, payload, pooled, enc := c.payloadFrame(p.pt, [][]byte{data[:k]}, k)
			e, err := c.stamp(frame, payload, p.pt, seq, now, pooled, enc)
			if err != nil {
				return err
			}
			c.out.push(e) // unsent: resendLoop sends it
			seq++
			n++
			data = data[k:]
		}
	}
	c.nextSeq = seq
	c.fb.splits += len(old)
	c.logf("the service refused message %d (%d bytes) too: %d messages from it on sent again as %d of at most %d bytes",
		head.seq, len(head.frame), len(old), n, FallbackPayloadSize)
	c.outCond.Broadcast()
	return nil
}
