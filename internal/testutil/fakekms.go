package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"sync"
)

// FakeKMS is an in-memory KMS for the session protocol's key exchange (the
// GenerateDataKey and Decrypt of encryption.KeyService). Like KMS it binds
// each data key to its key ID and encryption context: Decrypt with another
// key or context fails. It records what it handed out. Safe for concurrent
// use; the zero value is not: use NewFakeKMS.
type FakeKMS struct {
	// Fail, when set, is the error of every call.
	Fail error
	// KeyBytes, when not 0, is the size of the data keys generated,
	// whatever the caller asked for (to test a wrong size).
	KeyBytes int32

	mu     sync.Mutex
	keys   map[string]fakeKey // by ciphertext blob
	issued [][]byte
	last   GenerateCall
	calls  int
}

// GenerateCall is the arguments of a GenerateDataKey call.
type GenerateCall struct {
	KeyID   string
	Context map[string]string
	Bytes   int32
}

type fakeKey struct {
	keyID     string
	plaintext []byte
	encCtx    map[string]string
}

// NewFakeKMS returns an empty FakeKMS.
func NewFakeKMS() *FakeKMS { return &FakeKMS{keys: map[string]fakeKey{}} }

// GenerateDataKey returns a random plaintext key of n bytes and a blob that
// only Decrypt with the same key ID and context opens. An empty key ID
// fails, as KMS's validation does.
func (k *FakeKMS) GenerateDataKey(_ context.Context, keyID string, encCtx map[string]string, n int32) ([]byte, []byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	k.last = GenerateCall{KeyID: keyID, Context: maps.Clone(encCtx), Bytes: n}
	if k.Fail != nil {
		return nil, nil, k.Fail
	}
	if keyID == "" {
		return nil, nil, errors.New("ValidationException: no key ID")
	}
	if k.KeyBytes != 0 {
		n = k.KeyBytes
	}
	pt := make([]byte, n)
	_, _ = rand.Read(pt)
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	blob := []byte(keyID + ":" + hex.EncodeToString(id))
	k.keys[string(blob)] = fakeKey{keyID: keyID, plaintext: bytes.Clone(pt), encCtx: maps.Clone(encCtx)}
	k.issued = append(k.issued, pt)
	return pt, blob, nil
}

// Decrypt returns the plaintext key of blob when keyID and encCtx are the
// ones it was generated with.
func (k *FakeKMS) Decrypt(_ context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.Fail != nil {
		return nil, k.Fail
	}
	e, ok := k.keys[string(blob)]
	if !ok || e.keyID != keyID {
		return nil, errors.New("InvalidCiphertextException")
	}
	if !maps.Equal(e.encCtx, encCtx) {
		return nil, errors.New("InvalidCiphertextException: encryption context")
	}
	pt := bytes.Clone(e.plaintext)
	k.issued = append(k.issued, pt)
	return pt, nil
}

// Calls is the number of GenerateDataKey and Decrypt calls.
func (k *FakeKMS) Calls() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

// LastGenerate returns the arguments of the last GenerateDataKey call.
func (k *FakeKMS) LastGenerate() GenerateCall {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.last
}

// Issued returns the plaintext slices handed to callers (the callers' own
// slices, so a test can check they were zeroed after use).
func (k *FakeKMS) Issued() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.issued...)
}

// DataKeys returns a copy of every data key generated, as generated (not
// the callers' slices, which they may have zeroed): to check that no error
// or log quotes one.
func (k *FakeKMS) DataKeys() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out [][]byte
	for _, e := range k.keys {
		out = append(out, bytes.Clone(e.plaintext))
	}
	return out
}
