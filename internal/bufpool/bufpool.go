// Package bufpool recycles the message buffers of the session data path:
// the frames a data channel sends and keeps until they are acknowledged,
// and the messages a websocket reads. Moving a gigabyte through a session
// otherwise allocates a gigabyte, and the garbage collector's work and the
// heap's growth follow.
//
// The pool is process-wide, like the standard library's own buffer pools:
// a buffer put back by one connection serves the next message of any.
package bufpool

import "sync"

// Size is the capacity of every pooled buffer: a frame header (120 bytes),
// a 32 KiB payload, the AES-GCM overhead (28 bytes) and slack.
const Size = 32<<10 + 512

// Small is the length under which holding a pooled buffer is not worth its
// size: such messages are copied into a buffer of their own length, so
// that many small messages held at once (1 KiB messages of the official
// peers waiting to be read) do not each pin a whole pooled buffer.
const Small = 8 << 10

var pool = sync.Pool{New: func() any { b := make([]byte, Size); return &b }}

// Get returns an empty buffer with capacity Size.
func Get() []byte {
	return (*pool.Get().(*[]byte))[:0]
}

// Put returns b to the pool when it is a pooled buffer (capacity Size).
// The caller must not use b afterwards.
func Put(b []byte) {
	if cap(b) != Size {
		return
	}
	b = b[:0]
	pool.Put(&b)
}
