package transport

import (
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"
	"net"
)

// Websocket opcodes (RFC 6455 §5.2).
const (
	opText   = 1
	opBinary = 2
	opClose  = 8
	opPing   = 9
	opPong   = 10
)

// errCloseSent means a close frame has been sent: no data may follow.
var errCloseSent = errors.New("websocket close frame already sent")

// maxHeaderLen is the longest frame header: 2 bytes, an 8-byte length and
// a 4-byte masking key.
const maxHeaderLen = 14

// frameWriter writes websocket frames to a connection (RFC 6455 §5). Each
// message is one final frame. A server's frames go out with writev straight
// from the callers' buffers; a client's are masked while being copied into
// one scratch buffer (masking in place would change buffers the caller
// keeps, such as frames waiting to be acknowledged). Not safe for
// concurrent use: Conn's write lock guards it.
type frameWriter struct {
	conn     net.Conn
	isServer bool
	// writev is set when conn writes net.Buffers with one system call
	// (plain TCP; TLS would write them one by one).
	writev bool

	closeSent bool
	// scratch is what frames are joined (and masked) into before one
	// write; joinLimit is its size: a larger batch takes several writes.
	scratch   []byte
	joinLimit int
	hdrs      []byte
	vec       net.Buffers
	mask      *mrand.ChaCha8 // masking keys; they need to be unpredictable to intermediaries, not secret
	one       [1][]byte
}

func newFrameWriter(conn net.Conn, isServer bool, joinLimit int) *frameWriter {
	w := &frameWriter{conn: conn, isServer: isServer, joinLimit: joinLimit}
	_, w.writev = conn.(*net.TCPConn)
	if !isServer {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		w.mask = mrand.NewChaCha8(seed)
	}
	return w
}

// write sends one message (or control frame) with opcode op.
func (w *frameWriter) write(op byte, b []byte) error {
	w.one[0] = b
	err := w.writeMany(op, w.one[:])
	w.one[0] = nil
	return err
}

// writeMany sends each of bs as one message with opcode op.
func (w *frameWriter) writeMany(op byte, bs [][]byte) error {
	if w.closeSent {
		return errCloseSent
	}
	if op == opClose {
		w.closeSent = true
	}
	if w.isServer && w.writev {
		return w.writeVectored(op, bs)
	}
	return w.writeJoined(op, bs)
}

// writeVectored writes headers and payloads with writev, no copying.
func (w *frameWriter) writeVectored(op byte, bs [][]byte) error {
	w.hdrs = w.hdrs[:0]
	for _, b := range bs {
		w.hdrs = appendHeader(w.hdrs, op, len(b), nil)
	}
	vec := w.vec[:0]
	off := 0
	for _, b := range bs {
		n := headerLen(len(b), false)
		vec = append(vec, w.hdrs[off:off+n:off+n])
		off += n
		if len(b) > 0 {
			vec = append(vec, b)
		}
	}
	w.vec = vec
	_, err := vec.WriteTo(w.conn) // consumes a copy of the slice header
	clear(w.vec)
	return err
}

// writeJoined copies frames into the scratch buffer (masking a client's
// payloads on the way) and writes it whenever it fills.
func (w *frameWriter) writeJoined(op byte, bs [][]byte) error {
	if w.scratch == nil {
		w.scratch = make([]byte, 0, max(w.joinLimit, 2*maxHeaderLen))
	}
	buf := w.scratch[:0]
	for _, b := range bs {
		if len(buf) > 0 && len(buf)+maxHeaderLen+len(b) > cap(buf) {
			if _, err := w.conn.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		var key [4]byte
		var mask *[4]byte
		if !w.isServer {
			binary.LittleEndian.PutUint32(key[:], uint32(w.mask.Uint64()))
			mask = &key
		}
		buf = appendHeader(buf, op, len(b), mask)
		if len(buf)+len(b) > cap(buf) {
			// A message larger than the scratch buffer: write it in
			// pieces of the buffer's size.
			for off := 0; off < len(b); {
				k := min(cap(buf)-len(buf), len(b)-off)
				if mask != nil {
					start := len(buf)
					buf = buf[:start+k]
					maskCopy(buf[start:], b[off:off+k], *mask, off)
				} else {
					buf = append(buf, b[off:off+k]...)
				}
				off += k
				if _, err := w.conn.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
			continue
		}
		if mask != nil {
			start := len(buf)
			buf = buf[:start+len(b)]
			maskCopy(buf[start:], b, *mask, 0)
		} else {
			buf = append(buf, b...)
		}
	}
	if len(buf) > 0 {
		if _, err := w.conn.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// headerLen is the length of the header of an n-byte frame.
func headerLen(n int, masked bool) int {
	l := 2
	switch {
	case n > 0xffff:
		l += 8
	case n > 125:
		l += 2
	}
	if masked {
		l += 4
	}
	return l
}

// appendHeader appends the header of a final frame with opcode op and an
// n-byte payload, masked with mask when it is not nil.
func appendHeader(dst []byte, op byte, n int, mask *[4]byte) []byte {
	var maskBit byte
	if mask != nil {
		maskBit = 0x80
	}
	dst = append(dst, 0x80|op) // FIN
	switch {
	case n <= 125:
		dst = append(dst, maskBit|byte(n))
	case n <= 0xffff:
		dst = append(dst, maskBit|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// maskPatternLen is the length of the repeated masking key maskCopy XORs
// with: a multiple of 4, so that the key stays in phase from one piece to
// the next.
const maskPatternLen = 512

// maskCopy writes src XORed with the masking key to dst (RFC 6455 §5.3),
// src starting at payload offset pos. dst and src are the same length and
// overlap exactly or not at all. Copying and masking are one pass of
// crypto/subtle.XORBytes (vector instructions where the CPU has them),
// several times faster than a loop over words.
func maskCopy(dst, src []byte, key [4]byte, pos int) {
	var pat [maskPatternLen]byte
	for i := range pat {
		pat[i] = key[(pos+i)&3]
	}
	for len(src) > 0 {
		n := subtle.XORBytes(dst, src, pat[:min(len(src), len(pat))])
		dst, src = dst[n:], src[n:]
	}
}
