package encryption

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestRandomChallenge(t *testing.T) {
	a, b := NewRandomChallenge(), NewRandomChallenge()
	if len(a) != 24 {
		t.Errorf("len(NewRandomChallenge()) = %d, want 24", len(a))
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != RandomChallengeSize {
		t.Errorf("challenge %q decodes to %d bytes, %v; want %d", a, len(raw), err, RandomChallengeSize)
	}
	if a == b {
		t.Errorf("two random challenges are equal: %q", a)
	}
}

func TestChallengeExchange(t *testing.T) {
	client, agent := testCiphers(t)
	req, original, err := NewChallenge(agent)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(req)
	if err != nil {
		t.Fatalf("challenge is not standard base64: %v", err)
	}
	if len(raw) != 92 || len(original) != ChallengeSize {
		t.Fatalf("challenge is %d bytes sealed, %d original; want 92 and 64", len(raw), len(original))
	}
	answer, err := AnswerChallenge(client, req)
	if err != nil {
		t.Fatalf("AnswerChallenge: %v", err)
	}
	if answer == req {
		t.Error("answer is the request echoed back, not resealed with the client's key")
	}
	if err := VerifyChallenge(agent, answer, original); err != nil {
		t.Fatalf("VerifyChallenge: %v", err)
	}
	// Padding-free base64 is tolerated.
	if err := VerifyChallenge(agent, base64.RawStdEncoding.EncodeToString(mustDecode(t, answer)), original); err != nil {
		t.Errorf("VerifyChallenge without padding: %v", err)
	}
}

func TestChallengeFailures(t *testing.T) {
	client, agent := testCiphers(t)
	otherKey := testKey()
	otherKey[0] ^= 1
	otherKey[40] ^= 1
	otherClient, err := NewClientCipher(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	req, original, err := NewChallenge(agent)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("client with another key cannot answer", func(t *testing.T) {
		if _, err := AnswerChallenge(otherClient, req); !errors.Is(err, ErrDecrypt) {
			t.Errorf("err = %v, want ErrDecrypt", err)
		}
	})
	t.Run("answer sealed with another key", func(t *testing.T) {
		forged := base64.StdEncoding.EncodeToString(otherClient.Seal(nil, original))
		if err := VerifyChallenge(agent, forged, original); !errors.Is(err, ErrDecrypt) {
			t.Errorf("err = %v, want ErrDecrypt", err)
		}
	})
	t.Run("answer with other bytes", func(t *testing.T) {
		wrong := bytes.Clone(original)
		wrong[63] ^= 0x80
		answer := base64.StdEncoding.EncodeToString(client.Seal(nil, wrong))
		if err := VerifyChallenge(agent, answer, original); !errors.Is(err, ErrChallengeMismatch) {
			t.Errorf("err = %v, want ErrChallengeMismatch", err)
		}
	})
	t.Run("answer echoing the request", func(t *testing.T) {
		if err := VerifyChallenge(agent, req, original); !errors.Is(err, ErrDecrypt) {
			t.Errorf("err = %v, want ErrDecrypt", err)
		}
	})
	t.Run("empty original never verifies", func(t *testing.T) {
		answer := base64.StdEncoding.EncodeToString(client.Seal(nil, nil))
		if err := VerifyChallenge(agent, answer, nil); !errors.Is(err, ErrChallengeMismatch) {
			t.Errorf("err = %v, want ErrChallengeMismatch", err)
		}
	})
	for _, bad := range []string{"", "!!!not base64!!!", "AAAA", base64.StdEncoding.EncodeToString(make([]byte, 10))} {
		if _, err := AnswerChallenge(client, bad); err == nil {
			t.Errorf("AnswerChallenge(%q) succeeded", bad)
		}
		if err := VerifyChallenge(agent, bad, original); err == nil {
			t.Errorf("VerifyChallenge(%q) succeeded", bad)
		}
	}
	if _, _, err := NewChallenge(nil); err == nil {
		t.Error("NewChallenge(nil) succeeded")
	}
	if _, err := AnswerChallenge(nil, req); err == nil {
		t.Error("AnswerChallenge(nil, …) succeeded")
	}
	if err := VerifyChallenge(nil, req, original); err == nil {
		t.Error("VerifyChallenge(nil, …) succeeded")
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
