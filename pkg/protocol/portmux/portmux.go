// Package portmux is what both ends of a multiplexed Port session share
// (SESSION-PROTOCOL.md §8.4): the smux configuration and the adapter that
// presents a data channel's Output byte stream to smux.
package portmux

import (
	"io"

	"github.com/xtaci/smux"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
)

// HeaderSize is the length of an smux frame header (§8.4).
const HeaderSize = 8

// Config is the smux configuration of a port session over ch: version 1 as
// both upstream ends use, keepalive as negotiated (§8.4), and frames sized
// so that one smux frame with its header is exactly one data channel
// message — a 32 KiB smux frame would otherwise become a 32 KiB message
// and an 8-byte one.
func Config(ch *datachannel.Channel, keepAliveOff bool) *smux.Config {
	cfg := smux.DefaultConfig()
	cfg.Version = 1
	cfg.KeepAliveDisabled = keepAliveOff
	cfg.MaxFrameSize = FrameSize(ch)
	// What smux holds for streams whose readers are slower than the data
	// arrives, across all streams (v1 has no per-stream window): the data
	// channel's own receive buffer and send window keep the pipe full.
	cfg.MaxReceiveBuffer = MaxReceiveBuffer
	return cfg
}

// MaxReceiveBuffer is the smux session's receive buffer (smux's default
// is 4 MiB). Since a data channel takes a sender's whole window when its
// reader lags (ReceiveBuffer plus the window, acknowledged late), smux's
// buffer only adds to what a lagging port session holds: at 512 KiB
// instead of 2 MiB, bench-e2e moved as much or more (1 GiB down 516 vs
// 442–478 MB/s, 20 connections 468 vs 427–433, up 469 vs 440–443) and the
// client's peak RSS while downloading fell 33.0–33.3 → 31.4 MiB (issue 12).
const MaxReceiveBuffer = 512 << 10

// FrameSize is the smux frame size that makes one frame one message of ch.
func FrameSize(ch *datachannel.Channel) int {
	return min(max(ch.MaxPayload()-HeaderSize, 1), 65535)
}

// Stream presents a data channel's Output byte stream to smux. Close is a
// no-op: the session's owner closes the channel once smux has stopped.
// WriteBuffers lets smux hand over a frame's header and data without
// joining them first; they are gathered straight into the message.
type Stream struct{ Ch *datachannel.Channel }

// Read reads Output bytes in order.
func (s Stream) Read(p []byte) (int, error) { return s.Ch.Read(p) }

// Write sends p as Output.
func (s Stream) Write(p []byte) (int, error) { return s.Ch.Write(p) }

// WriteBuffers sends the concatenation of v as Output.
func (s Stream) WriteBuffers(v [][]byte) (int, error) { return s.Ch.WriteBuffers(v) }

// Close does nothing.
func (s Stream) Close() error { return nil }

// copyFrames is how many full smux frames Copy moves per read.
const copyFrames = 8

// Copy copies src to dst, as io.Copy does, through a buffer of several
// whole smux frames: a read from a TCP connection then becomes full
// frames, each exactly one data channel message, instead of one full
// frame and a small remainder per 32 KiB read. frameSize is the smux
// MaxFrameSize in use.
func Copy(dst io.Writer, src io.Reader, frameSize int) (int64, error) {
	// Hide ReaderFrom and WriterTo, which would pick their own buffer.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, copyFrames*frameSize))
}

// CopyOut copies what arrives on st to dst until st ends, as io.Copy does,
// but writes smux's own frame buffers to dst instead of copying each into a
// buffer first (smux's WriteTo): one copy of every byte fewer on the
// receiving end of a port session.
func CopyOut(dst io.Writer, st *smux.Stream) (int64, error) {
	return st.WriteTo(dst)
}
