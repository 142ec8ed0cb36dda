package encryption

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/ssmkit/ssmkit/internal/testutil"
)

var errFakeAccessDenied = errors.New("AccessDeniedException: not allowed")

// assertZeroed fails unless every plaintext data key ks handed out was
// zeroed after use.
func assertZeroed(t *testing.T, ks *testutil.FakeKMS) {
	t.Helper()
	for i, pt := range ks.Issued() {
		if !bytes.Equal(pt, make([]byte, len(pt))) {
			t.Errorf("plaintext data key #%d was not zeroed after use", i)
		}
	}
}

const (
	keyID     = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
	sessionID = "alice-0123456789abcdef0"
	targetID  = "i-0123456789abcdef0"
)

func TestEncryptionContexts(t *testing.T) {
	want := map[string]string{"aws:ssm:SessionId": "s", "aws:ssm:TargetId": "i"}
	if got := ClientEncryptionContext("s", "i", ""); !maps.Equal(got, want) {
		t.Errorf("client, no challenge = %v", got)
	}
	if got := AgentEncryptionContext("s", "i", "c", false); !maps.Equal(got, want) {
		t.Errorf("agent, challenge not acked = %v", got)
	}
	want["aws:ssm:RandomChallenge"] = "c"
	if got := ClientEncryptionContext("s", "i", "c"); !maps.Equal(got, want) {
		t.Errorf("client, challenge = %v", got)
	}
	if got := AgentEncryptionContext("s", "i", "c", true); !maps.Equal(got, want) {
		t.Errorf("agent, challenge acked = %v", got)
	}
}

func TestKeyExchange(t *testing.T) {
	ctx := context.Background()
	challenge := NewRandomChallenge()
	tests := []struct {
		name            string
		clientChallenge string // what the client put in its context ("" = old client)
		acked           bool
		opts            []AgentOption
		wantErr         error // nil = success; errAny = any failure
	}{
		{name: "challenge acked", clientChallenge: challenge, acked: true},
		{name: "challenge acked, required", clientChallenge: challenge, acked: true, opts: []AgentOption{RequireChallenge(true)}},
		{name: "old client, no ack", acked: false},
		{name: "old client, required", acked: false, opts: []AgentOption{RequireChallenge(true)}, wantErr: ErrChallengeRequired},
		{name: "client used challenge but agent thinks not acked", clientChallenge: challenge, acked: false, wantErr: errAny},
		{name: "ack without challenge in client context", acked: true, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := testutil.NewFakeKMS()
			client, blob, err := ClientKeyExchange(ctx, ks, keyID, sessionID, targetID, tt.clientChallenge)
			if err != nil {
				t.Fatalf("ClientKeyExchange: %v", err)
			}
			if gen := ks.LastGenerate(); gen.Bytes != DataKeySize || gen.KeyID != keyID {
				t.Errorf("GenerateDataKey(%q, %d bytes), want (%q, 64)", gen.KeyID, gen.Bytes, keyID)
			}
			if want := ClientEncryptionContext(sessionID, targetID, tt.clientChallenge); !maps.Equal(ks.LastGenerate().Context, want) {
				t.Errorf("GenerateDataKey context = %v, want %v", ks.LastGenerate().Context, want)
			}
			agent, err := AgentKeyExchange(ctx, ks, keyID, sessionID, targetID, challenge, tt.acked, blob, tt.opts...)
			assertZeroed(t, ks)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("AgentKeyExchange: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("AgentKeyExchange err = %v, want %v", err, tt.wantErr)
			case err != nil:
				return
			}
			assertPaired(t, client, agent)
		})
	}
}

// errAny marks a test case that must fail without caring how.
var errAny = errors.New("any error")

// assertPaired checks that client and agent ciphers read each other's traffic, including the
// encrypted challenge.
func assertPaired(t *testing.T, client, agent *Cipher) {
	t.Helper()
	msg := []byte("ls -la\r")
	if got, err := agent.Open(nil, client.Seal(nil, msg)); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("client→agent: %v", err)
	}
	if got, err := client.Open(nil, agent.Seal(nil, msg)); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("agent→client: %v", err)
	}
	req, original, err := NewChallenge(agent)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := AnswerChallenge(client, req)
	if err != nil {
		t.Fatalf("AnswerChallenge: %v", err)
	}
	if err := VerifyChallenge(agent, answer, original); err != nil {
		t.Errorf("VerifyChallenge: %v", err)
	}
}

func TestKeyExchangeContextMismatch(t *testing.T) {
	ctx := context.Background()
	ks := testutil.NewFakeKMS()
	_, blob, err := ClientKeyExchange(ctx, ks, keyID, sessionID, targetID, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][3]string{
		"session": {keyID, "other-session", targetID},
		"target":  {keyID, sessionID, "mi-0123456789abcdef0"},
		"key":     {keyID + "x", sessionID, targetID},
	} {
		if _, err := AgentKeyExchange(ctx, ks, args[0], args[1], args[2], "", false, blob); err == nil {
			t.Errorf("wrong %s: AgentKeyExchange succeeded", name)
		}
	}
	assertZeroed(t, ks)
}

func TestKeyExchangeErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("kms failure is wrapped", func(t *testing.T) {
		ks := testutil.NewFakeKMS()
		ks.Fail = errFakeAccessDenied
		if _, _, err := ClientKeyExchange(ctx, ks, keyID, sessionID, targetID, ""); !errors.Is(err, errFakeAccessDenied) || !strings.Contains(err.Error(), keyID) {
			t.Errorf("ClientKeyExchange err = %v, want wrapped access denied naming the key", err)
		}
		if _, err := AgentKeyExchange(ctx, ks, keyID, sessionID, targetID, "", false, []byte{1}); !errors.Is(err, errFakeAccessDenied) {
			t.Errorf("AgentKeyExchange err = %v, want wrapped access denied", err)
		}
	})
	t.Run("wrong data key size", func(t *testing.T) {
		ks := testutil.NewFakeKMS()
		ks.KeyBytes = 32
		_, _, err := ClientKeyExchange(ctx, ks, keyID, sessionID, targetID, "")
		if !errors.Is(err, ErrDataKeySize) {
			t.Fatalf("err = %v, want ErrDataKeySize", err)
		}
		assertZeroed(t, ks)
		for _, pt := range ks.DataKeys() {
			if strings.Contains(err.Error(), fmt.Sprintf("%x", pt[:4])) || strings.Contains(err.Error(), string(pt[:4])) {
				t.Errorf("error leaks the data key: %q", err)
			}
		}
	})
	t.Run("missing ids", func(t *testing.T) {
		ks := testutil.NewFakeKMS()
		for _, ids := range [][3]string{{"", sessionID, targetID}, {keyID, "", targetID}, {keyID, sessionID, ""}} {
			if _, _, err := ClientKeyExchange(ctx, ks, ids[0], ids[1], ids[2], ""); err == nil {
				t.Errorf("ClientKeyExchange%v succeeded", ids)
			}
			if _, err := AgentKeyExchange(ctx, ks, ids[0], ids[1], ids[2], "", false, []byte{1}); err == nil {
				t.Errorf("AgentKeyExchange%v succeeded", ids)
			}
		}
		if ks.Calls() != 0 {
			t.Error("KMS was called despite missing ids")
		}
	})
	t.Run("empty ciphertext", func(t *testing.T) {
		if _, err := AgentKeyExchange(ctx, testutil.NewFakeKMS(), keyID, sessionID, targetID, "", false, nil); err == nil {
			t.Error("AgentKeyExchange with no ciphertext succeeded")
		}
	})
}

// fakeKMSAPI records the SDK inputs NewKMSKeyService builds.
type fakeKMSAPI struct {
	gen *kms.GenerateDataKeyInput
	dec *kms.DecryptInput
	err error
}

func (f *fakeKMSAPI) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	f.gen = in
	if f.err != nil {
		return nil, f.err
	}
	return &kms.GenerateDataKeyOutput{Plaintext: []byte("pt"), CiphertextBlob: []byte("blob")}, nil
}

func (f *fakeKMSAPI) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	f.dec = in
	if f.err != nil {
		return nil, f.err
	}
	return &kms.DecryptOutput{Plaintext: []byte("pt")}, nil
}

func TestKMSKeyService(t *testing.T) {
	var _ KMSAPI = (*kms.Client)(nil) // the real client satisfies the narrow interface
	ctx := context.Background()
	api := &fakeKMSAPI{}
	ks := NewKMSKeyService(api)
	encCtx := ClientEncryptionContext(sessionID, targetID, "c")

	pt, blob, err := ks.GenerateDataKey(ctx, keyID, encCtx, 64)
	if err != nil || string(pt) != "pt" || string(blob) != "blob" {
		t.Fatalf("GenerateDataKey = %q, %q, %v", pt, blob, err)
	}
	if aws.ToString(api.gen.KeyId) != keyID || aws.ToInt32(api.gen.NumberOfBytes) != 64 || !maps.Equal(api.gen.EncryptionContext, encCtx) || api.gen.KeySpec != "" {
		t.Errorf("GenerateDataKeyInput = %+v", api.gen)
	}

	pt, err = ks.Decrypt(ctx, keyID, []byte("blob"), encCtx)
	if err != nil || string(pt) != "pt" {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}
	if aws.ToString(api.dec.KeyId) != keyID || string(api.dec.CiphertextBlob) != "blob" || !maps.Equal(api.dec.EncryptionContext, encCtx) {
		t.Errorf("DecryptInput = %+v", api.dec)
	}

	api.err = errFakeAccessDenied
	if _, _, err := ks.GenerateDataKey(ctx, keyID, encCtx, 64); !errors.Is(err, errFakeAccessDenied) {
		t.Errorf("GenerateDataKey err = %v", err)
	}
	if _, err := ks.Decrypt(ctx, keyID, []byte("blob"), encCtx); !errors.Is(err, errFakeAccessDenied) {
		t.Errorf("Decrypt err = %v", err)
	}
}

// TestLazyKMSKeyService: the client is built on the first call only, once.
func TestLazyKMSKeyService(t *testing.T) {
	builds := 0
	api := &fakeKMSAPI{}
	ks := NewLazyKMSKeyService(func() KMSAPI { builds++; return api })
	if builds != 0 {
		t.Fatal("client built before any call")
	}
	ctx := context.Background()
	encCtx := ClientEncryptionContext(sessionID, targetID, "c")
	if _, _, err := ks.GenerateDataKey(ctx, keyID, encCtx, 64); err != nil {
		t.Fatal(err)
	}
	if pt, err := ks.Decrypt(ctx, keyID, []byte("blob"), encCtx); err != nil || string(pt) != "pt" {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}
	if builds != 1 {
		t.Fatalf("client built %d times", builds)
	}
}
