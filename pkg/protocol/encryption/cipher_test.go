package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// testKey is a fixed 64-byte data key: byte i has value i.
func testKey() []byte {
	k := make([]byte, DataKeySize)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func testCiphers(t testing.TB) (client, agent *Cipher) {
	t.Helper()
	client, err := NewClientCipher(testKey())
	if err != nil {
		t.Fatal(err)
	}
	agent, err = NewAgentCipher(testKey())
	if err != nil {
		t.Fatal(err)
	}
	return client, agent
}

func TestRoundTrip(t *testing.T) {
	client, agent := testCiphers(t)
	for _, size := range []int{0, 1, 15, 16, 17, 1024, 64 << 10} {
		msg := make([]byte, size)
		_, _ = rand.Read(msg)
		t.Run(fmt.Sprintf("client_to_agent/%d", size), func(t *testing.T) {
			sealed := client.Seal(nil, msg)
			if len(sealed) != size+Overhead {
				t.Fatalf("sealed length = %d, want %d", len(sealed), size+Overhead)
			}
			got, err := agent.Open(nil, sealed)
			if err != nil {
				t.Fatalf("agent Open: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("agent Open returned different bytes")
			}
			// A role cannot read its own traffic: the directions use different keys.
			if _, err := client.Open(nil, sealed); !errors.Is(err, ErrDecrypt) {
				t.Errorf("client opened its own payload: err = %v", err)
			}
		})
		t.Run(fmt.Sprintf("agent_to_client/%d", size), func(t *testing.T) {
			sealed := agent.Seal(nil, msg)
			got, err := client.Open(nil, sealed)
			if err != nil {
				t.Fatalf("client Open: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("client Open returned different bytes")
			}
			if _, err := agent.Open(nil, sealed); !errors.Is(err, ErrDecrypt) {
				t.Errorf("agent opened its own payload: err = %v", err)
			}
		})
	}
}

// TestKeySplit checks §6.1/§6.2 with a plain AES-GCM built here from the raw key halves:
// the agent encrypts with bytes 0..31, the client with bytes 32..63, and the wire format is
// nonce ‖ ciphertext ‖ tag with no associated data.
func TestKeySplit(t *testing.T) {
	client, agent := testCiphers(t)
	key := testKey()
	msg := []byte("echo hello\r")

	open := func(key, payload []byte) ([]byte, error) {
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		return gcm.Open(nil, payload[:12], payload[12:], nil)
	}
	if got, err := open(key[32:], client.Seal(nil, msg)); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("client payload does not open with key bytes 32..63: %v", err)
	}
	if got, err := open(key[:32], agent.Seal(nil, msg)); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("agent payload does not open with key bytes 0..31: %v", err)
	}
}

func TestSealOpenAppend(t *testing.T) {
	client, agent := testCiphers(t)
	prefix := []byte("hdr:")
	buf := make([]byte, len(prefix), 256)
	copy(buf, prefix)
	sealed := client.Seal(buf, []byte("payload"))
	if !bytes.HasPrefix(sealed, prefix) || &sealed[0] != &buf[0] {
		t.Fatal("Seal did not append in place to dst")
	}
	out, err := agent.Open([]byte("out:"), sealed[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "out:payload" {
		t.Fatalf("Open appended %q, want %q", out, "out:payload")
	}
}

func TestNonceCounter(t *testing.T) {
	tests := []struct {
		name       string
		start, nxt string // hex, as the nonce bytes appear on the wire
	}{
		{"simple", "010000000200000003000000", "020000000200000003000000"},
		{"carry within word", "ff0000000000000000000000", "000100000000000000000000"},
		{"carry into second word", "ffffffff0200000003000000", "000000000300000003000000"},
		{"carry into third word", "ffffffffffffffff00000000", "000000000000000001000000"},
		{"wraps to zero", "ffffffffffffffffffffffff", "000000000000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var start [NonceSize]byte
			if _, err := hex.Decode(start[:], []byte(tt.start)); err != nil {
				t.Fatal(err)
			}
			n := newNonceCounter(start)
			got := make([]byte, NonceSize)
			n.next(got)
			if hex.EncodeToString(got) != tt.start {
				t.Errorf("first nonce = %x, want the start value %s", got, tt.start)
			}
			n.next(got)
			if hex.EncodeToString(got) != tt.nxt {
				t.Errorf("second nonce = %x, want %s", got, tt.nxt)
			}
		})
	}
}

func TestAgentNoncesCount(t *testing.T) {
	_, agent := testCiphers(t)
	agent.counter = newNonceCounter([NonceSize]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	want := []string{"feffffffffffffff00000000", "ffffffffffffffff00000000", "000000000000000001000000"}
	for i, w := range want {
		if got := hex.EncodeToString(agent.Seal(nil, []byte("x"))[:NonceSize]); got != w {
			t.Errorf("nonce %d = %s, want %s", i, got, w)
		}
	}
}

func TestAgentNonceStartIsRandom(t *testing.T) {
	_, a1 := testCiphers(t)
	_, a2 := testCiphers(t)
	n1 := a1.Seal(nil, nil)[:NonceSize]
	n2 := a2.Seal(nil, nil)[:NonceSize]
	if bytes.Equal(n1, n2) {
		t.Errorf("two agent ciphers started at the same nonce %x", n1)
	}
}

func TestClientNoncesRandom(t *testing.T) {
	client, _ := testCiphers(t)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		n := string(client.Seal(nil, []byte("same"))[:NonceSize])
		if seen[n] {
			t.Fatalf("client reused nonce %x", n)
		}
		seen[n] = true
	}
}

func TestTamper(t *testing.T) {
	client, agent := testCiphers(t)
	sealed := client.Seal(nil, []byte("rm -rf /tmp/x\r"))
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := agent.Open(nil, bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("flipping byte %d: err = %v, want ErrDecrypt", i, err)
		}
	}
	if _, err := agent.Open(nil, sealed[:len(sealed)-1]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("truncated payload: err = %v, want ErrDecrypt", err)
	}
	if _, err := agent.Open(nil, append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("extended payload: err = %v, want ErrDecrypt", err)
	}
}

func TestShortInput(t *testing.T) {
	client, agent := testCiphers(t)
	for n := 0; n < Overhead; n++ {
		if _, err := agent.Open(nil, make([]byte, n)); !errors.Is(err, ErrShortCiphertext) {
			t.Errorf("Open of %d bytes: err = %v, want ErrShortCiphertext", n, err)
		}
	}
	// Exactly nonce + tag is an encrypted empty message, valid when authentic.
	got, err := agent.Open(nil, client.Seal(nil, nil))
	if err != nil || len(got) != 0 {
		t.Errorf("Open of sealed empty message = %q, %v", got, err)
	}
	if _, err := agent.Open(nil, make([]byte, Overhead)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open of %d zero bytes: err = %v, want ErrDecrypt", Overhead, err)
	}
}

func TestGarbageNeverPanics(t *testing.T) {
	client, agent := testCiphers(t)
	buf := make([]byte, 300)
	for i := 0; i < 2000; i++ {
		_, _ = rand.Read(buf)
		n := i % len(buf)
		if _, err := agent.Open(nil, buf[:n]); err == nil {
			t.Fatalf("random %d bytes authenticated", n)
		}
		if _, err := client.Open(nil, buf[:n]); err == nil {
			t.Fatalf("random %d bytes authenticated", n)
		}
	}
}

func TestBadDataKey(t *testing.T) {
	for _, n := range []int{0, 32, 63, 65} {
		key := bytes.Repeat([]byte{0xAB}, n)
		for name, newC := range map[string]func([]byte) (*Cipher, error){"client": NewClientCipher, "agent": NewAgentCipher} {
			_, err := newC(key)
			if !errors.Is(err, ErrDataKeySize) {
				t.Errorf("%s with %d-byte key: err = %v, want ErrDataKeySize", name, n, err)
			}
			if err != nil && (strings.Contains(strings.ToLower(err.Error()), "abab") || strings.Contains(err.Error(), "\xab")) {
				t.Errorf("%s error leaks key material: %q", name, err)
			}
		}
	}
}

func TestKeyNotRetained(t *testing.T) {
	key := testKey()
	client, err := NewClientCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	_, agent := testCiphers(t)
	clear(key) // what the key exchange does once the ciphers exist
	msg := []byte("still works")
	got, err := agent.Open(nil, client.Seal(nil, msg))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("cipher broke after zeroing the caller's key: %v", err)
	}
}

func TestConcurrentSeal(t *testing.T) {
	client, agent := testCiphers(t)
	const workers, perWorker = 8, 500
	var (
		mu     sync.Mutex
		nonces = map[string]bool{}
		wg     sync.WaitGroup
		errs   = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 0, 128)
			out := make([]byte, 0, 128)
			for i := 0; i < perWorker; i++ {
				msg := fmt.Appendf(nil, "worker %d message %d", w, i)
				sealed := agent.Seal(buf[:0], msg)
				got, err := client.Open(out[:0], sealed)
				if err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("worker %d message %d: %v", w, i, err)
					return
				}
				mu.Lock()
				n := string(sealed[:NonceSize])
				if nonces[n] {
					mu.Unlock()
					errs <- fmt.Errorf("nonce %x reused", n)
					return
				}
				nonces[n] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(nonces) != workers*perWorker && !t.Failed() {
		t.Errorf("got %d distinct nonces, want %d", len(nonces), workers*perWorker)
	}
}

func FuzzOpen(f *testing.F) {
	client, agent := testCiphers(f)
	f.Add(client.Seal(nil, []byte("hello")))
	f.Add([]byte{})
	f.Add(make([]byte, Overhead))
	f.Fuzz(func(t *testing.T, payload []byte) {
		plain, err := agent.Open(nil, payload)
		if err != nil {
			if !errors.Is(err, ErrShortCiphertext) && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Anything that authenticates must be a genuine client payload: reseal and reopen.
		again, err := agent.Open(nil, client.Seal(nil, plain))
		if err != nil || !bytes.Equal(again, plain) {
			t.Fatalf("round trip of authenticated payload failed: %v", err)
		}
	})
}

func benchmarkSeal(b *testing.B, c *Cipher) {
	msg := make([]byte, 1024)
	buf := make([]byte, 0, len(msg)+Overhead)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		buf = c.Seal(buf[:0], msg)
	}
}

func BenchmarkSealClient1K(b *testing.B) {
	client, _ := testCiphers(b)
	benchmarkSeal(b, client)
}

func BenchmarkSealAgent1K(b *testing.B) {
	_, agent := testCiphers(b)
	benchmarkSeal(b, agent)
}

func BenchmarkOpen1K(b *testing.B) {
	client, agent := testCiphers(b)
	sealed := client.Seal(nil, make([]byte, 1024))
	out := make([]byte, 0, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = agent.Open(out[:0], sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealAgentParallel1K(b *testing.B) {
	_, agent := testCiphers(b)
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, len(msg)+Overhead)
		for pb.Next() {
			buf = agent.Seal(buf[:0], msg)
		}
	})
}

// TestUnseal: a side can recover the plaintext of what it sealed itself
// (to split a message it already encrypted), but not what its peer sealed.
func TestUnseal(t *testing.T) {
	client, agent := testCiphers(t)
	msg := []byte("split me into smaller messages")
	sealed := client.Seal(nil, msg)
	got, err := client.Unseal(nil, sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	if _, err := client.Unseal(nil, agent.Seal(nil, msg)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Unseal of the peer's payload: %v, want ErrDecrypt", err)
	}
	if _, err := client.Unseal(nil, sealed[:Overhead-1]); !errors.Is(err, ErrShortCiphertext) {
		t.Fatalf("Unseal of a short payload: %v", err)
	}
}
