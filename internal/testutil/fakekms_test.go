package testutil

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

func TestFakeKMS(t *testing.T) {
	ctx := context.Background()
	k := NewFakeKMS()
	encCtx := map[string]string{"aws:ssm:SessionId": "s-1"}
	pt, blob, err := k.GenerateDataKey(ctx, "key-1", encCtx, 64)
	if err != nil || len(pt) != 64 {
		t.Fatalf("GenerateDataKey = %d bytes, %v", len(pt), err)
	}
	if got := k.LastGenerate(); got.KeyID != "key-1" || got.Bytes != 64 || got.Context["aws:ssm:SessionId"] != "s-1" {
		t.Errorf("LastGenerate = %+v", got)
	}
	got, err := k.Decrypt(ctx, "key-1", blob, map[string]string{"aws:ssm:SessionId": "s-1"})
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Decrypt = %v", err)
	}
	if _, err := k.Decrypt(ctx, "key-2", blob, encCtx); err == nil {
		t.Error("Decrypt with another key succeeded")
	}
	if _, err := k.Decrypt(ctx, "key-1", blob, map[string]string{"aws:ssm:SessionId": "s-2"}); err == nil {
		t.Error("Decrypt with another context succeeded")
	}
	if _, _, err := k.GenerateDataKey(ctx, "", encCtx, 64); err == nil {
		t.Error("GenerateDataKey without a key ID succeeded")
	}
	if k.Calls() != 5 || len(k.Issued()) != 2 {
		t.Errorf("Calls = %d, Issued = %d", k.Calls(), len(k.Issued()))
	}
	k.KeyBytes = 32
	if pt, _, _ := k.GenerateDataKey(ctx, "key-1", nil, 64); len(pt) != 32 {
		t.Errorf("KeyBytes: %d bytes", len(pt))
	}
	k.Fail = errors.New("AccessDeniedException")
	if _, _, err := k.GenerateDataKey(ctx, "key-1", nil, 64); !errors.Is(err, k.Fail) {
		t.Errorf("Fail: %v", err)
	}
	// Concurrent use (run with -race).
	k.Fail = nil
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, blob, _ := k.GenerateDataKey(ctx, "key-1", encCtx, 64)
			_, _ = k.Decrypt(ctx, "key-1", blob, encCtx)
		})
	}
	wg.Wait()
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { _, _ = b.Write([]byte("ab")) })
	}
	wg.Wait()
	if b.String() != "abababab" || b.Len() != 8 {
		t.Errorf("%q %d", b.String(), b.Len())
	}
}
