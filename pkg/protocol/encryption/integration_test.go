package encryption

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/ssmkit/ssmkit/internal/testutil/motoserver"
)

// TestKeyExchangeMoto runs both halves of the key exchange against moto's KMS, which binds
// data keys to their encryption context like the real service.
func TestKeyExchangeMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a moto server; skipped under -short")
	}
	client := kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(motoserver.URL(t)),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	ctx := context.Background()
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("ssmkit encryption test")})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	ks := NewKMSKeyService(client)
	const session, target = "ssmkit-test-0a1b2c3d4e5f", "i-0123456789abcdef0"

	t.Run("challenge acknowledged", func(t *testing.T) {
		challenge := NewRandomChallenge()
		c, blob, err := ClientKeyExchange(ctx, ks, keyARN, session, target, challenge)
		if err != nil {
			t.Fatalf("ClientKeyExchange: %v", err)
		}
		a, err := AgentKeyExchange(ctx, ks, keyARN, session, target, challenge, true, blob, RequireChallenge(true))
		if err != nil {
			t.Fatalf("AgentKeyExchange: %v", err)
		}
		assertPaired(t, c, a)

		// The challenge is part of the context: leaving it out, or using another, fails.
		if _, err := AgentKeyExchange(ctx, ks, keyARN, session, target, challenge, false, blob); err == nil {
			t.Error("agent decrypted without the acknowledged challenge in its context")
		}
		if _, err := AgentKeyExchange(ctx, ks, keyARN, session, target, NewRandomChallenge(), true, blob); err == nil {
			t.Error("agent decrypted with a different challenge")
		}
	})

	t.Run("challenge not acknowledged", func(t *testing.T) {
		c, blob, err := ClientKeyExchange(ctx, ks, keyARN, session, target, "")
		if err != nil {
			t.Fatalf("ClientKeyExchange: %v", err)
		}
		a, err := AgentKeyExchange(ctx, ks, keyARN, session, target, NewRandomChallenge(), false, blob)
		if err != nil {
			t.Fatalf("AgentKeyExchange: %v", err)
		}
		assertPaired(t, c, a)
		if _, err := AgentKeyExchange(ctx, ks, keyARN, session, target, NewRandomChallenge(), false, blob, RequireChallenge(true)); !errors.Is(err, ErrChallengeRequired) {
			t.Errorf("RequireChallenge without ack: err = %v, want ErrChallengeRequired", err)
		}
	})

	t.Run("wrong context fails", func(t *testing.T) {
		challenge := NewRandomChallenge()
		_, blob, err := ClientKeyExchange(ctx, ks, keyARN, session, target, challenge)
		if err != nil {
			t.Fatalf("ClientKeyExchange: %v", err)
		}
		if _, err := AgentKeyExchange(ctx, ks, keyARN, session+"-other", target, challenge, true, blob); err == nil {
			t.Error("agent decrypted with a wrong SessionId")
		} else {
			t.Logf("wrong SessionId: %v", err)
		}
		if _, err := AgentKeyExchange(ctx, ks, keyARN, session, "mi-0123456789abcdef0", challenge, true, blob); err == nil {
			t.Error("agent decrypted with a wrong TargetId")
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		_, _, err := ClientKeyExchange(ctx, ks, "alias/does-not-exist", session, target, "")
		if err == nil {
			t.Fatal("GenerateDataKey with an unknown key succeeded")
		}
	})
}
