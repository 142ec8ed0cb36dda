package prefs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// fakeSSM keeps documents the way SSM does: numbered versions, a default,
// DuplicateDocumentContent for content any version already has.
type fakeSSM struct {
	versions map[string][]string
	defaults map[string]int
	calls    []string
	// beforeWrite runs at the first write call (a concurrent editor).
	beforeWrite func()
}

func newFakeSSM() *fakeSSM {
	return &fakeSSM{versions: map[string][]string{}, defaults: map[string]int{}}
}

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: code} }

func (f *fakeSSM) DescribeDocument(_ context.Context, in *ssm.DescribeDocumentInput, _ ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error) {
	f.calls = append(f.calls, "DescribeDocument")
	vs, ok := f.versions[*in.Name]
	if !ok {
		return nil, apiErr("InvalidDocument")
	}
	d := f.defaults[*in.Name]
	h := sha256.Sum256([]byte(vs[d-1]))
	return &ssm.DescribeDocumentOutput{Document: &ssmtypes.DocumentDescription{
		Name: in.Name, DocumentType: ssmtypes.DocumentTypeSession, Hash: aws.String(hex.EncodeToString(h[:])),
		LatestVersion: aws.String(strconv.Itoa(len(vs))), DefaultVersion: aws.String(strconv.Itoa(d)),
	}}, nil
}

func (f *fakeSSM) GetDocument(_ context.Context, in *ssm.GetDocumentInput, _ ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error) {
	f.calls = append(f.calls, "GetDocument")
	vs, ok := f.versions[*in.Name]
	if !ok {
		return nil, apiErr("InvalidDocument")
	}
	v := f.defaults[*in.Name]
	if in.DocumentVersion != nil {
		v, _ = strconv.Atoi(*in.DocumentVersion)
	}
	if v < 1 || v > len(vs) {
		return nil, apiErr("InvalidDocumentVersion")
	}
	return &ssm.GetDocumentOutput{Content: aws.String(vs[v-1]), DocumentType: ssmtypes.DocumentTypeSession}, nil
}

func (f *fakeSSM) write() {
	if f.beforeWrite != nil {
		w := f.beforeWrite
		f.beforeWrite = nil
		w()
	}
}

func (f *fakeSSM) CreateDocument(_ context.Context, in *ssm.CreateDocumentInput, _ ...func(*ssm.Options)) (*ssm.CreateDocumentOutput, error) {
	f.calls = append(f.calls, "CreateDocument")
	f.write()
	if _, ok := f.versions[*in.Name]; ok {
		return nil, apiErr("DocumentAlreadyExists")
	}
	f.versions[*in.Name] = []string{*in.Content}
	f.defaults[*in.Name] = 1
	return &ssm.CreateDocumentOutput{DocumentDescription: &ssmtypes.DocumentDescription{DocumentVersion: aws.String("1")}}, nil
}

func (f *fakeSSM) UpdateDocument(_ context.Context, in *ssm.UpdateDocumentInput, _ ...func(*ssm.Options)) (*ssm.UpdateDocumentOutput, error) {
	f.calls = append(f.calls, "UpdateDocument")
	f.write()
	if aws.ToString(in.DocumentVersion) != "$LATEST" {
		return nil, apiErr("InvalidDocumentVersion")
	}
	for _, c := range f.versions[*in.Name] {
		if c == *in.Content {
			return nil, apiErr("DuplicateDocumentContent")
		}
	}
	f.versions[*in.Name] = append(f.versions[*in.Name], *in.Content)
	v := strconv.Itoa(len(f.versions[*in.Name]))
	return &ssm.UpdateDocumentOutput{DocumentDescription: &ssmtypes.DocumentDescription{DocumentVersion: aws.String(v)}}, nil
}

func (f *fakeSSM) UpdateDocumentDefaultVersion(_ context.Context, in *ssm.UpdateDocumentDefaultVersionInput, _ ...func(*ssm.Options)) (*ssm.UpdateDocumentDefaultVersionOutput, error) {
	f.calls = append(f.calls, "UpdateDocumentDefaultVersion")
	v, _ := strconv.Atoi(*in.DocumentVersion)
	f.defaults[*in.Name] = v
	return &ssm.UpdateDocumentDefaultVersionOutput{}, nil
}

func mustLoad(t *testing.T, s Store) *Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFakeSSM()
	s := Store{SSM: f, Name: ssmdoc.Shell}

	snap := mustLoad(t, s)
	if snap.Exists || !snap.Doc.Equal(Default()) {
		t.Fatalf("missing document: %+v", snap)
	}
	d := snap.Doc.Clone()
	d.Set(KeyIdleSessionTimeout, "30")
	res, err := s.Save(ctx, snap, d)
	if err != nil || !res.Created || res.Version != "1" {
		t.Fatalf("create: %+v %v", res, err)
	}

	// Identical content: no write at all.
	snap = mustLoad(t, s)
	f.calls = nil
	res, err = s.Save(ctx, snap, snap.Doc.Clone())
	if err != nil || res.Changed || res.Version != "1" || len(f.calls) != 0 {
		t.Fatalf("unchanged: %+v %v, calls %v", res, err, f.calls)
	}

	// A change: new version, made the default.
	d = snap.Doc.Clone()
	d.Set(KeyS3Bucket, "bucket")
	res, err = s.Save(ctx, snap, d)
	if err != nil || !res.Changed || res.Version != "2" || f.defaults[ssmdoc.Shell] != 2 {
		t.Fatalf("update: %+v %v", res, err)
	}

	// Back to version 1's content: SSM says duplicate; version 1 becomes
	// the default again.
	snap = mustLoad(t, s)
	d = snap.Doc.Clone()
	d.Set(KeyS3Bucket, "")
	res, err = s.Save(ctx, snap, d)
	if err != nil || !res.Reused || res.Version != "1" || f.defaults[ssmdoc.Shell] != 1 {
		t.Fatalf("duplicate: %+v %v", res, err)
	}
	if got := len(f.versions[ssmdoc.Shell]); got != 2 {
		t.Errorf("%d versions, want 2", got)
	}
}

func TestStoreConflict(t *testing.T) {
	ctx := context.Background()
	f := newFakeSSM()
	s := Store{SSM: f, Name: "Custom"}
	if _, err := s.Save(ctx, mustLoad(t, s), Default()); err != nil {
		t.Fatal(err)
	}
	snap := mustLoad(t, s)

	// Someone else saves between our read and our write.
	other := snap.Doc.Clone()
	other.Set(KeyIdleSessionTimeout, "5")
	if _, err := s.Save(ctx, mustLoad(t, s), other); err != nil {
		t.Fatal(err)
	}
	mine := snap.Doc.Clone()
	mine.Set(KeyIdleSessionTimeout, "45")
	f.calls = nil
	_, err := s.Save(ctx, snap, mine)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	for _, c := range f.calls {
		if c != "DescribeDocument" {
			t.Errorf("wrote after a conflict: %v", f.calls)
		}
	}

	// Created by someone else after we found it missing.
	s2 := Store{SSM: f, Name: "Racy"}
	snap = mustLoad(t, s2)
	f.beforeWrite = func() { f.versions["Racy"] = []string{"{}"}; f.defaults["Racy"] = 1 }
	if _, err := s2.Save(ctx, snap, Default()); !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
}
