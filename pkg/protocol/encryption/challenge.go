package encryption

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
)

const (
	// ChallengeSize is the number of random bytes in the agent's EncChallengeRequest (§6.3).
	ChallengeSize = 64
	// RandomChallengeSize is the number of random bytes behind the HandshakeRequest's
	// Challenge string (§5.3).
	RandomChallengeSize = 16
)

// ErrChallengeMismatch means the client's EncChallengeResponse decrypted to bytes other than
// the challenge the agent sent: the two ends do not hold the same data key.
var ErrChallengeMismatch = errors.New("encryption challenge response does not match the challenge")

// NewRandomChallenge returns the HandshakeRequest's KMSEncryption Challenge: 16 random bytes in
// standard padded base64 (24 characters). It is an encryption-context value, not a secret.
func NewRandomChallenge() string {
	var b [RandomChallengeSize]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it aborts the program instead)
	return base64.StdEncoding.EncodeToString(b[:])
}

// NewChallenge is the agent's EncChallengeRequest (§6.3 step 1): 64 random bytes sealed with
// the agent's encryption key. It returns the body's Challenge value (standard padded base64 of
// 92 bytes) and the original bytes to keep for VerifyChallenge.
func NewChallenge(c *Cipher) (challengeB64 string, original []byte, err error) {
	if c == nil {
		return "", nil, errors.New("creating encryption challenge: no cipher")
	}
	original = make([]byte, ChallengeSize)
	_, _ = rand.Read(original)
	return base64.StdEncoding.EncodeToString(c.Seal(nil, original)), original, nil
}

// AnswerChallenge is the client's EncChallengeResponse (§6.3 step 2): it opens the agent's
// challenge with the client's decryption key and reseals the same bytes with its encryption key.
func AnswerChallenge(c *Cipher, challengeB64 string) (string, error) {
	if c == nil {
		return "", errors.New("answering encryption challenge: no cipher")
	}
	sealed, err := decodeChallenge(challengeB64)
	if err != nil {
		return "", fmt.Errorf("answering encryption challenge: %w", err)
	}
	plain, err := c.Open(nil, sealed)
	if err != nil {
		return "", fmt.Errorf("answering encryption challenge: %w", err)
	}
	return base64.StdEncoding.EncodeToString(c.Seal(nil, plain)), nil
}

// VerifyChallenge is the agent's final check (§6.3 step 3): answerB64 must open with the agent's
// decryption key to exactly original. A failure here must fail the handshake.
func VerifyChallenge(c *Cipher, answerB64 string, original []byte) error {
	if c == nil {
		return errors.New("verifying encryption challenge: no cipher")
	}
	sealed, err := decodeChallenge(answerB64)
	if err != nil {
		return fmt.Errorf("verifying encryption challenge: %w", err)
	}
	plain, err := c.Open(nil, sealed)
	if err != nil {
		return fmt.Errorf("verifying encryption challenge: %w", err)
	}
	if len(original) == 0 || subtle.ConstantTimeCompare(plain, original) != 1 {
		return ErrChallengeMismatch
	}
	return nil
}

// decodeChallenge accepts standard base64 with padding (what Go's JSON []byte encoding
// produces) and, for tolerance, without it.
func decodeChallenge(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decoding base64 challenge: %w", err)
	}
	return b, nil
}
