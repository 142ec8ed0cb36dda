// Package encryption implements the session protocol's optional KMS encryption
// (SESSION-PROTOCOL.md §6): the KMS data-key exchange, the AES-256-GCM payload cipher with each
// role's key split and nonce scheme, and the encrypted challenge that proves both ends hold the
// same key.
//
// The package is role-aware but transport-free: it never frames messages, never logs, and never
// decides which payload types to encrypt (that is the data channel's job: the client encrypts
// outgoing PayloadType 1 only; the agent encrypts 1, 11 and 12 and decrypts 1 only).
package encryption

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

const (
	// DataKeySize is the number of bytes the client asks KMS GenerateDataKey for: two AES-256
	// keys, one per direction.
	DataKeySize = 64
	// KeySize is the size of each direction's AES-256 key.
	KeySize = 32
	// NonceSize is the standard GCM nonce size that prefixes every encrypted payload.
	NonceSize = 12
	// TagSize is the GCM authentication tag size that ends every encrypted payload.
	TagSize = 16
	// Overhead is how much longer an encrypted payload is than its plaintext.
	Overhead = NonceSize + TagSize
)

// Sentinel errors returned (wrapped) by Open and the constructors.
var (
	// ErrShortCiphertext means the payload is too short to hold a nonce and a tag.
	ErrShortCiphertext = errors.New("encrypted payload shorter than nonce and tag")
	// ErrDecrypt means authentication failed: wrong key, or the payload was altered.
	ErrDecrypt = errors.New("decrypting payload: message authentication failed")
	// ErrDataKeySize means the data key is not DataKeySize bytes long.
	ErrDataKeySize = errors.New("data key must be 64 bytes")
)

// Cipher encrypts one direction of a session and decrypts the other. Each role holds the two
// halves of the 64-byte data key the other way round, so a client Cipher and an agent Cipher
// built from the same data key talk to each other.
//
// A Cipher is safe for concurrent use. It keeps no copy of the data key, only the expanded
// AES key schedules inside the AEADs.
type Cipher struct {
	seal cipher.AEAD // encrypts outgoing payloads
	open cipher.AEAD // decrypts incoming payloads

	// counter is nil for the client role, whose nonces are random per message.
	counter *nonceCounter
}

// NewClientCipher builds the client's cipher (§6.1): it decrypts agent traffic with bytes 0..31
// of dataKey and encrypts its own traffic with bytes 32..63, drawing a random nonce for each
// message. The caller may zero dataKey once this returns.
func NewClientCipher(dataKey []byte) (*Cipher, error) {
	return newCipher(dataKey, false)
}

// NewAgentCipher builds the agent's cipher (§6.2): it encrypts its own traffic with bytes 0..31
// of dataKey and decrypts client traffic with bytes 32..63. Its nonces are a counter that starts
// at 12 random bytes (§6.3). The caller may zero dataKey once this returns.
func NewAgentCipher(dataKey []byte) (*Cipher, error) {
	return newCipher(dataKey, true)
}

func newCipher(dataKey []byte, agent bool) (*Cipher, error) {
	if len(dataKey) != DataKeySize {
		// Only the length goes into the error: the key itself must never reach a message.
		return nil, fmt.Errorf("%w, got %d", ErrDataKeySize, len(dataKey))
	}
	first, err := newAEAD(dataKey[:KeySize])
	if err != nil {
		return nil, err
	}
	second, err := newAEAD(dataKey[KeySize:])
	if err != nil {
		return nil, err
	}
	if !agent {
		return &Cipher{seal: second, open: first}, nil
	}
	var start [NonceSize]byte
	_, _ = rand.Read(start[:]) // crypto/rand.Read never fails (it aborts the program instead)
	return &Cipher{seal: first, open: second, counter: newNonceCounter(start)}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("creating aes cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating gcm: %w", err)
	}
	return aead, nil
}

// Seal encrypts plaintext and appends nonce ‖ ciphertext ‖ tag (len(plaintext)+Overhead bytes)
// to dst, returning the extended slice. dst's spare capacity must not overlap plaintext; pass a
// reused buffer's [:0] to avoid allocating.
func (c *Cipher) Seal(dst, plaintext []byte) []byte {
	ret, out := grow(dst, len(plaintext)+Overhead)
	nonce := out[:NonceSize]
	if c.counter != nil {
		c.counter.next(nonce)
	} else {
		_, _ = rand.Read(nonce) // never fails, see newCipher
	}
	c.seal.Seal(out[NonceSize:NonceSize], nonce, plaintext, nil)
	return ret
}

// Open authenticates and decrypts payload (nonce ‖ ciphertext ‖ tag), appending the plaintext
// to dst. It returns an error wrapping ErrShortCiphertext or ErrDecrypt on bad input and never
// panics. dst's spare capacity must not overlap payload.
func (c *Cipher) Open(dst, payload []byte) ([]byte, error) {
	if len(payload) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrShortCiphertext, len(payload), Overhead)
	}
	out, err := c.open.Open(dst, payload[:NonceSize], payload[NonceSize:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// Unseal decrypts a payload this side sealed (nonce ‖ ciphertext ‖ tag),
// appending the plaintext to dst. A sender uses it to split a message it
// already encrypted into smaller ones. Errors are as for Open.
func (c *Cipher) Unseal(dst, payload []byte) ([]byte, error) {
	if len(payload) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrShortCiphertext, len(payload), Overhead)
	}
	out, err := c.seal.Open(dst, payload[:NonceSize], payload[NonceSize:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// grow extends dst by n bytes, reallocating only when its capacity is short. It returns the
// whole slice and the n-byte tail to fill.
func grow(dst []byte, n int) (whole, tail []byte) {
	total := len(dst) + n
	if cap(dst) >= total {
		whole = dst[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, dst)
	}
	return whole, whole[len(dst):]
}

// nonceCounter is the agent's nonce source (§6.3): a 96-bit counter kept as three uint32 words,
// least significant first, written and incremented as one little-endian number. This matches
// the upstream agent byte for byte. Counter nonces never repeat within 2^96 messages, where
// random nonces start to risk collisions after about 2^32.
type nonceCounter struct {
	mu    sync.Mutex
	words [3]uint32
}

func newNonceCounter(start [NonceSize]byte) *nonceCounter {
	n := &nonceCounter{}
	for i := range n.words {
		n.words[i] = binary.LittleEndian.Uint32(start[4*i:])
	}
	return n
}

// next writes the current value into dst (NonceSize bytes) and then increments the counter.
func (n *nonceCounter) next(dst []byte) {
	n.mu.Lock()
	for i, w := range n.words {
		binary.LittleEndian.PutUint32(dst[4*i:], w)
	}
	for i := range n.words {
		n.words[i]++
		if n.words[i] != 0 {
			break
		}
	}
	n.mu.Unlock()
}
