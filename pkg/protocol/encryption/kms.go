package encryption

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Encryption context keys (§6.1, §6.2). KMS binds the data key to these values: the agent can
// only decrypt the client's CiphertextBlob with exactly the context the client used.
const (
	// ContextKeySessionID holds the session id.
	ContextKeySessionID = "aws:ssm:SessionId"
	// ContextKeyTargetID holds the StartSession Target, which must equal the agent's instance id.
	ContextKeyTargetID = "aws:ssm:TargetId"
	// ContextKeyRandomChallenge holds the HandshakeRequest's Challenge string, when the client
	// acknowledges it.
	ContextKeyRandomChallenge = "aws:ssm:RandomChallenge"
)

// ErrChallengeRequired is returned by AgentKeyExchange under RequireChallenge when the client
// did not acknowledge the random challenge. The text is the upstream agent's.
var ErrChallengeRequired = errors.New("client does not support required encryption context random challenge")

// KeyService is the part of KMS the key exchange needs.
type KeyService interface {
	// GenerateDataKey returns a fresh data key of numberOfBytes bytes, in the clear and
	// encrypted under keyID with encCtx.
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string, numberOfBytes int32) (plaintext, ciphertextBlob []byte, err error)
	// Decrypt recovers the plaintext of a data key generated under keyID with encCtx.
	Decrypt(ctx context.Context, keyID string, ciphertextBlob []byte, encCtx map[string]string) (plaintext []byte, err error)
}

// KMSAPI is the subset of *kms.Client that NewKMSKeyService uses.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// NewKMSKeyService adapts an AWS KMS client (typically a *kms.Client) to KeyService.
func NewKMSKeyService(client KMSAPI) KeyService {
	return kmsKeyService{client: client}
}

type kmsKeyService struct {
	client KMSAPI
}

// NewLazyKMSKeyService is NewKMSKeyService with a client built on first
// use: most sessions are not encrypted, and a command need not pay for a
// KMS client it never calls.
func NewLazyKMSKeyService(newClient func() KMSAPI) KeyService {
	return lazyKeyService{get: sync.OnceValue(func() KeyService { return NewKMSKeyService(newClient()) })}
}

type lazyKeyService struct{ get func() KeyService }

func (s lazyKeyService) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string, n int32) ([]byte, []byte, error) {
	return s.get().GenerateDataKey(ctx, keyID, encCtx, n)
}

func (s lazyKeyService) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	return s.get().Decrypt(ctx, keyID, blob, encCtx)
}

func (s kmsKeyService) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string, numberOfBytes int32) ([]byte, []byte, error) {
	out, err := s.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(keyID),
		EncryptionContext: encCtx,
		NumberOfBytes:     aws.Int32(numberOfBytes),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kms GenerateDataKey: %w", err)
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

func (s kmsKeyService) Decrypt(ctx context.Context, keyID string, ciphertextBlob []byte, encCtx map[string]string) ([]byte, error) {
	out, err := s.client.Decrypt(ctx, &kms.DecryptInput{
		KeyId:             aws.String(keyID),
		CiphertextBlob:    ciphertextBlob,
		EncryptionContext: encCtx,
	})
	if err != nil {
		return nil, fmt.Errorf("kms Decrypt: %w", err)
	}
	return out.Plaintext, nil
}

// ClientEncryptionContext is the context the client passes to GenerateDataKey (§6.1). A
// non-empty challenge (the HandshakeRequest's Challenge) is added under
// ContextKeyRandomChallenge; the client must then answer with ChallengeAcknowledgement: true.
func ClientEncryptionContext(sessionID, targetID, challenge string) map[string]string {
	encCtx := map[string]string{
		ContextKeySessionID: sessionID,
		ContextKeyTargetID:  targetID,
	}
	if challenge != "" {
		encCtx[ContextKeyRandomChallenge] = challenge
	}
	return encCtx
}

// AgentEncryptionContext is the context the agent passes to Decrypt (§6.2): the challenge it
// sent is included only when the client acknowledged it.
func AgentEncryptionContext(sessionID, instanceID, challenge string, challengeAcked bool) map[string]string {
	encCtx := map[string]string{
		ContextKeySessionID: sessionID,
		ContextKeyTargetID:  instanceID,
	}
	if challengeAcked {
		encCtx[ContextKeyRandomChallenge] = challenge
	}
	return encCtx
}

// ClientKeyExchange runs the client's side of §6.1: it asks KMS for a 64-byte data key bound to
// the session, target and (if non-empty) challenge, and returns the client Cipher plus the
// CiphertextBlob to send as KMSCipherTextKey. Send ChallengeAcknowledgement: true exactly when
// challenge is non-empty. The plaintext key is zeroed before return and never appears in errors.
func ClientKeyExchange(ctx context.Context, ks KeyService, keyID, sessionID, targetID, challenge string) (*Cipher, []byte, error) {
	if err := checkIDs(keyID, sessionID, targetID); err != nil {
		return nil, nil, err
	}
	plaintext, blob, err := ks.GenerateDataKey(ctx, keyID, ClientEncryptionContext(sessionID, targetID, challenge), DataKeySize)
	defer clear(plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("generating session data key with kms key %s: %w", keyID, err)
	}
	if len(blob) == 0 {
		return nil, nil, fmt.Errorf("generating session data key with kms key %s: kms returned no ciphertext", keyID)
	}
	c, err := NewClientCipher(plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("generating session data key with kms key %s: %w", keyID, err)
	}
	return c, blob, nil
}

// AgentOption adjusts AgentKeyExchange.
type AgentOption func(*agentOptions)

type agentOptions struct {
	requireChallenge bool
}

// RequireChallenge makes AgentKeyExchange fail with ErrChallengeRequired when the client did
// not acknowledge the random challenge (the agent's Kms.RequireKMSChallengeResponse setting).
func RequireChallenge(required bool) AgentOption {
	return func(o *agentOptions) { o.requireChallenge = required }
}

// AgentKeyExchange runs the agent's side of §6.2: it decrypts the client's KMSCipherTextKey with
// the session's encryption context, adding the challenge it sent in the HandshakeRequest only
// when the client acknowledged it, and returns the agent Cipher. The plaintext key is zeroed
// before return and never appears in errors.
func AgentKeyExchange(ctx context.Context, ks KeyService, keyID, sessionID, instanceID, challenge string, challengeAcked bool, ciphertextBlob []byte, opts ...AgentOption) (*Cipher, error) {
	var o agentOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkIDs(keyID, sessionID, instanceID); err != nil {
		return nil, err
	}
	if o.requireChallenge && !challengeAcked {
		return nil, ErrChallengeRequired
	}
	if challengeAcked && challenge == "" {
		return nil, errors.New("client acknowledged a random challenge, but none was sent")
	}
	if len(ciphertextBlob) == 0 {
		return nil, errors.New("recovering session data key: client sent no KMSCipherTextKey")
	}
	plaintext, err := ks.Decrypt(ctx, keyID, ciphertextBlob, AgentEncryptionContext(sessionID, instanceID, challenge, challengeAcked))
	defer clear(plaintext)
	if err != nil {
		return nil, fmt.Errorf("recovering session data key with kms key %s: %w", keyID, err)
	}
	c, err := NewAgentCipher(plaintext)
	if err != nil {
		return nil, fmt.Errorf("recovering session data key with kms key %s: %w", keyID, err)
	}
	return c, nil
}

func checkIDs(keyID, sessionID, targetID string) error {
	switch {
	case keyID == "":
		return errors.New("kms key id is empty")
	case sessionID == "":
		return errors.New("session id is empty")
	case targetID == "":
		return errors.New("target id is empty")
	}
	return nil
}
